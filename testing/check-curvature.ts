// checkCurvatureOptimizer: checkOptimizer for optimizers that read the dense layers' taps
// (ctx.taps: input activations a and output gradients g, as K-FAC- and RING-style methods do).
// Cases are stacks of dense layers { w [out, in], b [out] } with random parameters, gradients and
// tap data per step; the compiled update sees the taps as its inputs, the user's float64
// reference gets the same numbers. Mismatches are shrunk (fewer steps, layers, rows, columns).
import fc from 'fast-check';
import { GrngError } from '../core/errors.js';
import type {
  HyperDefaults,
  HyperSettings,
  LayerInfo,
  LayerTap,
  Optimizer,
  ParamTree,
} from '../dsl/optimizer.js';
import type { Tensor } from '../dsl/tensor.js';
import type { Tree } from '../core/tree.js';
import {
  applyUpdate,
  modelFreeExtras,
  numericHyper,
  stepCounter,
} from '../runtime/compile-optimizer.js';
import { CpuDevice } from '../runtime/cpu-device.js';
import type { Device, DeviceArray } from '../runtime/device.js';
import { array } from '../core/host-array.js';
import { jit } from '../runtime/jit.js';
import { StepVariants } from '../runtime/step-variants.js';
import { valueArray } from './arbitraries.js';
import { isFloat64 } from './check-support.js';
import { worstDifference } from './compare.js';
import {
  DEFAULT_SEED,
  type CheckOptimizerOptions,
  type CheckOptimizerResult,
} from './check-optimizer.js';
import { disposeTree, readLeaves } from './trees.js';

/** One dense layer's values: W row-major [out × in] and b [out]. */
export interface DenseValues {
  readonly w: Float64Array;
  readonly b: Float64Array;
}

/**
 * One layer's taps for a step: a [batch × (in + 1)] with its ones column last, g [batch × out],
 * row-major.
 */
export interface TapValues {
  readonly a: Float64Array;
  readonly g: Float64Array;
  readonly batch: number;
}

export interface LayerSize {
  readonly in: number;
  readonly out: number;
}

/**
 * One step of the user's float64 reference: layers and gradients per layer, the taps, `state`
 * undefined at t = 1.
 */
export type CurvatureReferenceStep<R, H extends HyperDefaults = HyperDefaults> = (
  layers: readonly DenseValues[],
  grads: readonly DenseValues[],
  taps: readonly TapValues[],
  state: R | undefined,
  hyper: HyperSettings<H>,
  step: number,
  sizes: readonly LayerSize[],
) => { readonly layers: readonly DenseValues[]; readonly state: R };

/** checkOptimizer's options that apply here, and the sizes of the random layer stacks. */
export interface CheckCurvatureOptions<H extends HyperDefaults = HyperDefaults> extends Pick<
  CheckOptimizerOptions<H>,
  'seed' | 'numRuns' | 'steps' | 'device' | 'tolerance' | 'hyper' | 'settings' | 'values' | 'log'
> {
  /**
   * Layers 1–maxLayers (default 2), widths 1–maxWidth (default 3), batch rows 1–maxBatch (default
   * 4).
   */
  readonly maxLayers?: number;
  readonly maxWidth?: number;
  readonly maxBatch?: number;
}

interface CurvatureCase<H extends HyperDefaults> {
  readonly sizes: LayerSize[];
  readonly batch: number;
  readonly layers: DenseValues[];
  /** Per step: per layer gradients and taps. */
  readonly steps: { readonly grads: DenseValues[]; readonly taps: TapValues[] }[];
  readonly settings: Partial<HyperSettings<H>>;
}

/**
 * Property-tests an optimizer that reads ctx.taps (and gradients) against `reference` on random
 * dense-layer stacks and tap data. Returns the worst error; throws a GrngError with the seed and
 * the shrunk case on a mismatch. ctx.hvp, ctx.loss, ctx.output and sampled-label taps need a
 * model: use settings that avoid them (e.g. fisher: 'empirical').
 */
