// checkTrainingOptimizer: an optimizer that needs a model — one reading ctx.loss, ctx.hvp,
// ctx.output, ctx.taps or labels sampled from the model — compiled into a training step
// (compileTrainStep) on random small models and batches, against the user's float64 reference.
// The reference gets the model's loss, gradient, Hessian-vector products, output and taps from an
// independent float64 engine (reference-model.ts), and the step's PRNG key, with which
// reference-random.ts recomputes the compiled step's random draws.
import fc from 'fast-check';
import { fmtShape, GrngError } from '../core/errors.js';
import { array } from '../core/host-array.js';
import { crossEntropy, meanSquaredError } from '../dsl/ops/composites.js';
import type { HyperDefaults, HyperSettings, Optimizer } from '../dsl/optimizer.js';
import { CpuDevice } from '../runtime/cpu-device.js';
import type { Device } from '../runtime/device.js';
import { compileTrainStep } from '../runtime/train-step.js';
import { blame, isFloat64, messageOf, SideError } from './check-support.js';
import {
  DEFAULT_SEED,
  type CheckOptimizerOptions,
  type CheckOptimizerResult,
} from './check-optimizer.js';
import { formatLeaves, leavesMismatch, worstDifference, type Difference } from './compare.js';
import { stepKey, type Key as ReferenceKey } from './reference-random.js';
import {
  anyTrainingCase,
  type AnyTrainingCase,
  type TrainingCaseOptions,
} from './training-case.js';
import { minOutputs, type BatchLabels } from './training-targets.js';
import type { ReferenceTarget } from './reference-model.js';
import { trainingProblem, type TrainingProblem } from './training-problem.js';
import { disposeTree, readLeaves } from './trees.js';

/**
 * One dense-layer tap: a [rows × in] (ones column last when the layer has a bias) and g
 * [rows × out], row-major, with rows = batch·positions (sample-major: row n·positions + t). The
 * layer's gradient is gᵀa / batch.
 */
export interface TrainingTap {
  readonly a: Float64Array;
  readonly g: Float64Array;
  readonly batch: number;
  /** Positions per sample where the layer shares its weights (tokens), 1 for [B, d] inputs. */
  readonly positions: number;
  readonly in: number;
  readonly out: number;
  /** Leaf indices of the layer's W and (with a bias) b. */
  readonly w: number;
  readonly b?: number;
}

/**
 * What a reference step sees, all float64 and all about its own current parameters. Parameters
 * are lists of leaves in flattenTree order (`names[k]` says which, e.g. 'layers.0.w'); omitted
 * `params` mean the current ones, omitted `labels` the batch's.
 */
export interface TrainingReferenceContext<H extends HyperDefaults = HyperDefaults> {
  readonly params: readonly Float64Array[];
  readonly grads: readonly Float64Array[];
  readonly names: readonly string[];
  readonly shapes: readonly (readonly number[])[];
  readonly hyper: HyperSettings<H>;
  /** The step number t = 1, 2, … */
  readonly t: number;
  /** The step's PRNG key, foldIn(prngKey(seed), t): what ctx.key held in the compiled step. */
  readonly key: ReferenceKey;
  /**
   * The batch's class indices [batch] (Int32Array), or its real targets [batch × classes]
   * (Float64Array, row-major) for task 'regression'.
   */
  readonly labels: BatchLabels;
  readonly batch: number;
  /** Classes, or regression outputs. */
  readonly classes: number;
  /** The minibatch's mean cross-entropy (task 'regression': the mean squared error). */
  loss(params?: readonly Float64Array[], labels?: BatchLabels): number;
  gradient(params?: readonly Float64Array[], labels?: BatchLabels): Float64Array[];
  /** ∇²L(θ)·v at the current parameters, by forward-over-reverse dual numbers. */
  hvp(v: readonly Float64Array[]): Float64Array[];
  /** The logits (or regression outputs) [batch × classes], row-major. */
  output(params?: readonly Float64Array[]): Float64Array;
  /**
   * Jᵀu for a cotangent u [batch × classes] of the output: ∂⟨u, output(params)⟩/∂θ per leaf. With u
   * the unit vector of entry (n, c) it is row (n, c) of the output's Jacobian, e.g. a Gauss–Newton
   * or Kalman observation row.
   */
  outputVjp(cotangent: Float64Array, params?: readonly Float64Array[]): Float64Array[];
  /**
   * Per dense layer (a LoRA layer is two: A, then B; attention four: q, k, v, o), in the order the
   * model applies them.
   */
  readonly taps: readonly TrainingTap[];
  tapsFor(labels: BatchLabels): readonly TrainingTap[];
}

