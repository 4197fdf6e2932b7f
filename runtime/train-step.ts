import { GrngError } from '../core/errors.js';
import {
  cast,
  concat,
  globalSqnorm,
  input,
  reshape,
  sqrt,
  sub,
  valueAndGrad,
  zeros,
} from '../dsl/index.js';
import type { Model } from '../dsl/nn/layers.js';
import type {
  HyperDefaults,
  HyperSettings,
  LayerInfo,
  Optimizer,
  ParamTree,
} from '../dsl/optimizer.js';
import { recordTaps } from '../dsl/nn/taps.js';
import { accuracy } from '../dsl/nn/metrics.js';
import { isTensor, type Tensor } from '../dsl/tensor.js';
import { flattenTree, mapTrees, type Tree } from '../core/tree.js';
import { checkedLeaves, firstNonFinite, keepIfFinite, markedQuantity } from './finite-guard.js';
import {
  applyUpdate,
  changesCode,
  checkStateFor,
  numericHyper,
  stepCounter,
  treeMapArrays,
  upload,
  type Placed,
} from './compile-optimizer.js';
import type { Device, DeviceArray } from './device.js';
import { isArrayLeaf, jit, type ArrayLeaf } from './jit.js';
import { StepVariants } from './step-variants.js';
import { trainingExtras } from './training-context.js';
import { splitTrainable, withFrozen } from './frozen-params.js';
import { joinTrees } from '../core/tree-paths.js';
import { checkBatch, checkLabels } from './batch-check.js';

/** Built-in metrics; an optimizer may report more by name (its definition's `report`). */
export type MetricName = 'loss' | 'accuracy' | 'gradNorm' | 'updateNorm';
export type Metrics = {
  readonly loss: number;
  readonly accuracy?: number;
  readonly gradNorm?: number;
  readonly updateNorm?: number;
  /**
   * 1 when the step was skipped: its loss, a gradient or its update was not finite, so parameters
   * and optimizer state were left as they were (TrainStep.lastSkip says which); else 0.
   */
  readonly skipped: number;
  readonly [reported: string]: number | undefined;
};

/** A skipped step: what was not finite first, and the optimizer's state of mind at that step. */
export interface SkipRecord {
  readonly step: number;
  /** 'the loss', 'the gradient of layers.1.w', 'the updated layers.0.b', 'the optimizer state…'. */
  readonly quantity: string;
  /** The numeric hyperparameters the step ran with (damping, learning rate...). */
  readonly hyper: Readonly<Record<string, number>>;
  /** The optimizer's reports on the state the step computed (RING: fallbacks, residual...). */
  readonly reports: Readonly<Record<string, number>>;
}

export interface TrainStepOptions<H extends HyperDefaults, S> {
  readonly model: Model<never>;
  /** The training loss of the model's output and the labels: a scalar (e.g. crossEntropy). */
  readonly loss: (output: Tensor, y: Tensor) => Tensor;
  readonly optimizer: Optimizer<H, S>;
  /** Initial parameters (host or device arrays), e.g. model.init(seed). */
  readonly params: Tree<ArrayLeaf>;
  readonly device: Device;
  /**
   * Metrics each run reads back (default ['loss']); accuracy treats the output as class logits.
   * Names the optimizer reports (e.g. K-FAC's 'fallbacks') are allowed too.
   */
  readonly metrics?: readonly (MetricName | (string & {}))[];
  /** Seed of the step keys (ctx.key = foldIn(prngKey(seed), t)); default 0. */
  readonly seed?: number;
  /** Resume: optimizer state and the number of steps already taken. */
  readonly state?: Tree<ArrayLeaf>;
  readonly step?: number;
  /**
   * The parameters to train, by path prefix (['lora', 'base.head']); the others are frozen: the
   * model reads them, nothing differentiates or updates them and the optimizer keeps no state for
   * them. Default: the model's own `trainable` (nn.lora sets it), else every parameter.
   */
  readonly trainable?: readonly string[];
  /**
   * Skip steps whose loss, gradients or update are not finite, leaving parameters and state as
   * they were (default true). That stores the update, reads it back to test it and selects
   * between it and the old values: about twice an AdamW update's memory traffic (docs/
   * architecture.md, When things go wrong). 'gradients' tests only the loss and the gradients,
   * before the update, which then selects in registers at almost no cost: bad data is caught,
   * an update that overflows from finite gradients (a curvature estimate gone wrong) is not.
   * false compiles the step unguarded.
   */
  readonly skipNonFinite?: boolean | 'gradients';
}

