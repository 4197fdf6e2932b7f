// nn.lora: low-rank adapters on the dense projections of any model built from grng's layers (Hu et
// al. 2021; docs/algorithms.md §10.6). The base model is applied unchanged; each targeted dense
// layer adds s·(x Aᵀ) Bᵀ with s = α/r, A and B each a dense layer with a curvature tap of its own,
// so K-FAC, RING and RENG precondition each factor. Training steps train only the adapters (and
// what `train` names): the base parameters are read, never differentiated, never given state.
import { GrngError } from '../../core/errors.js';
import { HostArray, isHostArray } from '../../core/host-array.js';
import type { Node } from '../../core/ir/node.js';
import type { Tree } from '../../core/tree.js';
import { isTensor, type Tensor } from '../tensor.js';
import { withAdapters, type DenseAdapter } from './adapters.js';
import { childSeed, seededUniform, uniformInit, zerosInit } from './init.js';
import type { Model } from './layers.js';

export interface LoraOptions {
  /** r, the adapters' rank. */
  readonly rank: number;
  /** α: the branch is scaled by α/r (default r, a scale of 1). */
  readonly alpha?: number;
  /**
   * The dense layers to adapt, by parameter path or its last segments ('q' matches
   * 'blocks.0.attention.q'; 'mlp.fc1', 'head'); default ['q', 'v'], as in the LoRA paper.
   */
  readonly targets?: readonly string[];
  /** Base parameters trained too, by path prefix (e.g. ['head'] for a new task's classifier). */
  readonly train?: readonly string[];
}

export type LoraModelParams<P> = { readonly base: P; readonly lora: Tree<Tensor> };

export interface LoraModel<P extends Tree<Tensor>> extends Model<LoraModelParams<P>> {
  /**
   * { base, lora }: `base` (e.g. pretrained weights) or the base model's init(seed), and adapters
   * with A ~ U(−1/√in, 1/√in) and B = 0, so the model starts as the base model.
   */
  init(seed: number, base?: Tree<HostArray>): Tree<HostArray>;
  /** 'lora' and the `train` paths under 'base'. */
  readonly trainable: readonly string[];
  /** The α/r of every branch. */
  readonly scale: number;
  /** The paths of the layers the targets select in `base` ('blocks.0.attention.q', …). */
  targetsOf(base: Tree<HostArray>): string[];
  /** The base parameters with every adapter merged in, W + (α/r)·B·A, in float64. */
  merge(params: Tree<HostArray>): Tree<HostArray>;
}

const OP = 'nn.lora';

/** Adapters on the dense layers of `model` that `options.targets` select. */
export function lora<P extends Tree<Tensor>>(model: Model<P>, options: LoraOptions): LoraModel<P> {
  if (typeof model?.apply !== 'function' || typeof model.init !== 'function')
    throw new GrngError(OP, 'the first argument must be a model { init, apply } (e.g. nn.vit(…))');
  const rank = options?.rank;
  if (!Number.isInteger(rank) || rank < 1)
    throw new GrngError(OP, `rank must be a positive integer, got ${String(rank)}`);
  const alpha = options.alpha ?? rank;
  if (!Number.isFinite(alpha) || alpha <= 0)
    throw new GrngError(OP, `alpha must be a positive number, got ${String(alpha)}`);
  const targets = options.targets ?? ['q', 'v'];
  const train = options.train ?? [];
  for (const [what, list] of [
    ['targets', targets],
    ['train', train],
  ] as const)
    if (!Array.isArray(list) || !list.every((t) => typeof t === 'string' && t !== ''))
      throw new GrngError(OP, `${what} must be a list of parameter paths, got ${String(list)}`);
  const scale = alpha / rank;

  const targetsOf = (base: Tree<HostArray>): string[] => {
    const dense = denseLayers(base, isHostArray);
    const chosen = dense.filter((d) =>
      targets.some((t) => d.path === t || d.path.endsWith(`.${t}`)),
    );
    const unmatched = targets.filter(
      (t) => !chosen.some((d) => d.path === t || d.path.endsWith(`.${t}`)),
    );
    if (unmatched.length > 0)
      throw new GrngError(
        OP,
        `target${unmatched.length > 1 ? 's' : ''} ${unmatched.map((t) => `'${t}'`).join(', ')} ` +
          `match${unmatched.length > 1 ? '' : 'es'} no dense layer; the model's dense layers are ` +
          dense.map((d) => d.path).join(', '),
      );
    for (const d of chosen) {
      const [out, inp] = d.w.shape;
      if (rank > Math.min(out, inp))
        throw new GrngError(
          OP,
          `rank ${rank} exceeds ${d.path}'s width min(${out}, ${inp}); use a rank ≤ ${Math.min(out, inp)}`,
        );
    }
    return chosen.map((d) => d.path);
  };

  return {
    trainable: ['lora', ...train.map((p) => `base.${p}`)],
    scale,
    targetsOf,
    init(seed, base) {
      const baseParams = base ?? model.init(seed);
      const chosen = new Set(targetsOf(baseParams));
      let index = 0;
      const adapters = mirror(baseParams, (path, w) => {
        if (!chosen.has(path)) return undefined;
        const [out, inp] = w.shape;
        const next = seededUniform(childSeed(seed, 1000 + index++));
        return { a: uniformInit(next, [rank, inp], 1 / Math.sqrt(inp)), b: zerosInit([out, rank]) };
      });
      return { base: baseParams, lora: adapters ?? {} };
    },
    apply(params, x) {
      const attached = new Map<Node, DenseAdapter & { path: string }>();
      collectAdapters<Tensor>(params.base, params.lora, '', (path, layer, adapter) => {
        checkShapes(path, layer.w.shape, adapter.a.shape, adapter.b.shape, rank);
        attached.set(layer.w.node, { a: adapter.a, b: adapter.b, scale, path });
      });
      const { result, used } = withAdapters(attached, () => model.apply(params.base, x));
      for (const [node, adapter] of attached)
        if (!used.has(node))
          throw new GrngError(
            OP,
            `the adapter at lora.${adapter.path} was never applied: the model does not use ` +
              `base.${adapter.path}.w as a dense layer (nn.dense, attention projections)`,
          );
      return result;
    },
    merge: (params) => mergeAdapters(params, scale),
  };
}