/** One reference step: `state` is undefined at t = 1. Return new arrays. */
export type TrainingReferenceStep<R, H extends HyperDefaults = HyperDefaults> = (
  ctx: TrainingReferenceContext<H>,
  state: R | undefined,
) => { readonly params: readonly Float64Array[]; readonly state: R };

/** checkOptimizer's options that apply here, and the bounds of the random problems. */
export interface CheckTrainingOptions<H extends HyperDefaults = HyperDefaults>
  extends
    TrainingCaseOptions,
    Pick<CheckOptimizerOptions<H>, 'seed' | 'path' | 'device' | 'hyper' | 'settings' | 'log'> {
  /** Random problems (default 15). */
  readonly numRuns?: number;
  /** Steps per problem (default 3). */
  readonly steps?: number;
  /**
   * Largest |got − want| / max(1, |want|) for every parameter after every step. Default 1e-9 on the
   * float64 interpreter; required on float32 devices.
   */
  readonly tolerance?: number;
}

const F64_TOLERANCE = 1e-9;

/**
 * Property-tests `optimizer` inside compiled training steps against `reference` on random small
 * models (dense stacks, an optional LoRA layer; with `kinds: ['transformer']` token models with
 * token-wise dense, layerNorm and attention blocks) and batches. Returns the worst error seen;
 * throws a GrngError with the seed, the shrunk problem and the parameter and step that diverged.
 */
export async function checkTrainingOptimizer<H extends HyperDefaults, S, R>(
  optimizer: Optimizer<H, S>,
  reference: TrainingReferenceStep<R, H>,
  options: CheckTrainingOptions<H> = {},
): Promise<CheckOptimizerResult> {
  const op = 'checkTrainingOptimizer';
  const { seed = DEFAULT_SEED, numRuns = 15, steps = 3, log = console.log } = options;
  const device = options.device ?? new CpuDevice('f64');
  const float64 = isFloat64(device);
  const tolerance = options.tolerance ?? (float64 ? F64_TOLERANCE : undefined);
  if (tolerance === undefined)
    throw new GrngError(
      op,
      `${device.description} computes in float32: pass options.tolerance (the largest ` +
        `|got − want| / max(1, |want|) to accept), justified by the optimizer's conditioning`,
    );
  if (!(tolerance >= 0) || !Number.isFinite(tolerance))
    throw new GrngError(op, `tolerance must be a finite number ≥ 0, got ${String(tolerance)}`);
  const { task = 'classification' } = options;
  if (task !== 'classification' && task !== 'regression')
    throw new GrngError(
      op,
      `task must be 'classification' or 'regression', got ${JSON.stringify(task)}`,
    );
  // Classifiers need two classes; a regression model may have one output.
  const fewestOutputs = minOutputs(task);
  for (const [name, n] of [
    ['numRuns', numRuns],
    ['steps', steps],
    ['maxDepth', options.maxDepth ?? 0],
    ['maxWidth', options.maxWidth ?? 1],
    ['maxClasses', (options.maxClasses ?? fewestOutputs) - fewestOutputs + 1],
    ['maxBatch', options.maxBatch ?? 1],
    ['maxTokens', options.maxTokens ?? 1],
  ] as const) {
    if (!Number.isInteger(n) || n < (name === 'maxDepth' ? 0 : 1))
      throw new GrngError(
        op,
        name === 'maxClasses'
          ? `maxClasses must be an integer ≥ ${fewestOutputs}` +
              `${task === 'regression' ? ' for regression' : ''}, got ${String(options.maxClasses)}`
          : `${name} must be a ${name === 'maxDepth' ? 'non-negative' : 'positive'} integer, ` +
              `got ${String(n)}`,
      );
  }
  const known = ['tanh', 'relu', 'gelu'];
  const { activations } = options;
  if (
    activations !== undefined &&
    (!Array.isArray(activations) ||
      activations.length === 0 ||
      !activations.every((a) => known.includes(a)))
  )
    throw new GrngError(
      op,
      `activations must be a non-empty list of ${known.join(', ')}, got ${JSON.stringify(activations)}`,
    );
  const { kinds } = options;
  if (
    kinds !== undefined &&
    (!Array.isArray(kinds) ||
      kinds.length === 0 ||
      !kinds.every((k) => k === 'stack' || k === 'transformer'))
  )
    throw new GrngError(
      op,
      `kinds must be a non-empty list of 'stack', 'transformer', got ${JSON.stringify(kinds)}`,
    );
  if (typeof reference !== 'function')
    throw new GrngError(
      op,
      `the reference must be a function (ctx, state) => { params, state }, got ${typeof reference}`,
    );
  const base = options.hyper === undefined ? optimizer : optimizer.with(options.hyper);
  log(
    `${op}(${base.name}): fast-check seed ${seed}, ${numRuns} runs × ${steps} steps` +
      `${task === 'regression' ? ' of regression' : ''} on ${device.description}`,
  );
  let worstError = 0;
  // Shrinking minimizes the problem, not the error, so the shrunk case may only just exceed the
  // tolerance: the first failure's size is reported too.
  let firstFailure: Outcome | undefined;
  const settings = options.settings ?? fc.constant({});
  const property = fc.asyncProperty(anyTrainingCase(options, steps, settings), async (c) => {
    const outcome = await runCase(base, reference, c, device, float64, tolerance);
    worstError = Math.max(worstError, outcome.error);
    if (outcome.error > tolerance) {
      firstFailure ??= outcome;
      throw new Mismatch(outcome);
    }
  });
  const details = await fc.check(property, {
    seed,
    numRuns,
    path: options.path,
    endOnFailure: false,
  });
  if (!details.failed) return { worstError, runs: details.numRuns, seed };
  if (details.counterexample === null)
    throw new GrngError(op, `fast-check stopped without a counterexample; seed ${seed}`);
  throw new GrngError(
    op,
    failureMessage(base.name, details.counterexample[0], details.errorInstance, {
      seed,
      tolerance,
      shrinks: details.numShrinks,
      path: details.counterexamplePath,
      first: firstFailure,
    }),
  );
}

