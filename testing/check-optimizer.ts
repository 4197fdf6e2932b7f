// checkOptimizer: a user's optimizer (written with defineOptimizer), compiled, against a float64
// reference the user writes in plain loops, on random parameter trees and gradient sequences
// driven by fast-check. A mismatch is shrunk to a small counterexample and reported as a GrngError.
import fc from 'fast-check';
import { fmtShape, GrngError } from '../core/errors.js';
import type { HyperDefaults, HyperSettings, Optimizer } from '../dsl/optimizer.js';
import { compileOptimizer } from '../runtime/compile-optimizer.js';
import { CpuDevice } from '../runtime/cpu-device.js';
import type { Device } from '../runtime/device.js';
import {
  cutToShape,
  leafArray,
  maxSize,
  shape,
  valueArray,
  type ShapeOptions,
  type ValueOptions,
} from './arbitraries.js';
import {
  formatLeaves,
  formatShapes,
  leavesMismatch,
  worstDifference,
  type Difference,
} from './compare.js';
import { blame, isFloat64, SideError } from './check-support.js';
import { requireGradientOnly } from './gradient-only.js';
import {
  disposeTree,
  hostTree,
  readLeaves,
  sizeOf,
  TREE_STRUCTURES,
  type TreeStructure,
} from './trees.js';

/**
 * One step of a float64 reference, over the parameter tree's leaves in flattenTree order (arrays
 * by index, objects by sorted key; for the trees checkOptimizer makes, leaf k has shape
 * shapes[k]). `state` is undefined on the first step (t = 1): make the initial state then.
 * Return new arrays; the arguments are copies, so writing into them is harmless too.
 */
export type ReferenceStep<R, H extends HyperDefaults = HyperDefaults> = (
  params: readonly Float64Array[],
  grads: readonly Float64Array[],
  state: R | undefined,
  hyper: HyperSettings<H>,
  step: number,
  shapes: readonly (readonly number[])[],
) => { readonly params: readonly Float64Array[]; readonly state: R };

export interface CheckOptimizerOptions<H extends HyperDefaults = HyperDefaults> {
  /**
   * fast-check seed (default 20261128, fixed so runs repeat); printed once per call and returned.
   */
  readonly seed?: number;
  /** Replays one counterexample: the `path` a failure message gives, with its seed. */
  readonly path?: string;
  /** Random cases (default 30). */
  readonly numRuns?: number;
  /**
   * Steps per case, each compared after it (default 4; most cases take all, shrinking takes fewer).
   */
  readonly steps?: number;
  /**
   * Where the compiled optimizer runs (default the float64 interpreter, createDevice({ kind: 'cpu'
   * })).
   */
  readonly device?: Device;
  /**
   * Largest allowed |got − want| / max(1, |want|) for every parameter after every step. Default
   * 1e-10 on the float64 interpreter (the same formulas in another order differ by a few ulps,
   * amplified by the optimizer's conditioning). Required on float32 devices: what float32 can
   * reach depends on the optimizer (a division by √v̂ + ε amplifies rounding, a sign() flips).
   */
  readonly tolerance?: number;
  /** Hyperparameter settings applied to the optimizer (as optimizer.with(hyper)). */
  readonly hyper?: Partial<HyperSettings<H>>;
  /**
   * Settings drawn per case on top of `hyper`, e.g. fc.record({ lr: fc.double(…) }); shrunk with
   * the rest.
   */
  readonly settings?: fc.Arbitrary<Partial<HyperSettings<H>>>;
  /** Fixed parameter shapes instead of random ones (1–3 leaves, rank 0–2, dimensions 1–3). */
  readonly shapes?: readonly (readonly number[])[];
  /** Bounds of the random shapes (ignored with `shapes`). */
  readonly shapeOptions?: ShapeOptions;
  /**
   * Range and resolution of the random parameter and gradient values (default [−1, 1] in steps of
   * 2^−16).
   */
  readonly values?: ValueOptions;
  /** Where the seed line goes (default console.log); pass () => {} to silence it. */
  readonly log?: (line: string) => void;
}

