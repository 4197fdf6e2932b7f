// optimizerMatrix: the checks every gradient-only optimizer should pass (as optax's common tests):
// convergence on a convex quadratic and on Rosenbrock, a state that keeps its structure, numeric
// hyperparameter changes that never recompile, and bit-identical resumption from a checkpoint.
import { GrngError } from '../core/errors.js';
import {
  defineOptimizer,
  type HyperDefaults,
  type HyperSettings,
  type Optimizer,
} from '../dsl/optimizer.js';
import { compileOptimizer, numericHyper } from '../runtime/compile-optimizer.js';
import { CpuDevice } from '../runtime/cpu-device.js';
import type { Device } from '../runtime/device.js';
import { bitIdentical } from './compare.js';
import { requireGradientOnly } from './gradient-only.js';
import { quadratic, RANDOM_SHAPES, randomProblem, rosenbrock, type Problem } from './problems.js';
import { disposeTree, hostCopy, hostTree, readLeaves, structureOf } from './trees.js';

export interface QuadraticOptions<H extends HyperDefaults> {
  /** Steps (default 200). */
  readonly steps?: number;
  /** Largest final/initial loss ratio that passes (default 1e-3). */
  readonly maxRatio?: number;
  /** Settings changed for this problem. */
  readonly hyper?: Partial<HyperSettings<H>>;
}

export interface RosenbrockOptions<H extends HyperDefaults> {
  /** Steps (default 2000). */
  readonly steps?: number;
  /**
   * Largest final loss that passes (default 1e-2, from 12.5 at the start; it implies |x − 1| <
   * 0.1).
   */
  readonly maxLoss?: number;
  readonly hyper?: Partial<HyperSettings<H>>;
}

export interface SetHyperOptions {
  /**
   * The numeric hyperparameter to change (default lr, else the first numeric one that is not
   * static).
   */
  readonly name?: string;
  /** The new value is the old one times this (default 0.5). */
  readonly factor?: number;
}

export interface OptimizerMatrixOptions<H extends HyperDefaults = HyperDefaults> {
  /** Where the optimizer runs (default the float64 interpreter). */
  readonly device?: Device;
  /** The convex quadratic ½ Σ dᵢxᵢ², d = 1…10 (condition number 10); false skips it. */
  readonly quadratic?: QuadraticOptions<H> | false;
  /** The 2-D Rosenbrock function from (−1.5, 2); false skips it. */
  readonly rosenbrock?: RosenbrockOptions<H> | false;
  /** The no-recompile check of setHyper; false skips it. */
  readonly setHyper?: SetHyperOptions | false;
  /** Steps of the structure, setHyper and resume checks, on seeded random gradients (default 6). */
  readonly steps?: number;
  /** Seed of those random problems (default 1). */
  readonly seed?: number;
  /**
   * Throw a GrngError listing the failed checks (default true); false returns the report either
   * way.
   */
  readonly throwOnFailure?: boolean;
}

/**
 * What one check found: passed or not, and one line saying what was measured (or why it failed).
 */
export interface CheckReport {
  readonly passed: boolean;
  readonly detail: string;
}

export interface ConvergenceReport extends CheckReport {
  readonly steps: number;
  readonly initialLoss: number;
  /** NaN when the run threw. */
  readonly finalLoss: number;
  readonly ratio: number;
  /** The final parameters. */
  readonly point: readonly number[][];
}

export interface StructureReport extends CheckReport {
  /** The state's structure, shapes and dtypes after the first step, e.g. {"m":{"p0":"f32[3]"}}. */
  readonly structure: string;
}

export interface SetHyperReport extends CheckReport {
  readonly name: string;
  readonly from: number;
  readonly to: number;
  /**
   * Traces of the update in a run without the change and in a run with it (equal: nothing
   * recompiled).
   */
  readonly traces: readonly [number, number];
  /**
   * Programs the device compiled during the run with the change (WebGPU; undefined where the device
   * does not count them).
   */
  readonly newPrograms: number | undefined;
  /** Whether the change altered the parameters (a change that does nothing is a failure). */
  readonly changed: boolean;
}

export interface ResumeReport extends CheckReport {
  readonly resumedAt: number;
  readonly bitIdentical: boolean;
}