interface Outcome extends Difference {
  readonly step: number;
  readonly name: string;
  readonly shape: readonly number[];
}

class Mismatch extends Error {
  constructor(readonly outcome: Outcome) {
    super(`step ${outcome.step}, ${outcome.name}: ${outcome.got} vs ${outcome.want}`);
  }
}

/** The reference's view of one step at `params` on `batch`. */
function referenceContext<H extends HyperDefaults>(
  problem: TrainingProblem,
  params: readonly Float64Array[],
  batch: { readonly x: Float64Array; readonly labels: BatchLabels },
  info: { hyper: HyperSettings<H>; t: number; seed: number },
): TrainingReferenceContext<H> {
  const pass = (p = params, labels: ReferenceTarget = batch.labels, v?: readonly Float64Array[]) =>
    problem.pass(p, batch.x, labels, v);
  const copy = (xs: readonly Float64Array[]) => xs.map((x) => Float64Array.from(x));
  const current = pass();
  const tapsOf = (labels: BatchLabels) => pass(params, labels).taps;
  return {
    params: copy(params),
    grads: current.gradient,
    names: problem.names,
    shapes: problem.shapes,
    hyper: info.hyper,
    t: info.t,
    key: stepKey(info.seed, info.t),
    labels: batch.labels.slice(),
    batch: batch.x.length / problem.inputWidth,
    classes: problem.classes,
    loss: (p, labels) => pass(p, labels).loss,
    gradient: (p, labels) => pass(p, labels).gradient,
    hvp: (v) => pass(params, batch.labels, v).hvp,
    output: (p) => Float64Array.from(pass(p).output),
    outputVjp: (u, p) => {
      if (!(u instanceof Float64Array) || u.length !== current.output.length)
        throw new GrngError(
          'outputVjp',
          `the cotangent must be a Float64Array of ${current.output.length} values (the output's)`,
        );
      return pass(p, { cotangent: u }).gradient;
    },
    taps: current.taps,
    tapsFor: tapsOf,
  };
}

