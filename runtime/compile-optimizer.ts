import { fmtShape, GrngError } from '../core/errors.js';
import type {
  HyperDefaults,
  HyperSettings,
  HyperTensors,
  LayerInfo,
  Optimizer,
  ParamTree,
  StepContext,
} from '../dsl/optimizer.js';
import { StepVariants } from './step-variants.js';
import { treeMap } from '../dsl/optimizer.js';
import { cast, foldIn, input, prngKey } from '../dsl/index.js';
import { isTensor, type Tensor } from '../dsl/tensor.js';
import { flattenTree, type Tree } from '../core/tree.js';
import type { Device, DeviceArray } from './device.js';
import { isArrayLeaf, jit, toDevice, type ArrayLeaf } from './jit.js';
import { tracePure } from './update-purity.js';

/** An optimizer compiled for a device, holding parameters and state there between steps. */
export interface CompiledOptimizer<H extends HyperDefaults = HyperDefaults> {
  /** Applies one update with `grads` (shaped like the parameters); resolves when it is queued. */
  step(grads: Tree<ArrayLeaf>): Promise<void>;
  /** The current parameters (device arrays, same tree as given). */
  params(): Tree<DeviceArray>;
  /** The current optimizer state (device arrays). */
  state(): Tree<DeviceArray>;
  /** Changes hyperparameters for the next steps; numbers never recompile. */
  setHyper(changes: Partial<HyperSettings<H>>): void;
  /** Steps taken so far. */
  readonly steps: number;
}

export interface CompileOptimizerOptions {
  readonly device: Device;
  /**
   * Resume from this state (e.g. a checkpoint); it must match what the optimizer's init makes for
   * the parameters.
   */
  readonly state?: Tree<ArrayLeaf>;
  /** Steps already taken (with `state`): the next step is number `step + 1`. */
  readonly step?: number;
  /** Seed of the step keys (ctx.key = foldIn(prngKey(seed), t)); default 0. */
  readonly seed?: number;
}

/**
 * The update half of an optimizer as a compiled program: `step(grads)` runs one update with the
 * parameters and state donated (updated in place on the device), for gradients computed elsewhere.
 */
export async function compileOptimizer<H extends HyperDefaults, S>(
  optimizer: Optimizer<H, S>,
  params: Tree<ArrayLeaf>,
  options: CompileOptimizerOptions,
): Promise<CompiledOptimizer<H>> {
  const op = 'compileOptimizer';
  const { device } = options;
  const updater = stepProgram(optimizer, device, op, options.seed ?? 0);
  let current = upload(device, params, op);
  let state =
    options.state === undefined
      ? await updater.init(current.tree)
      : upload(device, options.state, op);
  updater.checkState(current.tree, state.tree);
  let steps = options.step ?? 0;
  let hyper = optimizer;
  return {
    async step(grads) {
      // Checked on the host; host gradients are then uploaded (and freed) by the compiled step
      // itself.
      flattenTree('step', grads, isArrayLeaf, 'an array (array(...) or a device array)');
      updater.checkGrads(current.tree, grads as Tree<DeviceArray>);
      steps++;
      [current, state] = await updater.run(current.tree, state.tree, grads, hyper.hyper, steps);
    },
    params: () => current.tree,
    state: () => state.tree,
    setHyper(changes) {
      hyper = hyper.with(changes);
      updater.useHyper(hyper.hyper);
    },
    get steps() {
      return steps;
    },
  };
}

export interface Placed {
  readonly tree: Tree<DeviceArray>;
  readonly leaves: readonly DeviceArray[];
}

/** Host arrays uploaded packed (one buffer for all: one binding); device arrays as they are. */
export function upload(device: Device, tree: Tree<ArrayLeaf>, op: string): Placed {
  const { leaves, rebuild } = flattenTree(
    op,
    tree,
    isArrayLeaf,
    'an array (array(...) or a device array)',
  );
  const placed = toDevice(device, leaves, op);
  return { tree: rebuild(placed), leaves: placed };
}

/**
 * The traced pieces of an optimizer: init and update as jitted functions over device arrays,
 * with the numeric hyperparameters passed as numbers (runtime values) and the others baked in.
 */