export interface TrainStep<H extends HyperDefaults = HyperDefaults> {
  /**
   * Queues one training step on `batch` and resolves to its metrics. Steps run in call order; a
   * step is submitted as soon as the previous one is, so callers may queue several before awaiting.
   */
  run(batch: { readonly x: ArrayLeaf; readonly y: ArrayLeaf }): Promise<Metrics>;
  /** The parameters after the steps queued so far (device arrays, the whole tree given). */
  params(): Promise<Tree<DeviceArray>>;
  state(): Promise<Tree<DeviceArray>>;
  /** Changes hyperparameters for the steps queued after this call; numbers never recompile. */
  setHyper(changes: Partial<HyperSettings<H>>): void;
  /** Steps queued so far. */
  readonly steps: number;
  /** Steps skipped so far (of those whose metrics were read), and the latest of them. */
  readonly skipped: number;
  readonly lastSkip: SkipRecord | undefined;
  /** The record of step `step` (1-based, as StepRecord.step) if it was skipped and is recent. */
  skipRecord(step: number): SkipRecord | undefined;
}

const METRICS: readonly MetricName[] = ['loss', 'accuracy', 'gradNorm', 'updateNorm'];

/**
 * One compiled training step: forward, loss, gradients and the optimizer's update in one
 * program, parameters and state donated (updated in place on the device), and only the
 * requested metrics read back, after the step was submitted.
 */