export interface CheckOptimizerResult {
  /** The worst |got − want| / max(1, |want|) seen over all runs, steps and parameters. */
  readonly worstError: number;
  readonly runs: number;
  readonly seed: number;
}

/**
 * One random case: how the tree is arranged, the leaves' shapes, initial values and one gradient
 * list per step.
 */
export interface OptimizerCase<H extends HyperDefaults = HyperDefaults> {
  readonly structure: TreeStructure;
  readonly shapes: number[][];
  readonly params: Float64Array[];
  readonly grads: Float64Array[][];
  readonly settings: Partial<HyperSettings<H>>;
}

export const DEFAULT_SEED = 20261128;
const F64_TOLERANCE = 1e-10;
const PROBE_SHAPES = [[2], [2, 2]];

/**
 * Property-tests `optimizer` (gradient-only: it runs through compileOptimizer) against `reference`:
 * for random parameter trees and gradient sequences, the compiled optimizer's parameters after
 * every step must match the reference's within `tolerance`. Returns the worst error seen; throws
 * a GrngError with the seed and the shrunk counterexample when they differ, when either side
 * throws, or when the optimizer needs a model (curvature optimizers: not covered yet).
 */
export async function checkOptimizer<H extends HyperDefaults, S, R>(
  optimizer: Optimizer<H, S>,
  reference: ReferenceStep<R, H>,
  options: CheckOptimizerOptions<H> = {},
): Promise<CheckOptimizerResult> {
  const op = 'checkOptimizer';
  const { seed = DEFAULT_SEED, numRuns = 30, steps = 4, log = console.log } = options;
  const device = options.device ?? new CpuDevice('f64');
  const float64 = isFloat64(device);
  const tolerance = options.tolerance ?? (float64 ? F64_TOLERANCE : undefined);
  if (tolerance === undefined) {
    throw new GrngError(
      op,
      `${device.description} computes in float32: pass options.tolerance ` +
        `(the largest |got − want| / max(1, |want|) to accept); ` +
        `a good value depends on the optimizer's conditioning (e.g. 1e-5 for ` +
        `SGD, 1e-3 for Adam-like divisions)`,
    );
  }
  if (!(tolerance >= 0) || !Number.isFinite(tolerance))
    throw new GrngError(op, `tolerance must be a finite number ≥ 0, got ${String(tolerance)}`);
  for (const [name, n] of [
    ['numRuns', numRuns],
    ['steps', steps],
  ] as const) {
    if (!Number.isInteger(n) || n < 1)
      throw new GrngError(op, `${name} must be a positive integer, got ${String(n)}`);
  }
  const { shapes } = options;
  if (
    shapes !== undefined &&
    (shapes.length === 0 ||
      !shapes.every((s) => Array.isArray(s) && s.every((d) => Number.isInteger(d) && d >= 1)))
  ) {
    throw new GrngError(
      op,
      `shapes must be a non-empty list of shapes (arrays of positive ` +
        `integers), got ${JSON.stringify(shapes)}`,
    );
  }
  if (typeof reference !== 'function')
    throw new GrngError(
      op,
      `the reference must be a function (params, grads, state, hyper, step) ` +
        `=> { params, state }, got ${typeof reference}`,
    );
  const base = options.hyper === undefined ? optimizer : optimizer.with(options.hyper);
  requireGradientOnly(op, base, shapes ?? PROBE_SHAPES);

  log(
    `${op}(${base.name}): fast-check seed ${seed}, ${numRuns} runs × ` +
      `${steps} steps on ${device.description}`,
  );
  let worstError = 0;
  const property = fc.asyncProperty(optimizerCase<H>(options, steps), async (c) => {
    const outcome = await runCase(base, reference, c, device, float64, tolerance);
    worstError = Math.max(worstError, outcome.error);
    if (outcome.error > tolerance) throw new Mismatch(outcome);
  });
  // endOnFailure false whatever the global configuration says: the counterexample must be shrunk.
  const details = await fc.check(property, {
    seed,
    numRuns,
    path: options.path,
    endOnFailure: false,
  });
  if (!details.failed) return { worstError, runs: details.numRuns, seed };
  if (details.counterexample === null) {
    throw new GrngError(
      op,
      `fast-check stopped without a counterexample ` +
        `(${details.interrupted ? 'interrupted by a time limit' : 'too many skipped runs'}); seed ${seed}`,
    );
  }
  throw new GrngError(
    op,
    failureMessage(base.name, details.counterexample[0], details.errorInstance, {
      seed,
      tolerance,
      numRuns,
      failedRun: details.numRuns,
      shrinks: details.numShrinks,
      path: details.counterexamplePath,
    }),
  );
}

