// Runs an optimizer compiled ahead of time (`grng compile`) from its manifest: no tracing, no
// WGSL generation, no TypeScript — the plans' kernels are created on the device as they are.
// Parameters and state are uploaded packed as the plans expect and updated in place each step.
import { GrngError } from '../core/errors.js';
import { fmtShape } from '../core/errors.js';
import { flattenTree, type Tree } from '../core/tree.js';
import type { ArrayData, Device, DeviceArray } from '../runtime/device.js';
import { HostArray } from '../core/host-array.js';
import { isArrayLeaf, type ArrayLeaf } from '../runtime/jit.js';
import type { GpuArray, WebGpuDevice } from '../runtime/webgpu-device.js';
import { dueAt, manifestFromJson, type LeafSpec, type OptimizerManifest } from './manifest.js';

export interface LoadOptions<H, S> {
  /** Resume from this state (e.g. a checkpoint); default: the optimizer's init. */
  readonly state?: S;
  /** Steps already taken with `state`. */
  readonly step?: number;
  /** Seed of the step keys (as compileOptimizer's). */
  readonly seed?: number;
  /** Numeric hyperparameters to start with (the compiled values otherwise). */
  readonly hyper?: Partial<H>;
}

export interface LoadedOptimizer<H, P = Tree<DeviceArray>, S = Tree<DeviceArray>> {
  /** One update with `grads` (shaped like the parameters); resolves when it is queued. */
  step(grads: Tree<ArrayLeaf>): Promise<void>;
  params(): P;
  state(): S;
  /**
   * Changes numeric hyperparameters for the next steps (the compiled program reads them at run
   * time).
   */
  setHyper(changes: Partial<H>): void;
  readonly hyper: Readonly<H>;
  readonly steps: number;
}

const isPlanDevice = (device: Device): device is WebGpuDevice =>
  device.kind === 'webgpu' && typeof (device as Partial<WebGpuDevice>).executePlan === 'function';

async function hostData(leaf: ArrayLeaf): Promise<Float64Array> {
  if (typeof leaf === 'number') return Float64Array.of(leaf);
  if (leaf instanceof HostArray) return leaf.data;
  return leaf.read();
}

/** `leaves` checked against `specs` and read to the host, for packed uploads. */
async function gather(
  what: string,
  tree: unknown,
  specs: readonly LeafSpec[],
  dtypes: 'as-spec' | 'f32' = 'as-spec',
): Promise<ArrayData[]> {
  const { leaves } = flattenTree('loadOptimizer', tree, isArrayLeaf, 'an array');
  if (leaves.length !== specs.length)
    throw new GrngError(
      'loadOptimizer',
      `${what} has ${leaves.length} arrays; the compiled optimizer expects ${specs.length}`,
    );
  return Promise.all(
    leaves.map(async (leaf, i) => {
      const shape = typeof leaf === 'number' ? [] : leaf.shape;
      const spec = specs[i];
      if (shape.length !== spec.shape.length || shape.some((d, k) => d !== spec.shape[k])) {
        throw new GrngError(
          'loadOptimizer',
          `${what}: array ${i} is ${fmtShape(shape)} but the optimizer was ` +
            `compiled for ${fmtShape(spec.shape)}; recompile with grng compile ` +
            `--shapes`,
        );
      }
      return {
        data: await hostData(leaf),
        shape: spec.shape,
        dtype: dtypes === 'f32' ? 'f32' : spec.dtype,
      };
    }),
  );
}

/**
 * What both front ends share: the manifest checked against the device, parameters and state
 * uploaded packed, the runtime numbers.
 */