export function stepProgram<H extends HyperDefaults, S>(
  optimizer: Optimizer<H, S>,
  device: Device,
  op: string,
  seed: number,
) {
  const { definition } = optimizer;
  const numeric = numericHyper(definition.hyper);
  let settings = optimizer.hyper;
  type Program = (...args: unknown[]) => Promise<unknown>;
  const variants = (): StepVariants<Program> => new StepVariants(build);
  const build = (variants: StepVariants<Program>): Program =>
    jit(
      (
        params: ParamTree,
        state: Tree<Tensor>,
        grads: ParamTree,
        values: Tensor[],
        t: Tensor,
        counter: Tensor[],
      ) =>
        applyUpdate(
          optimizer,
          settings,
          values,
          { params, state, grads, t, counter },
          gradientOnlyExtras(variants.every, definition.name),
        ),
      { device, donate: [0, 1] },
    ) as Program;
  let update = variants();
  const initialize = jit(
    (params: ParamTree) => definition.init(params, settings, []) as Tree<Tensor>,
    { device },
  );
  return {
    async init(params: Tree<DeviceArray>): Promise<Placed> {
      const tree = (await initialize(params)) as Tree<DeviceArray>;
      return {
        tree,
        leaves: flattenTree(op, tree, isArrayLeaf, 'an array').leaves as DeviceArray[],
      };
    },
    useHyper(next: HyperSettings<H>) {
      const rebuild = changesCode(settings, next, definition.static);
      settings = next;
      if (rebuild) update = variants();
    },
    async run(
      params: Tree<DeviceArray>,
      state: Tree<DeviceArray>,
      grads: Tree<ArrayLeaf>,
      hyper: HyperSettings<H>,
      t: number,
    ): Promise<[Placed, Placed]> {
      const values = numeric.map((k) => hyper[k] as number);
      const [p, s] = (await update.run(t, (program) =>
        program(params, state, grads, values, t, stepCounter(seed, t)),
      )) as [Tree<DeviceArray>, Tree<DeviceArray>];
      const leaves = (tree: Tree<DeviceArray>) =>
        flattenTree(op, tree, isArrayLeaf, 'an array').leaves as DeviceArray[];
      return [
        { tree: p, leaves: leaves(p) },
        { tree: s, leaves: leaves(s) },
      ];
    },
    checkGrads(params: Tree<DeviceArray>, grads: Tree<DeviceArray>) {
      checkSameArrays(op, 'the gradients', grads, 'the parameters', params);
    },
    checkState(params: Tree<DeviceArray>, state: Tree<DeviceArray>) {
      checkStateFor(optimizer, settings, params, state, op);
    },
  };
}

/**
 * A GrngError unless `state` matches, leaf for leaf, what the optimizer's init makes for `params`.
 */
export function checkStateFor<H extends HyperDefaults, S>(
  optimizer: Optimizer<H, S>,
  settings: HyperSettings<H>,
  params: Tree<DeviceArray>,
  state: Tree<DeviceArray>,
  op: string,
  layers: (params: ParamTree) => readonly LayerInfo[] = () => [],
): void {
  const symbolic = treeMapArrays(params, (a, i) =>
    input(`state_check_${i}`, a.shape, a.dtype),
  ) as ParamTree;
  const expected = optimizer.definition.init(symbolic, settings, layers(symbolic)) as Tree<Tensor>;
  checkSameArrays(
    op,
    'the state',
    state,
    `the state ${optimizer.name} makes for these parameters`,
    expected,
  );
}

/** What a step context holds beyond parameters, gradients, state and hyperparameters. */
export type StepExtras = Pick<
  StepContext<HyperDefaults, unknown>,
  'every' | 'taps' | 'tapsFor' | 'loss' | 'hvp' | 'output' | 'labels'
>;

/**
 * Extras for updates run from gradients alone (compileOptimizer): the curvature pieces need a
 * model.
 */
export function gradientOnlyExtras(every: StepExtras['every'], name: string): StepExtras {
  return modelFreeExtras(every, (what) => {
    throw new GrngError(
      name,
      `${what} needs the model and the batch: run ${name} with ` +
        `compileTrainStep, not compileOptimizer`,
    );
  });
}

/**
 * Step-context extras without a model: `every`, and `taps` when given (test harnesses feed tap
 * data directly); every other piece (labels, loss, tapsFor, hvp, output, and taps when not
 * given) calls `missing` with its name, which throws.
 */
export function modelFreeExtras(
  every: StepExtras['every'],
  missing: (what: string) => never,
  taps?: StepExtras['taps'],
): StepExtras {
  return {
    every,
    get taps() {
      return taps ?? missing('ctx.taps');
    },
    get labels() {
      return missing('ctx.labels');
    },
    loss: () => missing('ctx.loss'),
    tapsFor: () => missing('ctx.tapsFor'),
    hvp: () => missing('ctx.hvp'),
    output: () => missing('ctx.output'),
  };
}