/**
 * Random cases, drawn leaf by leaf (shape, initial values, one gradient per step; values drawn for
 * the largest shape and cut to the leaf's own). Shrinking cuts the steps (towards 1), removes whole
 * leaves, shortens shapes (the remaining values stay), then shrinks values (towards 0).
 */
function optimizerCase<H extends HyperDefaults>(
  options: CheckOptimizerOptions<H>,
  steps: number,
): fc.Arbitrary<OptimizerCase<H>> {
  const leafCase = (shapeArb: fc.Arbitrary<number[]>, size: number) =>
    fc.tuple(
      shapeArb,
      valueArray(size, options.values),
      fc.array(valueArray(size, options.values), { minLength: steps, maxLength: steps }),
    );
  const fixed = options.shapes?.map((s) => [...s]);
  const { minLeaves = 1, maxLeaves = 3 } = options.shapeOptions ?? {};
  const leaves =
    fixed === undefined
      ? leafArray(
          leafCase(shape(options.shapeOptions), maxSize(options.shapeOptions)),
          minLeaves,
          maxLeaves,
        )
      : fc.tuple(...fixed.map((s) => leafCase(fc.constant(s), sizeOf(s))));
  // k in [1, 2·steps − 1] cut to `steps`: most cases run every step, and k shrinks towards 1.
  const length = fc.integer({ min: 1, max: 2 * steps - 1 }).map((k) => Math.min(k, steps));
  const settings = options.settings ?? fc.constant({});
  // The step count shrinks first (while the values still fail), then the leaves, then the rest.
  return fc
    .tuple(length, leaves, fc.constantFrom(...TREE_STRUCTURES), settings)
    .map(([n, ls, structure, drawn]) => ({
      structure,
      shapes: ls.map(([s]) => s),
      params: ls.map(([s, p]) => cutToShape(p, s)),
      grads: Array.from({ length: n }, (_, t) => ls.map(([s, , g]) => cutToShape(g[t], s))),
      settings: drawn,
    }));
}

/** The worst difference of a case (of the first step past the tolerance, when one is). */
interface Outcome extends Difference {
  readonly step: number;
  readonly shape: readonly number[];
}

class Mismatch extends Error {
  constructor(readonly outcome: Outcome) {
    super(`step ${outcome.step}, leaf ${outcome.leaf}: ${outcome.got} vs ${outcome.want}`);
  }
}

