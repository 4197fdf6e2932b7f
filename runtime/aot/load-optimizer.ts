// Runs an optimizer compiled ahead of time (`grng compile`) from its manifest: no tracing, no
// WGSL generation, no TypeScript — the plans' kernels are created on the device as they are.
// Parameters and state are uploaded packed as the plans expect and updated in place each step.
import { GrngError } from '../../compiler/errors.js';
import { fmtShape } from '../../compiler/ir/index.js';
import { flattenTree, type Tree } from '../../dsl/tree.js';
import type { ArrayData, Device, DeviceArray } from '../device.js';
import { HostArray } from '../host-array.js';
import { isArrayLeaf, type ArrayLeaf } from '../jit.js';
import type { GpuArray, WebGpuDevice } from '../webgpu-device.js';
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
  /** Changes numeric hyperparameters for the next steps (the compiled program reads them at run time). */
  setHyper(changes: Partial<H>): void;
  readonly hyper: Readonly<H>;
  readonly steps: number;
}

const isPlanDevice = (device: Device): device is WebGpuDevice => device.kind === 'webgpu' && typeof (device as Partial<WebGpuDevice>).executePlan === 'function';

async function hostData(leaf: ArrayLeaf): Promise<Float64Array> {
  if (typeof leaf === 'number') return Float64Array.of(leaf);
  if (leaf instanceof HostArray) return leaf.data;
  return leaf.read();
}

/** `leaves` checked against `specs` and read to the host, for packed uploads. */
async function gather(what: string, tree: unknown, specs: readonly LeafSpec[], dtypes: 'as-spec' | 'f32' = 'as-spec'): Promise<ArrayData[]> {
  const { leaves } = flattenTree('loadOptimizer', tree, isArrayLeaf, 'an array');
  if (leaves.length !== specs.length) throw new GrngError('loadOptimizer', `${what} has ${leaves.length} arrays; the compiled optimizer expects ${specs.length}`);
  return Promise.all(
    leaves.map(async (leaf, i) => {
      const shape = typeof leaf === 'number' ? [] : leaf.shape;
      const spec = specs[i];
      if (shape.length !== spec.shape.length || shape.some((d, k) => d !== spec.shape[k])) {
        throw new GrngError('loadOptimizer', `${what}: array ${i} is ${fmtShape(shape)} but the optimizer was compiled for ${fmtShape(spec.shape)}; recompile with grng compile --shapes`);
      }
      return { data: await hostData(leaf), shape: spec.shape, dtype: dtypes === 'f32' ? 'f32' : spec.dtype };
    }),
  );
}

/** Loads a compiled optimizer (its manifest object or JSON) on a WebGPU device with parameters `params`. */
export async function loadOptimizer<H extends { readonly [K in keyof H]: number }, P = Tree<DeviceArray>, S = Tree<DeviceArray>>(
  compiled: OptimizerManifest | object | string,
  device: Device,
  params: Tree<ArrayLeaf>,
  options: LoadOptions<H, Tree<ArrayLeaf>> = {},
): Promise<LoadedOptimizer<H, P, S>> {
  const manifest = manifestFromJson(compiled);
  if (!isPlanDevice(device)) throw new GrngError('loadOptimizer', `compiled optimizers run on WebGPU (their kernels are WGSL); got ${device.description}`);
  for (const [name, needed] of Object.entries(manifest.limits)) {
    const offered = (device.gpu.limits as unknown as Record<string, number>)[name];
    if (offered < needed) throw new GrngError('loadOptimizer', `${manifest.source} was compiled for ${name} ≥ ${needed}; this adapter offers ${offered}: recompile with grng compile --limits portable`);
  }
  const rebuild = <M>(skeleton: Tree<number>, leaves: readonly M[]) => flattenTree('loadOptimizer', skeleton, (x): x is number => typeof x === 'number', 'a leaf').rebuild(leaves);
  let paramArrays = device.uploadAll(await gather('the parameters', params, manifest.params.leaves)) as GpuArray[];
  let stateData: ArrayData[];
  if (options.state !== undefined) stateData = await gather('the state', options.state, manifest.state.leaves);
  else {
    const inputs = new Map(paramArrays.map((a, i) => [`%arg${i}`, a] as const));
    const made = await device.executePlan(manifest.init, inputs);
    stateData = await Promise.all(made.map(async (a, i) => ({ data: await a.read(), shape: manifest.state.leaves[i].shape, dtype: manifest.state.leaves[i].dtype })));
    made.forEach((a) => a.dispose());
  }
  // The state is re-uploaded packed: the step plans expect it in one buffer per storage type.
  let stateArrays = device.uploadAll(stateData) as GpuArray[];
  const numeric = new Set(manifest.numeric);
  const hyper: Record<string, number> = Object.fromEntries(manifest.numeric.map((k) => [k, manifest.hyper[k] as number]));
  const setHyper = (changes: Readonly<Record<string, unknown>>) => {
    for (const [name, value] of Object.entries(changes)) {
      if (manifest.fixed.includes(name)) throw new GrngError('loadOptimizer', `'${name}' shapes the compiled program (${String(manifest.hyper[name])}); recompile to change it`);
      if (!numeric.has(name)) throw new GrngError('loadOptimizer', `unknown hyperparameter '${name}'; ${manifest.optimizer} takes ${manifest.numeric.join(', ')}`);
      if (typeof value !== 'number' || !Number.isFinite(value)) throw new GrngError('loadOptimizer', `hyperparameter '${name}' must be a finite number, got ${String(value)}`);
      hyper[name] = value;
    }
  };
  setHyper(options.hyper ?? {});
  const seed = options.seed ?? 0;
  let steps = options.step ?? 0;
  const P = paramArrays.length;
  const S = stateArrays.length;
  return {
    async step(grads) {
      const data = await gather('the gradients', grads, manifest.params.leaves, 'f32');
      const t = steps + 1;
      const numbers = [...manifest.numeric.map((k) => hyper[k]), t, seed, t].map((v) => ({ data: Float64Array.of(v), shape: [], dtype: 'f32' as const }));
      const host = device.uploadAll([...data, ...numbers]) as GpuArray[];
      const due = dueAt(manifest.periods, t).join(',');
      const pattern = manifest.steps.find((s) => s.periods.join(',') === due);
      if (pattern === undefined) throw new GrngError('loadOptimizer', `no compiled step for step ${t} (periods ${due}); the manifest is incomplete`);
      const all = [...paramArrays, ...stateArrays, ...host];
      const inputs = new Map(all.map((a, i) => [`%arg${i}`, a] as const));
      const donated = new Set(all.slice(0, P + S).map((_, i) => `%arg${i}`));
      const out = await device.executePlan(pattern.plan, inputs, donated);
      host.forEach((a) => a.dispose());
      [paramArrays, stateArrays] = [out.slice(0, P), out.slice(P, P + S)];
      steps = t;
    },
    params: () => rebuild(manifest.params.skeleton, paramArrays) as P,
    state: () => rebuild(manifest.state.skeleton, stateArrays) as S,
    setHyper: (changes) => setHyper(changes as Readonly<Record<string, unknown>>),
    get hyper() {
      return { ...hyper } as unknown as H;
    },
    get steps() {
      return steps;
    },
  };
}