export async function checkCurvatureOptimizer<H extends HyperDefaults, S, R>(
  optimizer: Optimizer<H, S>,
  reference: CurvatureReferenceStep<R, H>,
  options: CheckCurvatureOptions<H> = {},
): Promise<CheckOptimizerResult> {
  const op = 'checkCurvatureOptimizer';
  const { seed = DEFAULT_SEED, numRuns = 20, steps = 3, log = console.log } = options;
  const device = options.device ?? new CpuDevice('f64');
  const float64 = isFloat64(device);
  const tolerance = options.tolerance ?? (float64 ? 1e-10 : undefined);
  if (tolerance === undefined || !(tolerance >= 0))
    throw new GrngError(
      op,
      `${device.description} computes in float32: pass options.tolerance, ` +
        `justified by the optimizer's conditioning`,
    );
  const base = options.hyper === undefined ? optimizer : optimizer.with(options.hyper);
  log(
    `${op}(${base.name}): fast-check seed ${seed}, ${numRuns} runs × ` +
      `${steps} steps on ${device.description}`,
  );
  let worstError = 0;
  const property = fc.asyncProperty(curvatureCase<H>(options, steps), async (c) => {
    const error = await runCase(base, reference, c, device, float64);
    worstError = Math.max(worstError, error.error);
    if (error.error > tolerance)
      throw new Mismatch(
        `step ${error.step}: worst error ${error.error.toExponential(3)} ` +
          `(optimizer ${error.got}, reference ${error.want})`,
      );
  });
  const details = await fc.check(property, { seed, numRuns, endOnFailure: false });
  if (!details.failed) return { worstError, runs: details.numRuns, seed };
  const c = details.counterexample?.[0];
  const reason =
    details.errorInstance instanceof Error
      ? details.errorInstance.message
      : String(details.errorInstance);
  const shown =
    c === undefined
      ? 'none'
      : `layers ${c.sizes.map((s) => `${s.out}×${s.in}`).join(', ')}, batch ` +
        `${c.batch}, settings ${JSON.stringify(c.settings)}, ${c.steps.length} ` +
        `step(s)\n  initial layers: ` +
        `${JSON.stringify(c.layers.map((l) => ({ w: Array.from(l.w), b: Array.from(l.b) })))}\n  steps: ${JSON.stringify(c.steps.map((s) => ({ grads: s.grads.map((g) => ({ w: Array.from(g.w), b: Array.from(g.b) })), taps: s.taps.map((t) => ({ a: Array.from(t.a), g: Array.from(t.g) })) })))}`;
  const what =
    details.errorInstance instanceof Mismatch
      ? `differs from the reference (tolerance ${tolerance}): ${reason}`
      : `failed: ${reason}`;
  throw new GrngError(
    op,
    `${base.name} ${what}\nShrunk counterexample (${details.numShrinks} ` +
      `shrinks; seed ${seed}): ${shown}`,
  );
}

/** A comparison past the tolerance (anything else thrown is a failure of one side). */
class Mismatch extends Error {}

function curvatureCase<H extends HyperDefaults>(
  options: CheckCurvatureOptions<H>,
  steps: number,
): fc.Arbitrary<CurvatureCase<H>> {
  const { maxLayers = 2, maxWidth = 3, maxBatch = 4 } = options;
  const width = fc.integer({ min: 1, max: maxWidth });
  // Layer k's input width is layer k−1's output width: draw the widths, then values for the largest
  // sizes.
  return fc
    .record({
      widths: fc.array(width, { minLength: 2, maxLength: maxLayers + 1 }),
      batch: fc.integer({ min: 1, max: maxBatch }),
      n: fc.integer({ min: 1, max: 2 * steps - 1 }).map((k) => Math.min(k, steps)),
      settings: options.settings ?? fc.constant({}),
    })
    .chain(({ widths, batch, n, settings }) => {
      const sizes = widths.slice(1).map((out, k) => ({ in: widths[k], out }));
      const dense = (s: LayerSize) =>
        fc
          .record({
            w: valueArray(s.out * s.in, options.values),
            b: valueArray(s.out, options.values),
          })
          .map((l) => ({ w: Float64Array.from(l.w), b: Float64Array.from(l.b) }));
      const tap = (s: LayerSize) =>
        fc
          .record({
            a: valueArray(batch * s.in, options.values),
            g: valueArray(batch * s.out, options.values),
          })
          .map((t) => ({
            // The ones column of a layer with a bias (LayerTap), last in each row.
            a: Float64Array.from({ length: batch * (s.in + 1) }, (_, i) =>
              i % (s.in + 1) === s.in
                ? 1
                : t.a[Math.floor(i / (s.in + 1)) * s.in + (i % (s.in + 1))],
            ),
            g: Float64Array.from(t.g),
            batch,
          }));
      const step = fc.record({
        grads: fc.tuple(...sizes.map(dense)),
        taps: fc.tuple(...sizes.map(tap)),
      });
      return fc
        .record({
          layers: fc.tuple(...sizes.map(dense)),
          steps: fc.array(step, { minLength: n, maxLength: n }),
        })
        .map(({ layers, steps: drawn }) => ({
          sizes,
          batch,
          layers: [...layers],
          steps: drawn.map((s) => ({ grads: [...s.grads], taps: [...s.taps] })),
          settings,
        }));
    });
}