export interface OptimizerMatrixReport {
  readonly optimizer: string;
  readonly device: string;
  readonly quadratic?: ConvergenceReport;
  readonly rosenbrock?: ConvergenceReport;
  readonly stateStructure: StructureReport;
  readonly setHyper?: SetHyperReport;
  readonly resume: ResumeReport;
  /** One line per failed check (empty when all passed). */
  readonly failures: readonly string[];
}

/**
 * Runs the common matrix on `optimizer` (a gradient-only optimizer, with the settings it should
 * converge with) and returns what each check measured. Throws a GrngError listing every failed
 * check (unless throwOnFailure is false), or at once when the optimizer needs a model.
 */
export async function optimizerMatrix<H extends HyperDefaults, S>(
  optimizer: Optimizer<H, S>,
  options: OptimizerMatrixOptions<H> = {},
): Promise<OptimizerMatrixReport> {
  const op = 'optimizerMatrix';
  const device = options.device ?? new CpuDevice('f64');
  const { steps = 6, seed = 1, throwOnFailure = true } = options;
  if (!Number.isInteger(steps) || steps < 2)
    throw new GrngError(
      op,
      `steps must be an integer ≥ 2 (the resume check splits them), got ${String(steps)}`,
    );
  requireGradientOnly(op, optimizer, RANDOM_SHAPES);
  const hyperChange =
    options.setHyper === false ? undefined : pickHyper(op, optimizer, options.setHyper ?? {});

  const q = options.quadratic === false ? undefined : (options.quadratic ?? {});
  const r = options.rosenbrock === false ? undefined : (options.rosenbrock ?? {});
  const report: OptimizerMatrixReport = {
    optimizer: optimizer.name,
    device: device.description,
    quadratic:
      q &&
      (await convergence(
        optimizer.with(q.hyper ?? {}),
        device,
        quadratic,
        q.steps ?? 200,
        (loss, start) => loss / start,
        q.maxRatio ?? 1e-3,
        'loss ratio',
      )),
    rosenbrock:
      r &&
      (await convergence(
        optimizer.with(r.hyper ?? {}),
        device,
        rosenbrock,
        r.steps ?? 2000,
        (loss) => loss,
        r.maxLoss ?? 1e-2,
        'final loss',
      )),
    stateStructure: await stateStructure(optimizer, device, seed, steps),
    setHyper: hyperChange && (await setHyperCheck(optimizer, device, seed, steps, hyperChange)),
    resume: await resume(optimizer, device, seed, steps),
    failures: [],
  };
  const checks: [string, CheckReport | undefined][] = [
    ['quadratic', report.quadratic],
    ['rosenbrock', report.rosenbrock],
    ['state structure', report.stateStructure],
    ['setHyper', report.setHyper],
    ['resume', report.resume],
  ];
  const failures = checks.flatMap(([name, c]) =>
    c === undefined || c.passed ? [] : [`${name}: ${c.detail}`],
  );
  const done = { ...report, failures };
  if (failures.length > 0 && throwOnFailure) {
    throw new GrngError(
      op,
      `${optimizer.name} on ${device.description} failed ${failures.length} ` +
        `check(s):\n  ${failures.join('\n  ')}`,
    );
  }
  return done;
}

const message = (error: unknown): string =>
  error instanceof Error ? error.message : String(error);

/**
 * Runs `steps` steps with gradients taken at the current parameters; returns the final parameters.
 */
async function descend<H extends HyperDefaults, S>(
  optimizer: Optimizer<H, S>,
  device: Device,
  problem: Problem,
  steps: number,
): Promise<Float64Array[]> {
  const opt = await compileOptimizer(optimizer, hostTree([...problem.start], problem.shapes), {
    device,
  });
  let x: Float64Array[] = problem.start.map((v) => Float64Array.from(v));
  for (let t = 0; t < steps; t++) {
    await opt.step(hostTree(problem.grad(x), problem.shapes));
    x = await readLeaves(opt.params());
  }
  disposeTree(opt.params());
  disposeTree(opt.state());
  return x;
}