async function runCase<H extends HyperDefaults, S, R>(
  base: Optimizer<H, S>,
  reference: TrainingReferenceStep<R, H>,
  c: AnyTrainingCase<Partial<HyperSettings<H>>>,
  device: Device,
  float64: boolean,
  tolerance: number,
): Promise<Outcome> {
  // A float32 device holds rounded values: the reference starts from the same numbers.
  const round = (x: Float64Array) => (float64 ? Float64Array.from(x) : x.map(Math.fround));
  const problem = trainingProblem(c, round);
  const { names, shapes } = problem;
  const regression = c.batches[0].labels instanceof Float64Array;
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
  const step = await blame('the optimizer', 0, () =>
    compileTrainStep({
      model: problem.model,
      loss: regression ? meanSquaredError : crossEntropy,
      optimizer,
      params: problem.hostParams(problem.initial),
      device,
      seed: c.seed,
    }),
  );
  let params = problem.initial.map((x) => Float64Array.from(x));
  let state: R | undefined;
  let outcome: Outcome = {
    error: 0,
    leaf: 0,
    index: 0,
    got: 0,
    want: 0,
    step: 0,
    name: names[0],
    shape: shapes[0],
  };
  for (let t = 1; t <= c.batches.length; t++) {
    const { x, labels } = c.batches[t - 1];
    const b = { x: round(x), labels: labels instanceof Float64Array ? round(labels) : labels };
    await blame('the optimizer', t, () =>
      step.run({
        x: array(b.x, [c.batch, problem.inputWidth]),
        y:
          b.labels instanceof Float64Array
            ? array(b.labels, [c.batch, problem.classes])
            : array(b.labels, [c.batch], 'i32'),
      }),
    );
    const tree = await step.params();
    const got = await blame('the optimizer', t, () => readLeaves(tree));
    const ctx = referenceContext(problem, params, b, { hyper, t, seed: c.seed });
    const out = await blame('the reference', t, () => reference(ctx, state));
    const wrong = leavesMismatch(out?.params, shapes);
    if (wrong !== undefined)
      throw new SideError('the reference', t, new Error(`its params ${wrong}`));
    const d = worstDifference(got, out.params);
    const worst = { ...d, step: t, name: names[d.leaf], shape: shapes[d.leaf] };
    if (worst.error > outcome.error) outcome = worst;
    if (worst.error > tolerance) break;
    params = out.params.map((x) => Float64Array.from(x));
    state = out.state;
  }
  disposeTree(await step.params());
  disposeTree(await step.state());
  return outcome;
}

function failureMessage<S>(
  name: string,
  c: AnyTrainingCase<S>,
  error: unknown,
  info: {
    seed: number;
    tolerance: number;
    shrinks: number;
    path: string | null;
    first: Outcome | undefined;
  },
): string {
  const problem = trainingProblem(c);
  let what: string;
  let step = c.batches.length;
  if (error instanceof Mismatch) {
    const o = error.outcome;
    step = o.step;
    what =
      `${name} differs from the reference by ${o.error.toExponential(3)} (worst ` +
      `|got − want| / max(1, |want|); tolerance ${info.tolerance}) at step ${o.step} in ` +
      `${o.name} (shape ${fmtShape(o.shape)}), element ${o.index}: optimizer ${o.got}, ` +
      `reference ${o.want}.` +
      (info.first === undefined || info.first.error <= o.error
        ? ''
        : ` Before shrinking, the first failing problem differed by ` +
          `${info.first.error.toExponential(3)} (step ${info.first.step}, ${info.first.name}).`);
  } else if (error instanceof SideError) {
    step = Math.max(1, error.step);
    what =
      `${error.side === 'the optimizer' ? name : 'the reference'} threw ` +
      `${error.step === 0 ? 'while compiling' : `at step ${error.step}`}: ${messageOf(error.thrown)}`;
  } else what = `the property failed: ${messageOf(error)}`;
  const path = info.path === null ? '' : `, path: '${info.path}'`;
  return [
    what,
    `Shrunk counterexample (${info.shrinks} shrinks; seed ${info.seed}${path}):`,
    `  ${problem.description}; batch ${c.batch}; key seed ${c.seed}`,
    `  settings: ${JSON.stringify(c.settings)}`,
    `  initial params (${problem.names.join(', ')}): ${formatLeaves(problem.initial)}`,
    ...c.batches
      .slice(0, step)
      .map(
        (b, t) =>
          `  batch ${t + 1}: x ${formatLeaves([b.x])}, ` +
          (b.labels instanceof Float64Array
            ? `targets ${formatLeaves([b.labels])}`
            : `labels [${b.labels.join(', ')}]`),
      ),
    `Replay it with checkTrainingOptimizer(…, { seed: ${info.seed}${path} }).`,
  ].join('\n');
}
