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
import { flattenTree, type Tree } from '../core/tree.js';
import {
  applyUpdate,
  changesCode,
  checkStateFor,
  numericHyper,
  stepCounter,
  upload,
  type Placed,
} from './compile-optimizer.js';
import type { Device, DeviceArray } from './device.js';
import { isArrayLeaf, jit, type ArrayLeaf } from './jit.js';
import { StepVariants } from './step-variants.js';
import { trainingExtras } from './training-context.js';

/** Built-in metrics; an optimizer may report more by name (its definition's `report`). */
export type MetricName = 'loss' | 'accuracy' | 'gradNorm' | 'updateNorm';
export type Metrics = {
  readonly loss: number;
  readonly accuracy?: number;
  readonly gradNorm?: number;
  readonly updateNorm?: number;
  readonly [reported: string]: number | undefined;
};

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
}

export interface TrainStep<H extends HyperDefaults = HyperDefaults> {
  /**
   * Queues one training step on `batch` and resolves to its metrics. Steps run in call order; a
   * step is submitted as soon as the previous one is, so callers may queue several before awaiting.
   */
  run(batch: { readonly x: ArrayLeaf; readonly y: ArrayLeaf }): Promise<Metrics>;
  /** The parameters after the steps queued so far (device arrays, the tree given). */
  params(): Promise<Tree<DeviceArray>>;
  state(): Promise<Tree<DeviceArray>>;
  /** Changes hyperparameters for the steps queued after this call; numbers never recompile. */
  setHyper(changes: Partial<HyperSettings<H>>): void;
  /** Steps queued so far. */
  readonly steps: number;
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
  const seed = options.seed ?? 0;
  let settings = optimizer.hyper;
  let hyper = optimizer;

  type Program = (...args: unknown[]) => Promise<unknown>;
  const variants = (): StepVariants<Program> => new StepVariants(build);
  const build = (variants: StepVariants<Program>): Program =>
    jit(trainStepBody({ model, loss, optimizer, settings, metrics, every: variants.every }), {
      device,
      donate: [0, 1],
    }) as Program;
  let steps = variants();

  let current: Placed = upload(device, options.params, op);
  // The state is made (or checked) at the first step: per-layer state needs the model's layers,
  // which a trace of the model on a batch reveals.
  let state: Placed | undefined;
  const layersOf = (p: ParamTree, x: Tensor): LayerInfo[] => modelLayers(model, p, x);
  const prepare = async (x: ArrayLeaf): Promise<Placed> => {
    if (state !== undefined) return state;
    const shape = typeof x === 'number' ? [] : x.shape;
    // Token ids are i32: the model is traced on inputs of the batch's own dtype.
    const dtype = typeof x === 'number' ? 'f32' : x.dtype;
    if (options.state !== undefined) {
      const given = upload(device, options.state, op);
      checkStateFor(optimizer, settings, current.tree, given.tree, op, (p) =>
        layersOf(p, input('x_check', shape, dtype)),
      );
      return given;
    }
    const init = jit(
      (p: ParamTree) =>
        optimizer.definition.init(
          p,
          settings,
          layersOf(p, input('x_shape', shape, dtype)),
        ) as Tree<Tensor>,
      { device },
    );
    const tree = (await init(current.tree)) as Tree<DeviceArray>;
    return { tree, leaves: flattenTree(op, tree, isArrayLeaf, 'an array').leaves as DeviceArray[] };
  };
  let taken = options.step ?? 0;
  // Steps are chained: each is submitted once the previous one has been.
  let queue: Promise<unknown> = Promise.resolve();

  const place = (tree: Tree<DeviceArray>): Placed => ({
    tree,
    leaves: flattenTree(op, tree, isArrayLeaf, 'an array').leaves as DeviceArray[],
  });
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
      const t = ++taken;
      const values = numeric.map((k) => settings[k] as number);
      const programs = steps;
      const submitted = queue.then(async () => {
        state = await prepare(batch.x);
        const held = state;
        const [p, s, m] = (await programs.run(t, (program) =>
          program(current.tree, held.tree, batch.x, batch.y, values, t, stepCounter(seed, t)),
        )) as [Tree<DeviceArray>, Tree<DeviceArray>, DeviceArray];
        current = place(p);
        state = place(s);
        return m;
      });
      queue = submitted.catch(() => undefined);
      return submitted.then(async (m) => {
        const v = await m.read();
        return Object.fromEntries(metrics.map((name, i) => [name, v[i]])) as Metrics;
      });
    },
    params: () => queue.then(() => current.tree),
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
 * metrics — over (params, state, x, y, numeric hyperparameters, t, [seed, t]), returning
 * [params, state, metrics]. compileTrainStep jits it; grng compile traces it ahead of time.
 */
export function trainStepBody<H extends HyperDefaults, S>(options: {
  readonly model: Model<never>;
  readonly loss: (output: Tensor, y: Tensor) => Tensor;
  readonly optimizer: Optimizer<H, S>;
  readonly settings: HyperSettings<H>;
  readonly metrics: readonly string[];
  readonly every: <T>(period: number, work: () => T, otherwise: () => T) => T;
}) {
  const op = 'compileTrainStep';
  const { model, loss, optimizer, settings, metrics, every } = options;
  const reported = optimizer.definition.report ?? {};
  return (
    params: ParamTree,
    state: Tree<Tensor>,
    x: Tensor,
    y: Tensor,
    values: Tensor[],
    t: Tensor,
    counter: Tensor[],
  ): [ParamTree, Tree<Tensor>, Tensor] => {
    const objective = (p: ParamTree) => {
      const value = loss((model as Model<ParamTree>).apply(p, x), y);
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
    const extras = trainingExtras(model as Model<ParamTree>, loss, params, x, y, every);
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
      if (m === 'accuracy') return accuracy((model as Model<ParamTree>).apply(params, x), y);
      const scalar = reported[m](nextState as S);
      if (!isTensor(scalar) || scalar.rank !== 0)
        throw new GrngError(op, `${optimizer.name}'s report '${m}' must be a scalar tensor`);
      return cast(scalar, 'f32');
    };
    const measured = metrics.map((m) => reshape(measure(m), [1]));
    return [nextParams, nextState, concat(measured, 0)];
  };
}

const leaves = (tree: ParamTree): Tensor[] =>
  flattenTree('compileTrainStep', tree, isTensor, 'a Tensor').leaves;