async function convergence<H extends HyperDefaults, S>(
  optimizer: Optimizer<H, S>,
  device: Device,
  problem: Problem,
  steps: number,
  measure: (loss: number, start: number) => number,
  threshold: number,
  what: string,
): Promise<ConvergenceReport> {
  const initialLoss = problem.loss(problem.start);
  try {
    const x = await descend(optimizer, device, problem, steps);
    const finalLoss = problem.loss(x);
    const ratio = finalLoss / initialLoss;
    const value = measure(finalLoss, initialLoss);
    // NaN fails: `value <= threshold` is false for it.
    const passed = value <= threshold;
    const detail =
      `${what} ${value.toExponential(3)} after ${steps} steps (loss ` +
      `${initialLoss.toPrecision(4)} → ${finalLoss.toExponential(3)}; must ` +
      `be ≤ ${threshold})${passed ? '' : ': tune the settings for this problem or raise the step budget'}`;
    return {
      passed,
      detail,
      steps,
      initialLoss,
      finalLoss,
      ratio,
      point: x.map((v) => Array.from(v)),
    };
  } catch (error) {
    return {
      passed: false,
      detail: `threw: ${message(error)}`,
      steps,
      initialLoss,
      finalLoss: Number.NaN,
      ratio: Number.NaN,
      point: [],
    };
  }
}

async function stateStructure<H extends HyperDefaults, S>(
  optimizer: Optimizer<H, S>,
  device: Device,
  seed: number,
  steps: number,
): Promise<StructureReport> {
  const { params, grads } = randomProblem(seed, steps);
  let structure = '';
  try {
    const opt = await compileOptimizer(optimizer, hostTree(params, RANDOM_SHAPES), { device });
    const paramStructure = structureOf(opt.params());
    structure = structureOf(opt.state());
    for (let t = 1; t <= steps; t++) {
      await opt.step(hostTree(grads[t - 1], RANDOM_SHAPES));
      const [s, p] = [structureOf(opt.state()), structureOf(opt.params())];
      if (s !== structure)
        return {
          passed: false,
          detail: `the state changed structure at step ${t}: ${structure} became ${s}`,
          structure,
        };
      if (p !== paramStructure)
        return {
          passed: false,
          detail: `the parameters changed structure at step ${t}: ${paramStructure} became ${p}`,
          structure,
        };
    }
    if (opt.steps !== steps)
      return { passed: false, detail: `steps counts ${opt.steps} after ${steps} steps`, structure };
    disposeTree(opt.params());
    disposeTree(opt.state());
    return { passed: true, detail: `state ${structure} kept over ${steps} steps`, structure };
  } catch (error) {
    return { passed: false, detail: `threw: ${message(error)}`, structure };
  }
}

/** The hyperparameter the setHyper check changes, and to what. */
interface HyperChange {
  readonly name: string;
  readonly from: number;
  readonly to: number;
}

function pickHyper<H extends HyperDefaults, S>(
  op: string,
  optimizer: Optimizer<H, S>,
  options: SetHyperOptions,
): HyperChange | undefined {
  const { definition } = optimizer;
  const runtime = numericHyper(definition.hyper).filter(
    (k) => !(definition.static ?? []).includes(k),
  );
  const name = options.name ?? (runtime.includes('lr') ? 'lr' : runtime[0]);
  if (name === undefined) return undefined; // nothing numeric to change at run time
  if (!runtime.includes(name)) {
    throw new GrngError(
      op,
      `setHyper.name '${name}' must be a numeric hyperparameter of ` +
        `${optimizer.name} that is not static; runtime ones: ` +
        `${runtime.join(', ') || 'none'}`,
    );
  }
  const from = optimizer.hyper[name] as number;
  const factor = options.factor ?? 0.5;
  const to = from === 0 ? factor : from * factor;
  if (to === from)
    throw new GrngError(
      op,
      `setHyper.factor ${factor} leaves ${name} = ${from} unchanged; pick another factor`,
    );
  return { name, from, to };
}

/** The optimizer with its update wrapped to count traces (each trace is one program compiled). */
function countingTraces<H extends HyperDefaults, S>(
  optimizer: Optimizer<H, S>,
): { optimizer: Optimizer<H, S>; traces: () => number } {
  let traces = 0;
  const { definition } = optimizer;
  const make = defineOptimizer({
    ...definition,
    update: (ctx) => {
      traces++;
      return definition.update(ctx);
    },
  });
  return { optimizer: make(optimizer.hyper), traces: () => traces };
}

const programCount = (device: Device): number | undefined => {
  const count = (device as { programCount?: unknown }).programCount;
  return typeof count === 'number' ? count : undefined;
};