async function openPlans(
  compiled: OptimizerManifest | object | string,
  device: Device,
  params: Tree<ArrayLeaf>,
  options: LoadOptions<unknown, Tree<ArrayLeaf>>,
  kind: OptimizerManifest['kind'],
) {
  const manifest = manifestFromJson(compiled);
  if (manifest.kind !== kind)
    throw new GrngError(
      'load',
      `${manifest.source} is a compiled ${manifest.kind}; load it with ` +
        `${manifest.kind === 'optimizer' ? 'loadOptimizer' : 'loadTrainStep'}`,
    );
  if (!isPlanDevice(device))
    throw new GrngError(
      'load',
      `compiled optimizers run on WebGPU (their kernels are WGSL); got ${device.description}`,
    );
  for (const [name, needed] of Object.entries(manifest.limits)) {
    // A device planning within a smaller binding (its maxBindingBytes) offers only that.
    const offered =
      name === 'maxStorageBufferBindingSize'
        ? device.maxBindingBytes
        : (device.gpu.limits as unknown as Record<string, number>)[name];
    if (offered < needed)
      throw new GrngError(
        'load',
        `${manifest.source} was compiled for ${name} ≥ ${needed}; this adapter ` +
          `offers ${offered}: recompile with grng compile --limits portable`,
      );
  }
  // Arrays packed into buffers as the plans were compiled to find them (within their binding size).
  const packBytes = manifest.limits.maxStorageBufferBindingSize;
  const paramArrays = device.uploadAll(
    await gather('the parameters', params, manifest.params.leaves),
    packBytes,
  ) as GpuArray[];
  let stateData: ArrayData[];
  if (options.state !== undefined)
    stateData = await gather('the state', options.state, manifest.state.leaves);
  else {
    const inputs = new Map(paramArrays.map((a, i) => [`%arg${i}`, a] as const));
    const made = await device.executePlan(manifest.init, inputs);
    stateData = await Promise.all(
      made.map(async (a, i) => ({
        data: await a.read(),
        shape: manifest.state.leaves[i].shape,
        dtype: manifest.state.leaves[i].dtype,
      })),
    );
    made.forEach((a) => a.dispose());
  }
  // The state is re-uploaded packed: the step plans expect it in one buffer per storage type.
  const stateArrays = device.uploadAll(stateData, packBytes) as GpuArray[];
  const numeric = new Set(manifest.numeric);
  const hyper: Record<string, number> = Object.fromEntries(
    manifest.numeric.map((k) => [k, manifest.hyper[k] as number]),
  );
  const setHyper = (changes: Readonly<Record<string, unknown>>) => {
    for (const [name, value] of Object.entries(changes)) {
      if (manifest.fixed.includes(name))
        throw new GrngError(
          'load',
          `'${name}' shapes the compiled program ` +
            `(${String(manifest.hyper[name])}); recompile to change it`,
        );
      if (!numeric.has(name))
        throw new GrngError(
          'load',
          `unknown hyperparameter '${name}'; ${manifest.optimizer} takes ` +
            `${manifest.numeric.join(', ')}`,
        );
      if (typeof value !== 'number' || !Number.isFinite(value))
        throw new GrngError(
          'load',
          `hyperparameter '${name}' must be a finite number, got ${String(value)}`,
        );
      hyper[name] = value;
    }
  };
  setHyper((options.hyper ?? {}) as Readonly<Record<string, unknown>>);
  const seed = options.seed ?? 0;
  const open = {
    manifest,
    device,
    arrays: { params: paramArrays, state: stateArrays },
    hyper,
    setHyper,
    steps: options.step ?? 0,
    /**
     * Runs step t with the call's host data (gradients, or a batch) ahead of the runtime numbers;
     * returns the outputs after params and state.
     */
    async step(data: readonly ArrayData[]): Promise<GpuArray[]> {
      const t = open.steps + 1;
      const numbers = [...manifest.numeric.map((k) => hyper[k]), t, seed, t].map((v) => ({
        data: Float64Array.of(v),
        shape: [],
        dtype: 'f32' as const,
        hostNumber: true,
      }));
      const host = device.uploadAll([...data, ...numbers], packBytes) as GpuArray[];
      const due = dueAt(manifest.periods, t).join(',');
      const pattern = manifest.steps.find((p) => p.periods.join(',') === due);
      if (pattern === undefined)
        throw new GrngError(
          'load',
          `no compiled step for step ${t} (periods ${due}); the manifest is incomplete`,
        );
      const [P, S] = [open.arrays.params.length, open.arrays.state.length];
      const held = [...open.arrays.params, ...open.arrays.state];
      const all = [...held, ...host];
      const inputs = new Map(all.map((a, i) => [`%arg${i}`, a] as const));
      // Only what the program reads is donated; a state leaf it rewrites without reading (an
      // inverse recomputed on a refresh step) keeps its array, and the new value is copied there,
      // so every plan finds parameters and state where it was compiled to find them.
      const read = new Set(pattern.plan.inputs.map((i) => i.name));
      const donated = new Set(held.map((_, i) => `%arg${i}`).filter((name) => read.has(name)));
      const out = await device.executePlan(pattern.plan, inputs, donated);
      host.forEach((a) => a.dispose());
      const placed = out.slice(0, P + S).map((a, i) => {
        const before = held[i];
        if (a.allocation === before.allocation && a.offset === before.offset) return a;
        if (read.has(`%arg${i}`))
          throw new GrngError(
            'load',
            `internal: the compiled step moved %arg${i}; please report it`,
          );
        device.copyInto(a, before);
        a.dispose();
        return before;
      });
      open.arrays = { params: placed.slice(0, P), state: placed.slice(P) };
      open.steps = t;
      return out.slice(P + S);
    },
    tree: <M>(skeleton: Tree<number>, leaves: readonly M[]) =>
      flattenTree('load', skeleton, (x): x is number => typeof x === 'number', 'a leaf').rebuild(
        leaves,
      ),
  };
  return open;
}