export async function compileTrainStep<H extends HyperDefaults, S>(
  options: TrainStepOptions<H, S>,
): Promise<TrainStep<H>> {
  const op = 'compileTrainStep';
  const { model, loss, optimizer, device } = options;
  if (typeof model?.apply !== 'function')
    throw new GrngError(op, 'model must be { init, apply } (e.g. nn.mlp([784, 128, 10]))');
  if (typeof loss !== 'function')
    throw new GrngError(
      op,
      'loss must be a function (output, y) => scalar Tensor, e.g. crossEntropy',
    );
  if (typeof optimizer?.definition?.update !== 'function')
    throw new GrngError(
      op,
      'optimizer must come from an optimizer factory, e.g. adamw({ lr: 1e-3 })',
    );
  const metrics = options.metrics ?? ['loss'];
  const reported = optimizer.definition.report ?? {};
  const known = [...METRICS, ...Object.keys(reported)];
  for (const m of metrics)
    if (!known.includes(m))
      throw new GrngError(op, `unknown metric '${String(m)}'; use ${known.join(', ')}`);
  const numeric = numericHyper(optimizer.definition.hyper);
  const guard = guardOf(options.skipNonFinite);
  const seed = options.seed ?? 0;
  let settings = optimizer.hyper;
  let hyper = optimizer;

  type Program = (...args: unknown[]) => Promise<unknown>;
  const variants = (): StepVariants<Program> => new StepVariants(build);
  const build = (variants: StepVariants<Program>): Program =>
    jit(
      trainStepBody({
        model,
        loss,
        optimizer,
        settings,
        metrics,
        every: variants.every,
        onChecked: (names) => (checkedNames = names),
        guard,
      }),
      {
        device,
        donate: [0, 1],
      },
    ) as Program;
  let checkedNames: readonly string[] = [];
  let skipped = 0;
  let lastSkip: SkipRecord | undefined;
  // Metrics of queued steps may be read out of order: records by step, the latest few hundred.
  const skipRecords = new Map<number, SkipRecord>();
  const reportNames = Object.keys(reported);
  let steps = variants();
  const place = (tree: Tree<DeviceArray>): Placed => ({
    tree,
    leaves: flattenTree(op, tree, isArrayLeaf, 'an array').leaves as DeviceArray[],
  });

  const split = splitTrainable(
    op,
    upload(device, options.params, op).tree,
    isArrayLeaf,
    options.trainable ?? model.trainable,
  );
  let current: Placed = place(split.trainable as Tree<DeviceArray>);
  // Read by every step, never donated: the frozen parameters stay as they are.
  const frozen = split.frozen === undefined ? undefined : place(split.frozen as Tree<DeviceArray>);
  const frozenArgs = frozen === undefined ? [] : [frozen.tree];
  // The state is made (or checked) at the first step: per-layer state needs the model's layers,
  // which a trace of the model on a batch reveals.
  let state: Placed | undefined;
  const layersOf = (p: ParamTree, x: Tensor, f?: Tree<Tensor>): LayerInfo[] =>
    modelLayers(withFrozen(model, f) as Model<never>, p, x);
  const prepare = async (x: ArrayLeaf): Promise<Placed> => {
    if (state !== undefined) return state;
    const shape = typeof x === 'number' ? [] : x.shape;
    // Token ids are i32: the model is traced on inputs of the batch's own dtype.
    const dtype = typeof x === 'number' ? 'f32' : x.dtype;
    if (options.state !== undefined) {
      const given = upload(device, options.state, op);
      const symbolicFrozen =
        frozen === undefined
          ? undefined
          : (treeMapArrays(frozen.tree, (a, i) =>
              input(`frozen_check_${i}`, a.shape, a.dtype),
            ) as Tree<Tensor>);
      checkStateFor(optimizer, settings, current.tree, given.tree, op, (p) =>
        layersOf(p, input('x_check', shape, dtype), symbolicFrozen),
      );
      return given;
    }
    const init = jit(
      (p: ParamTree, ...f: Tree<Tensor>[]) =>
        optimizer.definition.init(
          p,
          settings,
          layersOf(p, input('x_shape', shape, dtype), f[0]),
        ) as Tree<Tensor>,
      { device },
    );
    const tree = (await init(current.tree, ...frozenArgs)) as Tree<DeviceArray>;
    return { tree, leaves: flattenTree(op, tree, isArrayLeaf, 'an array').leaves as DeviceArray[] };
  };
  // The model's output shape per batch shape: a batch that does not fit is refused before queueing.
  const outputShapes = new Map<string, readonly number[]>();
  const outputShapeFor = (batch: { readonly x: ArrayLeaf; readonly y: ArrayLeaf }) => {
    const key = [batch.x, batch.y]
      .map((a) => (typeof a === 'number' ? 'number' : `${a.dtype}${a.shape.join(',')}`))
      .join(';');
    let shape = outputShapes.get(key);
    if (shape === undefined) {
      const whole =
        frozen === undefined ? current.tree : joinTrees(op, current.tree, frozen.tree, isArrayLeaf);
      shape = checkBatch('run', model, loss, whole as Tree<ArrayLeaf>, batch);
      outputShapes.set(key, shape);
    }
    return shape;
  };
  let taken = options.step ?? 0;
  // Steps are chained: each is submitted once the previous one has been.
  let queue: Promise<unknown> = Promise.resolve();

  return {
    run(batch) {
      if (typeof batch !== 'object' || batch === null || !('x' in batch) || !('y' in batch)) {
        return Promise.reject(
          new GrngError(
            'run',
            'the batch must be { x, y } (host arrays via array(...), or device arrays)',
          ),
        );
      }
      try {
        checkLabels('run', batch.y, outputShapeFor(batch));
      } catch (error) {
        return Promise.reject(error as Error);
      }
      const t = ++taken;
      const values = numeric.map((k) => settings[k] as number);
      const programs = steps;
      const submitted = queue.then(async () => {
        state = await prepare(batch.x);
        const held = state;
        const [p, s, m] = (await programs.run(t, (program) =>
          program(
            current.tree,
            held.tree,
            batch.x,
            batch.y,
            values,
            t,
            stepCounter(seed, t),
            ...frozenArgs,
          ),
        )) as [Tree<DeviceArray>, Tree<DeviceArray>, DeviceArray];
        current = place(p);
        state = place(s);
        return m;
      });
      queue = submitted.catch(() => undefined);
      return submitted.then(async (m) => {
        const v = await m.read();
        const mark = v[metrics.length];
        if (mark !== 0) {
          skipped++;
          const record = {
            step: t,
            quantity: markedQuantity(checkedNames, mark) as string,
            hyper: Object.fromEntries(numeric.map((k, i) => [k, values[i]])),
            reports: Object.fromEntries(reportNames.map((r, i) => [r, v[metrics.length + 1 + i]])),
          };
          skipRecords.set(t, record);
          if (skipRecords.size > 256) skipRecords.delete(skipRecords.keys().next().value as number);
          if (lastSkip === undefined || t > lastSkip.step) lastSkip = record;
        }
        return {
          ...Object.fromEntries(metrics.map((name, i) => [name, v[i]])),
          skipped: mark === 0 ? 0 : 1,
        } as Metrics;
      });
    },
    params: () =>
      queue.then(() =>
        frozen === undefined
          ? current.tree
          : (joinTrees(op, current.tree, frozen.tree, isArrayLeaf) as Tree<DeviceArray>),
      ),
    state: () =>
      queue.then(() => {
        if (state === undefined)
          throw new GrngError(
            'state',
            'the optimizer state is made at the first step: run a step first',
          );
        return state.tree;
      }),
    setHyper(changes) {
      hyper = hyper.with(changes);
      const rebuild = changesCode(settings, hyper.hyper, optimizer.definition.static);
      settings = hyper.hyper;
      if (rebuild) steps = variants();
    },
    get steps() {
      return taken;
    },
    get skipped() {
      return skipped;
    },
    get lastSkip() {
      return lastSkip;
    },
    skipRecord: (step) => skipRecords.get(step),
  };
}