async function setHyperCheck<H extends HyperDefaults, S>(
  optimizer: Optimizer<H, S>,
  device: Device,
  seed: number,
  steps: number,
  change: HyperChange,
): Promise<SetHyperReport> {
  const { name, from, to } = change;
  const { params, grads } = randomProblem(seed + 1, steps);
  const at = Math.ceil(steps / 2);
  const base = { name, from, to, traces: [0, 0] as const, newPrograms: undefined, changed: false };
  try {
    // Each run compiles afresh; the run that changes the setting must trace (compile) exactly as
    // often as the run that does not. On WebGPU the second run must also compile no new program:
    // the first left every program it needs in the device's content-addressed cache.
    const run = async (withChange: boolean) => {
      const counted = countingTraces(optimizer);
      const opt = await compileOptimizer(counted.optimizer, hostTree(params, RANDOM_SHAPES), {
        device,
      });
      for (let t = 1; t <= steps; t++) {
        if (withChange && t === at) opt.setHyper({ [name]: to } as Partial<HyperSettings<H>>);
        await opt.step(hostTree(grads[t - 1], RANDOM_SHAPES));
      }
      const final = await readLeaves(opt.params());
      disposeTree(opt.params());
      disposeTree(opt.state());
      return { final, traces: counted.traces() };
    };
    const without = await run(false);
    const before = programCount(device);
    const withChange = await run(true);
    const after = programCount(device);
    const newPrograms = before === undefined || after === undefined ? undefined : after - before;
    const traces = [without.traces, withChange.traces] as const;
    const changed = !bitIdentical(without.final, withChange.final);
    const problems = [
      traces[1] !== traces[0]
        ? `setHyper({ ${name} }) recompiled: the update was traced ${traces[1]} ` +
          `time(s) instead of ${traces[0]} (two traces per compiled program: the purity check)`
        : '',
      newPrograms !== undefined && newPrograms !== 0
        ? `setHyper({ ${name} }) compiled ${newPrograms} new program(s) on the device`
        : '',
      changed
        ? ''
        : `setHyper({ ${name}: ${to} }) at step ${at} left every parameter as ` +
          `without it: the update ignores ctx.hyper.${name}`,
    ].filter((p) => p !== '');
    const detail =
      problems.length > 0
        ? problems.join('; ')
        : `${name} ${from} → ${to} at step ${at}: ${traces[1]} trace(s) as ` +
          `without the change${newPrograms === undefined ? '' : ', no new programs'}, parameters changed`;
    return { ...base, passed: problems.length === 0, detail, traces, newPrograms, changed };
  } catch (error) {
    return { ...base, passed: false, detail: `threw: ${message(error)}` };
  }
}

async function resume<H extends HyperDefaults, S>(
  optimizer: Optimizer<H, S>,
  device: Device,
  seed: number,
  steps: number,
): Promise<ResumeReport> {
  const { params, grads } = randomProblem(seed + 2, steps);
  const at = Math.floor(steps / 2);
  try {
    const whole = await compileOptimizer(optimizer, hostTree(params, RANDOM_SHAPES), { device });
    for (const g of grads) await whole.step(hostTree(g, RANDOM_SHAPES));
    const first = await compileOptimizer(optimizer, hostTree(params, RANDOM_SHAPES), { device });
    for (const g of grads.slice(0, at)) await first.step(hostTree(g, RANDOM_SHAPES));
    // A checkpoint on the host, then a fresh compiled optimizer from it.
    const resumed = await compileOptimizer(optimizer, await hostCopy(first.params()), {
      device,
      state: await hostCopy(first.state()),
      step: at,
    });
    for (const g of grads.slice(at)) await resumed.step(hostTree(g, RANDOM_SHAPES));
    // The same operations on the same numbers: identical to the last bit, state included.
    const same =
      bitIdentical(await readLeaves(resumed.params()), await readLeaves(whole.params())) &&
      bitIdentical(await readLeaves(resumed.state()), await readLeaves(whole.state()));
    const counted = resumed.steps === steps;
    for (const opt of [whole, first, resumed]) {
      disposeTree(opt.params());
      disposeTree(opt.state());
    }
    const passed = same && counted;
    const detail = !counted
      ? `the resumed optimizer counts ${resumed.steps} steps, expected ${steps}`
      : same
        ? `resumed at step ${at} of ${steps}: parameters and state bit-identical`
        : `resumed at step ${at} of ${steps}, the parameters or state differ ` +
          `from the uninterrupted run: the update depends on something outside ` +
          `params, state, hyper and t`;
    return { passed, detail, resumedAt: at, bitIdentical: same };
  } catch (error) {
    return {
      passed: false,
      detail: `threw: ${message(error)}`,
      resumedAt: at,
      bitIdentical: false,
    };
  }
}