/**
 * What both loaded forms expose beyond their step: trees of the current arrays, hyperparameters,
 * the step count.
 */
function accessors(open: Awaited<ReturnType<typeof openPlans>>): PropertyDescriptorMap {
  const { manifest } = open;
  return {
    params: { value: () => open.tree(manifest.params.skeleton, open.arrays.params) },
    state: { value: () => open.tree(manifest.state.skeleton, open.arrays.state) },
    setHyper: { value: (changes: Readonly<Record<string, unknown>>) => open.setHyper(changes) },
    hyper: { get: () => ({ ...open.hyper }) },
    steps: { get: () => open.steps },
  };
}

/**
 * Loads a compiled optimizer (its manifest object or JSON) on a WebGPU device with parameters
 * `params`.
 */
export async function loadOptimizer<
  H extends { readonly [K in keyof H]: number },
  P = Tree<DeviceArray>,
  S = Tree<DeviceArray>,
>(
  compiled: OptimizerManifest | object | string,
  device: Device,
  params: Tree<ArrayLeaf>,
  options: LoadOptions<H, Tree<ArrayLeaf>> = {},
): Promise<LoadedOptimizer<H, P, S>> {
  const open = await openPlans(compiled, device, params, options, 'optimizer');
  const { manifest } = open;
  return Object.defineProperties(
    {
      async step(grads: Tree<ArrayLeaf>) {
        await open.step(await gather('the gradients', grads, manifest.params.leaves, 'f32'));
      },
    } as object,
    accessors(open),
  ) as LoadedOptimizer<H, P, S>;
}

export interface LoadedTrainStep<H, P = Tree<DeviceArray>, S = Tree<DeviceArray>> extends Omit<
  LoadedOptimizer<H, P, S>,
  'step'
> {
  /**
   * One training step on a batch of the compiled shapes; resolves to its metrics, and `skipped`
   * (1 when a non-finite loss, gradient or update left parameters and state unchanged).
   */
  run(batch: {
    readonly x: ArrayLeaf;
    readonly y: ArrayLeaf;
  }): Promise<Readonly<Record<string, number>>>;
}

/**
 * Loads a compiled training step (grng compile --preset) on a WebGPU device with parameters
 * `params`.
 */
export async function loadTrainStep<
  H extends { readonly [K in keyof H]: number },
  P = Tree<DeviceArray>,
  S = Tree<DeviceArray>,
>(
  compiled: OptimizerManifest | object | string,
  device: Device,
  params: Tree<ArrayLeaf>,
  options: LoadOptions<H, Tree<ArrayLeaf>> = {},
): Promise<LoadedTrainStep<H, P, S>> {
  const open = await openPlans(compiled, device, params, options, 'train-step');
  const { manifest } = open;
  const batch = manifest.batch as NonNullable<OptimizerManifest['batch']>;
  const metrics = manifest.metrics ?? [];
  return Object.defineProperties(
    {
      async run({ x, y }: { readonly x: ArrayLeaf; readonly y: ArrayLeaf }) {
        const data = await gather('the batch', [x, y], [batch.x, batch.y]);
        const [measured] = await open.step(data);
        const values = await measured.read();
        measured.dispose();
        // After the metrics, the non-finite guard's mark (0: kept; else the step was skipped).
        return {
          ...Object.fromEntries(metrics.map((name, i) => [name, values[i]])),
          skipped: values.length > metrics.length && values[metrics.length] !== 0 ? 1 : 0,
        };
      },
    } as object,
    accessors(open),
  ) as LoadedTrainStep<H, P, S>;
}