async function runCase<H extends HyperDefaults, S, R>(
  base: Optimizer<H, S>,
  reference: ReferenceStep<R, H>,
  c: OptimizerCase<H>,
  device: Device,
  float64: boolean,
  tolerance: number,
): Promise<Outcome> {
  // A float32 device holds rounded values: the reference starts from the same numbers.
  const round = (xs: readonly Float64Array[]) =>
    xs.map((x) => (float64 ? Float64Array.from(x) : x.map(Math.fround)));
  const optimizer = await blame('the optimizer', 0, () => base.with(c.settings));
  const hyper = (
    float64
      ? optimizer.hyper
      : Object.fromEntries(
          Object.entries(optimizer.hyper).map(([k, v]) => [
            k,
            typeof v === 'number' ? Math.fround(v) : v,
          ]),
        )
  ) as HyperSettings<H>;
  const compiled = await blame('the optimizer', 0, () =>
    compileOptimizer(optimizer, hostTree(c.params, c.shapes, c.structure), { device }),
  );
  let params: Float64Array[] = round(c.params);
  let state: R | undefined;
  let outcome: Outcome = {
    error: 0,
    leaf: 0,
    index: 0,
    got: 0,
    want: 0,
    step: 0,
    shape: c.shapes[0],
  };
  try {
    for (let t = 1; t <= c.grads.length; t++) {
      const grads = round(c.grads[t - 1]);
      await blame('the optimizer', t, () => compiled.step(hostTree(grads, c.shapes, c.structure)));
      const got = await blame('the optimizer', t, () => readLeaves(compiled.params()));
      const out = await blame('the reference', t, () =>
        reference(
          params.map((x) => Float64Array.from(x)),
          round(grads),
          state,
          hyper,
          t,
          c.shapes,
        ),
      );
      const wrong = leavesMismatch(out?.params, c.shapes);
      if (wrong !== undefined)
        throw new SideError('the reference', t, new Error(`its params ${wrong}`));
      const difference = worstDifference(got, out.params);
      const worst = { ...difference, step: t, shape: c.shapes[difference.leaf] };
      if (worst.error > outcome.error) outcome = worst;
      // The first step past the tolerance ends the case: the counterexample needs no later steps.
      if (worst.error > tolerance) return worst;
      // The reference carries on in float64 (the tolerance covers a float32 device's drift).
      params = out.params.map((x) => Float64Array.from(x));
      state = out.state;
    }
  } finally {
    disposeTree(compiled.params());
    disposeTree(compiled.state());
  }
  return outcome;
}

interface FailureInfo {
  readonly seed: number;
  readonly tolerance: number;
  readonly numRuns: number;
  readonly failedRun: number;
  readonly shrinks: number;
  readonly path: string | null;
}

function failureMessage<H extends HyperDefaults>(
  name: string,
  c: OptimizerCase<H>,
  error: unknown,
  info: FailureInfo,
): string {
  const step =
    error instanceof Mismatch
      ? error.outcome.step
      : error instanceof SideError
        ? error.step
        : c.grads.length;
  let what: string;
  if (error instanceof Mismatch) {
    const o = error.outcome;
    what =
      `${name} differs from the reference by ${o.error.toExponential(3)} ` +
      `(worst error |got − want| / max(1, |want|); tolerance ` +
      `${info.tolerance}) ` +
      `at step ${o.step}, leaf ${o.leaf} (shape ${fmtShape(o.shape)}), ` +
      `element ${o.index}: optimizer ${o.got}, reference ${o.want}.`;
  } else if (error instanceof SideError) {
    what =
      `${error.side === 'the optimizer' ? name : 'the reference'} threw ` +
      `${step === 0 ? 'while compiling' : `at step ${step}`}: ` +
      `${error.thrown instanceof Error ? error.thrown.message : String(error.thrown)}`;
  } else {
    what = `the property failed: ${error instanceof Error ? error.message : String(error)}`;
  }
  const shown = Math.max(1, step);
  const lines = [
    what,
    `Shrunk counterexample (${info.shrinks} shrinks; first failure on run ` +
      `${info.failedRun} of ${info.numRuns}; seed ` +
      `${info.seed}${info.path === null ? '' : `, path "${info.path}"`}):`,
    `  tree: ${c.structure}, shapes ${formatShapes(c.shapes)} (leaves in flattenTree order)`,
    `  settings: ${JSON.stringify(c.settings)}`,
    `  initial params: ${formatLeaves(c.params)}`,
    `  gradients, steps 1–${shown}: [${c.grads.slice(0, shown).map(formatLeaves).join(', ')}]`,
    `Replay it with checkOptimizer(…, { seed: ` +
      `${info.seed}${info.path === null ? '' : `, path: '${info.path}'`} }).`,
  ];
  return lines.join('\n');
}