type LayerTree = { layers: { w: Tensor; b: Tensor }[] };

/** The compiled update with the taps as inputs, one program per pattern of due every() periods. */
function tapProgram<H extends HyperDefaults, S>(optimizer: Optimizer<H, S>, device: Device) {
  const { definition } = optimizer;
  const settings = optimizer.hyper;
  type Program = (...args: unknown[]) => Promise<unknown>;
  const variants: StepVariants<Program> = new StepVariants(
    (v) =>
      jit(
        (
          params: LayerTree,
          state: Tree<Tensor>,
          grads: LayerTree,
          as: Tensor[],
          gs: Tensor[],
          values: Tensor[],
          t: Tensor,
          counter: Tensor[],
        ) => {
          const taps: LayerTap[] = params.layers.map((l, i) => ({
            name: `layers.${i}`,
            a: as[i],
            g: gs[i],
            w: l.w,
            b: l.b,
          }));
          const extras = modelFreeExtras(
            v.every,
            (what) => {
              throw new GrngError(
                'checkCurvatureOptimizer',
                `${optimizer.name} reads ${what}, which needs a model: check it with ` +
                  `settings that read only ctx.taps (e.g. fisher: 'empirical')`,
              );
            },
            taps,
          );
          return applyUpdate(
            optimizer,
            settings,
            values,
            {
              params: params as ParamTree,
              state,
              grads: grads as ParamTree,
              t,
              counter,
            },
            extras,
          );
        },
        { device, donate: [0, 1] },
      ) as Program,
  );
  const layersOf = (p: LayerTree): LayerInfo[] =>
    p.layers.map((l, i) => ({ name: `layers.${i}`, w: l.w, b: l.b }));
  const init = jit(
    (p: LayerTree) => definition.init(p as ParamTree, settings, layersOf(p)) as Tree<Tensor>,
    { device },
  );
  return { variants, init, numeric: numericHyper(definition.hyper) };
}

async function runCase<H extends HyperDefaults, S, R>(
  base: Optimizer<H, S>,
  reference: CurvatureReferenceStep<R, H>,
  c: CurvatureCase<H>,
  device: Device,
  float64: boolean,
) {
  const round = (x: Float64Array) => (float64 ? Float64Array.from(x) : x.map(Math.fround));
  const optimizer = base.with(c.settings);
  const hyper = optimizer.hyper;
  const { variants, init, numeric } = tapProgram(optimizer, device);
  const tree = (layers: readonly DenseValues[]) => ({
    layers: layers.map((l, k) => ({
      w: array(round(l.w), [c.sizes[k].out, c.sizes[k].in]),
      b: array(round(l.b), [c.sizes[k].out]),
    })),
  });
  let state = (await init(tree(c.layers))) as Tree<DeviceArray>;
  // Host arrays at first (uploaded by the first step), then the device arrays each step returns.
  let params = tree(c.layers) as unknown as Tree<DeviceArray>;
  let onDevice = false;
  let current: readonly DenseValues[] = c.layers.map((l) => ({ w: round(l.w), b: round(l.b) }));
  let refState: R | undefined;
  let worst = { error: 0, step: 0, got: 0, want: 0 };
  try {
    for (let t = 1; t <= c.steps.length; t++) {
      const { grads, taps } = c.steps[t - 1];
      const as = taps.map((tap, k) => array(round(tap.a), [c.batch, c.sizes[k].in + 1]));
      const gs = taps.map((tap, k) => array(round(tap.g), [c.batch, c.sizes[k].out]));
      const values = numeric.map((k) => hyper[k] as number);
      [params, state] = (await variants.run(t, (program) =>
        program(params, state, tree(grads), as, gs, values, t, stepCounter(0, t)),
      )) as [Tree<DeviceArray>, Tree<DeviceArray>];
      onDevice = true;
      const got = await readLeaves(params);
      const out = reference(
        current,
        grads.map((g) => ({ w: round(g.w), b: round(g.b) })),
        taps.map((tap) => ({ ...tap, a: round(tap.a), g: round(tap.g) })),
        refState,
        hyper,
        t,
        c.sizes,
      );
      // flattenTree order: per layer b, then w (sorted keys).
      const want = out.layers.flatMap((l) => [l.b, l.w]);
      const d = worstDifference(got, want);
      if (d.error > worst.error) worst = { error: d.error, step: t, got: d.got, want: d.want };
      current = out.layers.map((l) => ({ w: Float64Array.from(l.w), b: Float64Array.from(l.b) }));
      refState = out.state;
    }
  } finally {
    if (onDevice) disposeTree(params);
    disposeTree(state);
  }
  return worst;
}
