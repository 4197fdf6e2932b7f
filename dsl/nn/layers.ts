import { GrngError } from '../../core/errors.js';
import { positiveInteger } from './check.js';
import type { HostArray } from '../../core/host-array.js';
import {
  add,
  matmul,
  mT,
  mul,
  relu,
  sigmoid,
  tanh,
  concat,
  onesLike,
  reshape,
  slice,
} from '../index.js';
import type { Tensor } from '../tensor.js';
import type { Tree } from '../../core/tree.js';
import { childSeed, seededUniform, uniformInit } from './init.js';
import { tapDense } from './taps.js';
import { adapterOf } from './adapters.js';

/** A model as a pure pair (as in Flax/Haiku): parameters from a seed, and the forward function. */
export interface Model<P extends Tree<Tensor> = Tree<Tensor>> {
  /** Initial parameters (host arrays), the same for the same seed. */
  init(seed: number): Tree<HostArray>;
  /** The model's output (e.g. logits) for inputs `x` under `params`. */
  apply(params: P, x: Tensor): Tensor;
  /**
   * The parameter paths a training step trains unless told otherwise (prefixes such as 'lora' or
   * 'base.head'); the other parameters are read but frozen. Absent: all of them (nn.lora sets it).
   */
  readonly trainable?: readonly string[];
}

export type DenseParams = { readonly w: Tensor; readonly b?: Tensor };

/** An activation by name, for mlp. */
export const activations = { relu, tanh, sigmoid } as const;
export type ActivationName = keyof typeof activations;

/**
 * A dense (linear) layer s = x Wᵀ + b with W ∈ R^{out×in} (PyTorch's layout), initialised like
 * PyTorch's Linear: U(−1/√in, 1/√in). Applying it records a curvature tap (see taps.ts).
 */
export function dense(
  inFeatures: number,
  outFeatures: number,
  options: { bias?: boolean; name?: string } = {},
): Model<DenseParams> {
  positiveInteger('nn.dense', 'inFeatures', inFeatures);
  positiveInteger('nn.dense', 'outFeatures', outFeatures);
  const bias = options.bias ?? true;
  const name = options.name ?? `dense${inFeatures}x${outFeatures}`;
  return {
    init(seed) {
      const next = seededUniform(seed);
      const bound = 1 / Math.sqrt(inFeatures);
      const params: Record<string, HostArray> = {
        w: uniformInit(next, [outFeatures, inFeatures], bound),
      };
      if (bias) params.b = uniformInit(next, [outFeatures], bound);
      return params;
    },
    apply(params, x) {
      if (x.rank < 2 || x.shape[x.rank - 1] !== inFeatures)
        throw new GrngError(
          'nn.dense',
          `${name} expects inputs [batch, ${inFeatures}] or [batch, …, ${inFeatures}], ` +
            `got [${x.shape.join(', ')}]`,
        );
      return sharedDense(name, x, params.w, params.b, params);
    },
  };
}

/**
 * x Wᵀ + b over the last axis of `x` [B, …, d_in], recording the layer's tap. Inputs of rank
 * above 2 apply the same weights at every position: the tap then holds [B, T, ·] rows with T the
 * product of the middle axes (docs/algorithms.md §10). `matrix` is W as [d_out, d_in]; `params`
 * are the parameter tensors the tap reports (a convolution's kernel keeps its own shape). Inside
 * a LoRA model (nn.lora) a targeted layer adds its low-rank branch here.
 */
export function sharedDense(
  name: string,
  x: Tensor,
  matrix: Tensor,
  bias: Tensor | undefined,
  params: { readonly w: Tensor; readonly b?: Tensor },
): Tensor {
  const base = tappedDense(name, x, matrix, bias, params);
  const adapter = adapterOf(params.w);
  if (adapter === undefined) return base;
  // nn.lora's branch, A and B each a dense layer of its own with its own tap (§10.6).
  const u = tappedDense(`${name}.lora_a`, x, adapter.a, undefined, { w: adapter.a });
  const v = tappedDense(`${name}.lora_b`, u, adapter.b, undefined, { w: adapter.b });
  return add(base, mul(adapter.scale, v));
}

function tappedDense(
  name: string,
  x: Tensor,
  matrix: Tensor,
  bias: Tensor | undefined,
  params: { readonly w: Tensor; readonly b?: Tensor },
): Tensor {
  const [dOut, dIn] = matrix.shape;
  const lead = x.shape.slice(0, -1);
  const rows = lead.reduce((n, d) => n * d, 1);
  const x2 = x.rank === 2 ? x : reshape(x, [rows, dIn]);
  const product = matmul(x2, mT(matrix));
  const s2 = bias === undefined ? product : add(product, bias);
  // The tap's activations carry a ones column for the bias (W̃ = [W | b]).
  const a2 = bias === undefined ? x2 : concat([x2, onesLike(slice(x2, [0, 0], [rows, 1]))], 1);
  if (x.rank === 2) return tapDense(name, a2, s2, add, params);
  const tapRows = [x.shape[0], rows / x.shape[0]];
  const a = reshape(a2, [...tapRows, a2.shape[1]]);
  const s = reshape(s2, [...tapRows, dOut]);
  return reshape(tapDense(name, a, s, add, params), [...lead, dOut]);
}

/**
 * A multilayer perceptron: dense layers of `sizes` with `activation` between them (not after the
 * last).
 */
export function mlp(
  sizes: readonly number[],
  options: { activation?: ActivationName; bias?: boolean } = {},
): Model<{ readonly layers: readonly DenseParams[] }> {
  if (!Array.isArray(sizes) || sizes.length < 2)
    throw new GrngError(
      'nn.mlp',
      `sizes must list at least an input and an output width, got ${JSON.stringify(sizes)}`,
    );
  const activation = options.activation ?? 'relu';
  if (!(activation in activations))
    throw new GrngError(
      'nn.mlp',
      `unknown activation '${activation}'; use ${Object.keys(activations).join(', ')}`,
    );
  const layers = sizes
    .slice(1)
    .map((out, i) => dense(sizes[i], out, { bias: options.bias, name: `layer${i}` }));
  return {
    init: (seed) => ({ layers: layers.map((l, i) => l.init(childSeed(seed, i))) }),
    apply(params, x) {
      let h = x;
      layers.forEach((layer, i) => {
        h = layer.apply(params.layers[i], h);
        if (i < layers.length - 1) h = activations[activation](h);
      });
      return h;
    },
  };
}