/**
 * LoRA parameters { base, lora } (host arrays) as plain base parameters: every adapted layer's
 * W + scale·B·A in float64, the other parameters as they are. What a LoRA model's merge does, for
 * callers that have the parameters and the scale but not the model (grng merge).
 */
export function mergeAdapters(params: Tree<HostArray>, scale: number): Tree<HostArray> {
  const { base, lora: adapters } = asLoraParams(params);
  const merged = new Map<string, HostArray>();
  collectAdapters<HostArray>(base, adapters, '', (path, layer, adapter) => {
    checkShapes(path, layer.w.shape, adapter.a.shape, adapter.b.shape, adapter.a.shape[0]);
    merged.set(path, mergedWeight(layer.w, adapter.a, adapter.b, scale));
  });
  return (
    mirror(
      base,
      (path, w) => merged.get(path) ?? w,
      (leaf) => leaf,
    ) ?? (base as Tree<HostArray>)
  );
}

type Leaf = { readonly shape: readonly number[] };
type DenseRecord<L> = { readonly w: L; readonly b?: L };

/** W + s·B·A in float64 (W [out, in], B [out, r], A [r, in]). */
function mergedWeight(w: HostArray, a: HostArray, b: HostArray, scale: number): HostArray {
  const [out, inp] = w.shape;
  const r = a.shape[0];
  const data = Float64Array.from(w.data);
  for (let i = 0; i < out; i++)
    for (let j = 0; j < inp; j++) {
      let s = 0;
      for (let k = 0; k < r; k++) s += b.data[i * r + k] * a.data[k * inp + j];
      data[i * inp + j] += scale * s;
    }
  return new HostArray(data, w.shape, w.dtype);
}

function asLoraParams(params: Tree<HostArray>): { base: Tree<HostArray>; lora: Tree<HostArray> } {
  const p = params as { base?: Tree<HostArray>; lora?: Tree<HostArray> };
  if (typeof p !== 'object' || p === null || p.base === undefined || p.lora === undefined)
    throw new GrngError(OP, 'merge takes the LoRA model parameters { base, lora } as host arrays');
  return { base: p.base, lora: p.lora };
}

function checkShapes(
  path: string,
  w: readonly number[],
  a: readonly number[],
  b: readonly number[],
  rank: number,
): void {
  const [out, inp] = w;
  if (
    a.length !== 2 ||
    a[0] !== rank ||
    a[1] !== inp ||
    b.length !== 2 ||
    b[0] !== out ||
    b[1] !== rank
  )
    throw new GrngError(
      OP,
      `lora.${path} must hold a [${rank}, ${inp}] and b [${out}, ${rank}] for base.${path}.w ` +
        `[${out}, ${inp}], got a [${a.join(', ')}] and b [${b.join(', ')}]`,
    );
}