/** The model's dense layers, as an optimizer's init sees them: a trace of the model on `x`. */
export function modelLayers(model: Model<never>, params: ParamTree, x: Tensor): LayerInfo[] {
  return recordTaps(() => (model as Model<ParamTree>).apply(params, x)).taps.map((t) => ({
    name: t.name,
    w: t.w,
    b: t.b,
  }));
}

/**
 * The traced body of a training step — forward, loss, gradients, the optimizer's update and the
 * metrics — over (params, state, x, y, numeric hyperparameters, t, [seed, t], and the frozen
 * parameters when some are), returning [params, state, metrics]. compileTrainStep jits it; grng
 * compile traces it ahead of time.
 */
export function trainStepBody<H extends HyperDefaults, S>(options: {
  readonly model: Model<never>;
  readonly loss: (output: Tensor, y: Tensor) => Tensor;
  readonly optimizer: Optimizer<H, S>;
  readonly settings: HyperSettings<H>;
  readonly metrics: readonly string[];
  readonly every: <T>(period: number, work: () => T, otherwise: () => T) => T;
  /** Told, at each trace, the names of the quantities the non-finite guard checks, in order. */
  readonly onChecked?: (names: readonly string[]) => void;
  /** What must be finite for the step to keep its results (default all; TrainStepOptions). */
  readonly guard?: 'all' | 'gradients' | 'none';
}) {
  const op = 'compileTrainStep';
  const { loss, optimizer, settings, metrics, every } = options;
  const reported = optimizer.definition.report ?? {};
  return (
    params: ParamTree,
    state: Tree<Tensor>,
    x: Tensor,
    y: Tensor,
    values: Tensor[],
    t: Tensor,
    counter: Tensor[],
    // A rest parameter, so that jit does not require it (its arity check counts up to one).
    ...frozen: Tree<Tensor>[]
  ): [ParamTree, Tree<Tensor>, Tensor] => {
    const model = withFrozen(options.model, frozen[0]);
    const objective = (p: ParamTree) => {
      const value = loss(model.apply(p, x), y);
      if (!isTensor(value) || value.rank !== 0) {
        throw new GrngError(
          op,
          `the loss must be a scalar tensor, got ` +
            `${isTensor(value) ? `shape [${value.shape.join(', ')}]` : typeof value}`,
        );
      }
      return value;
    };
    const [value, grads] = valueAndGrad(objective)(params) as [Tensor, ParamTree];
    const extras = trainingExtras(model, loss, params, x, y, every);
    const [nextParams, nextState] = applyUpdate(
      optimizer,
      settings,
      values,
      { params, state, grads, t, counter },
      extras,
    );
    const measure = (m: string): Tensor => {
      if (m === 'loss') return value;
      if (m === 'gradNorm') return sqrt(globalSqnorm(leaves(grads)));
      if (m === 'updateNorm')
        return sqrt(globalSqnorm(leaves(nextParams).map((p, i) => sub(p, leaves(params)[i]))));
      if (m === 'accuracy') return accuracy(model.apply(params, x), y);
      const scalar = reported[m](nextState as S);
      if (!isTensor(scalar) || scalar.rank !== 0)
        throw new GrngError(op, `${optimizer.name}'s report '${m}' must be a scalar tensor`);
      return cast(scalar, 'f32');
    };
    // The guard (finite-guard.ts): the step's results are kept only when all of these are finite.
    const guard = options.guard ?? 'all';
    const checked = [
      { name: 'the loss', value },
      ...checkedLeaves(op, grads, (path) => `the gradient of ${path || 'the parameter'}`),
      ...(guard !== 'all'
        ? []
        : [
            ...checkedLeaves(op, nextParams, (path) => `the updated ${path || 'parameter'}`),
            ...checkedLeaves(op, nextState, (p) => `the optimizer state ${p || ''}`.trimEnd()),
          ]),
    ];
    options.onChecked?.(checked.map((c) => c.name));
    const mark = guard === 'none' ? zeros([]) : firstNonFinite(checked);
    // Metrics describe the step as attempted: a skipped step's loss and reports say why it was.
    const measured = [
      ...metrics.map(measure),
      mark,
      ...Object.keys(reported).map((name) => cast(reported[name](nextState as S), 'f32')),
    ].map((m) => reshape(m, [1]));
    const keep = (next: Tree<Tensor>, previous: Tree<Tensor>) =>
      mapTrees(
        op,
        isTensor,
        (n: Tensor, p: Tensor) => keepIfFinite(mark, n, p),
        [next, previous],
        ['the updated tree', 'the tree before the step'],
      );
    return guard !== 'none'
      ? [keep(nextParams, params) as ParamTree, keep(nextState, state), concat(measured, 0)]
      : [nextParams, nextState, concat(measured, 0)];
  };
}

const leaves = (tree: ParamTree): Tensor[] =>
  flattenTree('compileTrainStep', tree, isTensor, 'a Tensor').leaves;

function guardOf(skipNonFinite: boolean | 'gradients' | undefined): 'all' | 'gradients' | 'none' {
  if (skipNonFinite === undefined || skipNonFinite === true) return 'all';
  if (skipNonFinite === false) return 'none';
  if (skipNonFinite === 'gradients') return 'gradients';
  throw new GrngError(
    'compileTrainStep',
    `skipNonFinite must be true, false or 'gradients', got ${String(skipNonFinite)}`,
  );
}
