// Ahead-of-time compilation of a gradient-only optimizer for one parameter layout: traces its init
// and its step (one program per pattern of due `every` periods) exactly as compileOptimizer does,
// lays the inputs out as the loader will upload them (parameters packed, state packed, then the
// call's gradients and runtime numbers packed), and compiles each to a plan within given limits.
import { GrngError } from '../core/errors.js';
import { builder, topoSort, type DType, type Node } from '../core/ir/index.js';
import { bindingElements } from '../compiler/memory/buffer-split.js';
import {
  packInOrder,
  packLengths,
  paddedLength,
  storageOf,
  type InputLayout,
  type Region,
  type StorageType,
} from '../compiler/memory/layout.js';
import { planOf } from '../compiler/program-plan.js';
import { compileProgram } from '../compiler/program.js';
import type { HyperDefaults, Optimizer, ParamTree } from '../dsl/optimizer.js';
import { isTensor, Tensor } from '../dsl/tensor.js';
import { flattenTree, type Tree } from '../core/tree.js';
import type { Model } from '../dsl/nn/layers.js';
import { applyUpdate, gradientOnlyExtras, numericHyper } from '../runtime/compile-optimizer.js';
import { modelLayers, trainStepBody } from '../runtime/train-step.js';
import {
  dueAt,
  MANIFEST_FORMAT,
  type LeafSpec,
  type OptimizerManifest,
  type PlanLimits,
  type StepPattern,
} from './manifest.js';

/**
 * WebGPU's default limits (what every core adapter offers): plans compiled within them run
 * anywhere.
 */
export const PORTABLE_LIMITS: PlanLimits = {
  maxStorageBuffersPerShaderStage: 8,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxStorageBufferBindingSize: 134217728,
};

/**
 * A step's patterns are found by running t = 1 … (the periods' least common multiple) at most this
 * far.
 */
const MAX_CYCLE = 10_000;

export const isLeafSpec = (x: unknown): x is LeafSpec =>
  typeof x === 'object' &&
  x !== null &&
  Array.isArray((x as LeafSpec).shape) &&
  typeof (x as LeafSpec).dtype === 'string';

/** The skeleton of a tree (leaves replaced by their flattening index) and its leaves. */
function skeletonOf<L>(
  op: string,
  tree: unknown,
  isLeaf: (x: unknown) => x is L,
  what: string,
): { skeleton: Tree<number>; leaves: L[] } {
  const { leaves, rebuild } = flattenTree(op, tree, isLeaf, what);
  return { skeleton: rebuild(leaves.map((_, i) => i)), leaves };
}

/**
 * Input regions as the loader uploads them: each group (parameters, state, the call's host
 * values) packed per storage type in argument order, as Device.uploadAll packs; buffer slots
 * numbered by first use in `inputs` (topological order), as the device numbers them.
 */
function layoutFor(
  inputs: readonly Node[],
  groups: readonly (readonly { name: string; dtype: DType; size: number }[])[],
  limits: PlanLimits,
): InputLayout {
  const place = new Map<string, { key: string; offset: number }>();
  const maxElements = bindingElements(limits.maxStorageBufferBindingSize);
  groups.forEach((group, g) => {
    for (const storage of ['f32', 'i32'] as StorageType[]) {
      const members = group.filter((m) => storageOf(m.dtype) === storage);
      const packOf = packInOrder(
        members.map((m) => m.size),
        maxElements,
      );
      for (let pack = 0; pack <= Math.max(-1, ...packOf); pack++) {
        // (an array longer than a binding is alone in its pack, and kernels bind it as windows)
        const inPack = members.filter((_, k) => packOf[k] === pack);
        const { offsets } = packLengths(inPack.map((m) => m.size));
        inPack.forEach((m, k) =>
          place.set(m.name, { key: `${g}:${storage}:${pack}`, offset: offsets[k] }),
        );
      }
    }
  });
  const slots: StorageType[] = [];
  const slotOf = new Map<string, number>();
  const regions = new Map<number, Region>();
  for (const node of inputs) {
    const name = (node as Node<'input'>).attrs.name;
    const at = place.get(name);
    if (at === undefined) throw new Error(`internal: input ${name} is in no group`);
    let slot = slotOf.get(at.key);
    if (slot === undefined) {
      slot = slots.push(storageOf(node.dtype)) - 1;
      slotOf.set(at.key, slot);
    }
    regions.set(node.id, { slot, offset: at.offset });
  }
  return { slots, regions };
}