const isRecord = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && Object.getPrototypeOf(x) === Object.prototype;

const join = (path: string, key: string | number) => (path === '' ? `${key}` : `${path}.${key}`);

/** A dense layer's parameters: { w } or { w, b } with w of rank 2 and b of rank 1. */
function asDense<L extends Leaf>(
  x: unknown,
  isLeaf: (x: unknown) => x is L,
): DenseRecord<L> | undefined {
  if (!isRecord(x) || !isLeaf(x.w) || x.w.shape.length !== 2) return undefined;
  const keys = Object.keys(x);
  if (!keys.every((k) => k === 'w' || k === 'b')) return undefined;
  if (x.b !== undefined && (!isLeaf(x.b) || x.b.shape.length !== 1)) return undefined;
  return x as DenseRecord<L>;
}

/** Every dense layer of a parameter tree, with its path, in path order. */
function denseLayers<L extends Leaf>(
  tree: unknown,
  isLeaf: (x: unknown) => x is L,
): { path: string; w: L }[] {
  const found: { path: string; w: L }[] = [];
  const walk = (node: unknown, path: string): void => {
    const dense = asDense(node, isLeaf);
    if (dense !== undefined) found.push({ path, w: dense.w });
    else if (Array.isArray(node)) node.forEach((c, i) => walk(c, join(path, i)));
    else if (isRecord(node) && !isLeaf(node))
      Object.keys(node)
        .sort()
        .forEach((k) => walk(node[k], join(path, k)));
  };
  walk(tree, '');
  return found;
}

/**
 * A tree shaped like `tree` holding, at each dense layer, what `atDense(path, w)` returns (nothing
 * when undefined), and at other leaves what `atLeaf` returns; parts left empty are dropped
 * (elements of lists become {}).
 */
function mirror<T>(
  tree: Tree<HostArray>,
  atDense: (path: string, w: HostArray) => T | undefined,
  atLeaf: (leaf: HostArray) => T | undefined = () => undefined,
): Tree<T> | undefined {
  const walk = (node: unknown, path: string): unknown => {
    const dense = asDense(node, isHostArray);
    if (dense !== undefined) {
      const at = atDense(path, dense.w);
      if (at === undefined || at instanceof HostArray === false) return at;
      // A replaced weight keeps the layer's other parameters.
      return { ...dense, w: at };
    }
    if (isHostArray(node)) return atLeaf(node);
    if (Array.isArray(node)) {
      const parts = node.map((c, i) => walk(c, join(path, i)));
      return parts.every((p) => p === undefined) ? undefined : parts.map((p) => p ?? {});
    }
    if (isRecord(node)) {
      const entries = Object.keys(node).flatMap((k) => {
        const p = walk(node[k], join(path, k));
        return p === undefined ? [] : [[k, p] as const];
      });
      return entries.length === 0 ? undefined : Object.fromEntries(entries);
    }
    throw new GrngError(
      OP,
      `base parameters must be host arrays, found ${String(node)} at ${path}`,
    );
  };
  return walk(tree, '') as Tree<T> | undefined;
}

/** Calls `found` for every adapter { a, b } of `adapters` with the base layer at its path. */
function collectAdapters<L extends Leaf>(
  base: unknown,
  adapters: unknown,
  path: string,
  found: (path: string, layer: DenseRecord<L>, adapter: { a: L; b: L }) => void,
): void {
  if (isRecord(adapters) && Object.keys(adapters).sort().join() === 'a,b') {
    const layer = asDense(base, isAnyLeaf);
    if (layer === undefined)
      throw new GrngError(
        OP,
        `lora.${path} adapts base.${path}, which is not a dense layer { w, b }`,
      );
    found(path, layer as DenseRecord<L>, adapters as { a: L; b: L });
    return;
  }
  const step = (key: string | number, child: unknown) => {
    const under = (base as Record<string | number, unknown> | undefined)?.[key];
    if (under === undefined)
      throw new GrngError(OP, `lora.${join(path, key)} has no counterpart in the base parameters`);
    collectAdapters(under, child, join(path, key), found);
  };
  if (Array.isArray(adapters)) adapters.forEach((c, i) => step(i, c));
  else if (isRecord(adapters)) Object.keys(adapters).forEach((k) => step(k, adapters[k]));
  else
    throw new GrngError(OP, `lora.${path} must hold adapters { a, b }, found ${String(adapters)}`);
}

const isAnyLeaf = (x: unknown): x is Leaf => isTensor(x) || x instanceof HostArray;