/**
 * The [seed, step] pair a compiled step turns into its PRNG key. Passed as f32 beside the other
 * runtime numbers (one upload per call) and cast to i32 in the program: exact below 2²⁴.
 */
export const stepCounter = (seed: number, t: number): number[] => [seed, t];

/**
 * Names of the numeric hyperparameters (runtime values), in the order the compiled step takes them.
 */
export const numericHyper = (hyper: HyperDefaults): string[] =>
  Object.keys(hyper)
    .filter((k) => typeof hyper[k] === 'number')
    .sort();

/**
 * Whether going from `a` to `b` changes the code: a boolean, string or static number changed (other
 * numbers are runtime values).
 */
export const changesCode = (
  a: HyperDefaults,
  b: HyperDefaults,
  fixed: readonly string[] = [],
): boolean =>
  Object.keys(b).some((k) => (typeof b[k] !== 'number' || fixed.includes(k)) && b[k] !== a[k]);

/**
 * Traces one optimizer update inside a compiled step: numeric hyperparameters are the traced
 * `values`, the others as set. Checks that the update is pure (update-purity.ts) and keeps the
 * structure of parameters and state.
 */
export function applyUpdate<H extends HyperDefaults, S>(
  optimizer: Optimizer<H, S>,
  settings: HyperSettings<H>,
  values: readonly Tensor[],
  step: {
    params: ParamTree;
    state: Tree<Tensor>;
    grads: ParamTree;
    t: Tensor;
    counter: readonly Tensor[];
  },
  extras: StepExtras,
): [ParamTree, Tree<Tensor>] {
  const { definition } = optimizer;
  const numeric = numericHyper(definition.hyper);
  const hyper = {
    ...settings,
    ...Object.fromEntries(numeric.map((k, i) => [k, values[i]])),
  } as HyperTensors<H>;
  // The step's key: the seed's key folded with the step number (both runtime values: no
  // recompiles).
  const word = (i: number) => cast(step.counter[i], 'i32');
  const key = foldIn(prngKey(word(0)), word(1));
  const base = {
    params: step.params,
    grads: step.grads,
    state: step.state as S,
    hyper,
    settings,
    t: step.t as Tensor<[]>,
    key,
    map: treeMap,
  };
  // The extras' getters stay lazy (taps cost a second backward pass only when an optimizer reads
  // them).
  const context = Object.defineProperties(
    base,
    Object.getOwnPropertyDescriptors(extras),
  ) as StepContext<H, S>;
  // Traced twice: an impure update is refused here rather than frozen into the program.
  const out = tracePure(definition.name, () => definition.update(context));
  checkSame(definition.name, 'the updated parameters', out.params, step.params);
  checkSame(definition.name, 'the updated state', out.state as Tree<Tensor>, step.state);
  return [out.params, out.state as Tree<Tensor>];
}

export function treeMapArrays<R>(
  tree: Tree<DeviceArray>,
  f: (a: DeviceArray, i: number) => R,
): Tree<R> {
  const { leaves, rebuild } = flattenTree('compileOptimizer', tree, isArrayLeaf, 'an array');
  return rebuild((leaves as DeviceArray[]).map(f));
}

type Shaped = { readonly shape: readonly number[]; readonly dtype: string };

function describeTree(tree: unknown, isLeaf: (x: unknown) => x is Shaped): string {
  const { leaves, rebuild } = flattenTree('describe', tree, isLeaf, 'an array');
  return JSON.stringify(rebuild(leaves.map((l) => `${l.dtype}${fmtShape(l.shape)}`)));
}

const isShaped = (x: unknown): x is Shaped =>
  typeof x === 'object' && x !== null && 'shape' in x && 'dtype' in x && !Array.isArray(x);

/** A GrngError unless `got` has the structure, shapes and dtypes of `want`. */
function checkSameArrays(
  op: string,
  what: string,
  got: unknown,
  wantWhat: string,
  want: unknown,
): void {
  const [g, w] = [describeTree(got, isShaped), describeTree(want, isShaped)];
  if (g !== w) throw new GrngError(op, `${what} must match ${wantWhat}: expected ${w}, got ${g}`);
}

function checkSame(op: string, what: string, got: Tree<Tensor>, want: Tree<Tensor>): void {
  const isT = (x: unknown): x is Shaped => isTensor(x);
  const [g, w] = [describeTree(got, isT), describeTree(want, isT)];
  if (g !== w)
    throw new GrngError(
      op,
      `${what} must have the structure, shapes and dtypes of the inputs: expected ${w}, got ${g}`,
    );
}