/** A traced argument named as jit names them (%arg0, …): the same names the loader binds. */
const argument = (k: number, leaf: LeafSpec) =>
  new Tensor(builder.input(`%arg${k}`, leaf.shape, leaf.dtype));

const inputsOf = (outputs: readonly Node[]) => topoSort(outputs).filter((n) => n.op === 'input');

/**
 * A whole training step to compile: the model, its loss, the batch it takes and the metrics it
 * returns.
 */
export interface TrainStepTarget {
  readonly model: Model<never>;
  readonly loss: (output: Tensor, y: Tensor) => Tensor;
  /** x (e.g. f32 [128, 784]) and y (e.g. i32 [128]) of one batch. */
  readonly batch: { readonly x: LeafSpec; readonly y: LeafSpec };
  readonly metrics: readonly string[];
  /** How the model is described in messages and the manifest (e.g. 'mlp:784,256,10'). */
  readonly description: string;
}

/**
 * Compiles `optimizer` for parameters shaped like `params` (a tree of { shape, dtype }): its
 * update from given gradients, or with `train` the whole training step (forward, loss, backward,
 * update, metrics) — the form curvature optimizers need, since they read the model's taps.
 */
export function compileOptimizerPlans<H extends HyperDefaults, S>(
  optimizer: Optimizer<H, S>,
  params: unknown,
  options: { limits?: PlanLimits; source?: string; train?: TrainStepTarget } = {},
): OptimizerManifest {
  const { train } = options;
  const limits = options.limits ?? PORTABLE_LIMITS;
  const { definition } = optimizer;
  const settings = optimizer.hyper;
  const p = skeletonOf('compile', params, isLeafSpec, 'a leaf { shape, dtype }');
  const member = (leaf: LeafSpec, i: number) => ({
    name: `%arg${i}`,
    dtype: leaf.dtype,
    size: paddedLength(leaf.shape.reduce((a, d) => a * d, 1)),
  });

  // init(params) as jit traces it: the parameters are %arg0 … %arg(P−1).
  const rebuild = (skeleton: Tree<number>, tensors: Tensor[]) =>
    flattenTree('compile', skeleton, (x): x is number => typeof x === 'number', 'a leaf').rebuild(
      tensors,
    );
  const initParams = rebuild(
    p.skeleton,
    p.leaves.map((l, i) => argument(i, l)),
  ) as ParamTree;
  // Per-layer state (Kronecker factors) needs the model's dense layers: a trace on a batch-shaped
  // x.
  const layers =
    train === undefined
      ? []
      : modelLayers(
          train.model,
          initParams,
          new Tensor(builder.input('x_shape', train.batch.x.shape, train.batch.x.dtype)),
        );
  const initTree = definition.init(initParams, settings, layers) as Tree<Tensor>;
  const s = skeletonOf('compile', initTree, isTensor, 'a Tensor');
  const initOutputs = s.leaves.map((t) => t.node);
  const initLayout = layoutFor(inputsOf(initOutputs), [p.leaves.map(member)], limits);
  const init = planOf(
    compileProgram(initOutputs, { limits, inputs: initLayout }),
    inputsOf(initOutputs),
  );
  const stateLeaves: LeafSpec[] = s.leaves.map((t) => ({ shape: t.shape, dtype: t.dtype }));

  // The step's arguments as compileOptimizer passes them — params, state, grads, numeric
  // hyperparameters, t and the [seed, t] counter, %arg0 … in that order — or as compileTrainStep
  // does, with the batch's x and y in place of the gradients.
  const numeric = numericHyper(definition.hyper);
  const P = p.leaves.length;
  const S = stateLeaves.length;
  const data: LeafSpec[] =
    train === undefined
      ? p.leaves.map((l) => ({ shape: l.shape, dtype: 'f32' as DType }))
      : [train.batch.x, train.batch.y];
  const hostSpecs: LeafSpec[] = [
    ...data,
    ...[...numeric, 't', 'seed', 'tCounter'].map(() => ({
      shape: [] as number[],
      dtype: 'f32' as DType,
    })),
  ];
  const traceStep = (
    every: (period: number, work: () => unknown, otherwise: () => unknown) => unknown,
  ) => {
    let k = 0;
    const next = (leaf: LeafSpec) => argument(k++, leaf);
    const held = [...p.leaves, ...stateLeaves].map(next);
    const paramsT = rebuild(p.skeleton, held.slice(0, P)) as ParamTree;
    const stateT = rebuild(s.skeleton, held.slice(P)) as Tree<Tensor>;
    const dataT = data.map(next);
    const values = numeric.map(() => next({ shape: [], dtype: 'f32' }));
    const tT = next({ shape: [], dtype: 'f32' });
    const counter = [next({ shape: [], dtype: 'f32' }), next({ shape: [], dtype: 'f32' })];
    const flat = (tree: unknown) =>
      flattenTree('compile', tree, isTensor, 'a Tensor').leaves.map((x) => x.node);
    let outputs: Node[];
    if (train === undefined) {
      const gradsT = rebuild(p.skeleton, dataT) as ParamTree;
      const extras = gradientOnlyExtras(every as never, definition.name);
      const [newParams, newState] = applyUpdate(
        optimizer,
        settings,
        values,
        { params: paramsT, state: stateT, grads: gradsT, t: tT, counter },
        extras,
      );
      outputs = [...flat(newParams), ...flat(newState)];
    } else {
      const body = trainStepBody({
        model: train.model,
        loss: train.loss,
        optimizer,
        settings,
        metrics: train.metrics,
        every: every as never,
      });
      const [newParams, newState, measured] = body(
        paramsT,
        stateT,
        dataT[0],
        dataT[1],
        values,
        tT,
        counter,
      );
      outputs = [...flat(newParams), ...flat(newState), measured.node];
    }
    const inputs = inputsOf(outputs);
    const donated = new Set(
      inputs
        .filter((n) => Number((n as Node<'input'>).attrs.name.slice(4)) < P + S)
        .map((n) => n.id),
    );
    const groups = [
      p.leaves.map((l, i) => member(l, i)),
      stateLeaves.map((l, i) => member(l, P + i)),
      hostSpecs.map((l, i) => member(l, P + S + i)),
    ];
    // Each result must land where its own argument was (the next step's plan expects it there).
    // The hyperparameters, t and the counter are numbers at run time (the loader uploads them
    // as such): what is computed from them alone runs on the host, as compileOptimizer does.
    const numbers = new Set(
      inputs
        .filter((n) => Number((n as Node<'input'>).attrs.name.slice(4)) >= P + S + data.length)
        .map((n) => n.id),
    );
    return planOf(
      compileProgram(outputs, {
        limits,
        donated,
        inputs: layoutFor(inputs, groups, limits),
        argumentOrder: held.map((t) => t.node),
        hostInputs: numbers,
      }),
      inputs,
    );
  };

  // Step 1 runs every due branch: it finds the periods; each pattern of due periods is a program.
  const periods = new Set<number>();
  const first = traceStep((period, work) => {
    if (!Number.isInteger(period) || period < 1)
      throw new GrngError('every', `the period must be a positive integer, got ${String(period)}`);
    periods.add(period);
    return work();
  });
  const sorted = [...periods].sort((a, b) => a - b);
  const cycle = sorted.reduce((l, q) => (l * q) / gcd(l, q), 1);
  if (cycle > MAX_CYCLE)
    throw new GrngError(
      'compile',
      `the every() periods ${sorted.join(', ')} repeat only after ${cycle} ` +
        `steps; grng compile supports cycles up to ${MAX_CYCLE}`,
    );
  const steps: StepPattern[] = [{ periods: sorted, plan: first }];
  for (let t = 2; t <= cycle; t++) {
    const due = dueAt(sorted, t);
    if (steps.some((s) => s.periods.join(',') === due.join(','))) continue;
    steps.push({
      periods: due,
      plan: traceStep((period, work, otherwise) => (due.includes(period) ? work() : otherwise())),
    });
  }
  const hyper = settings as Record<string, number | boolean | string>;
  return {
    format: MANIFEST_FORMAT,
    kind: train === undefined ? 'optimizer' : 'train-step',
    ...(train === undefined
      ? {}
      : { model: train.description, batch: train.batch, metrics: [...train.metrics] }),
    optimizer: optimizer.name,
    hyper,
    numeric,
    fixed: Object.keys(hyper).filter(
      (k) => !numeric.includes(k) || (definition.static ?? []).includes(k as keyof H & string),
    ),
    params: {
      skeleton: p.skeleton,
      leaves: p.leaves.map((l) => ({ shape: [...l.shape], dtype: l.dtype })),
    },
    state: { skeleton: s.skeleton, leaves: stateLeaves },
    periods: sorted,
    init,
    steps,
    limits,
    source: options.source ?? optimizer.name,
  };
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}
