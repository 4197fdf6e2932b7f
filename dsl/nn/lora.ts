import { GrngError } from '../../core/errors.js';
import { HostArray } from '../../core/host-array.js';
import { add, constant, matmul, mT, mul } from '../index.js';
import type { Tensor } from '../tensor.js';
import { seededUniform, uniformInit, zerosInit } from './init.js';
import type { Model } from './layers.js';
import { tapDense } from './taps.js';

export type LoraParams = { readonly a: Tensor; readonly b: Tensor };

/**
 * One dense layer with a low-rank adaptation (Hu et al. 2021): s = x W₀ᵀ + b₀ + (α/r)·(x Aᵀ) Bᵀ
 * with A ∈ R^{r×in} (random) and B ∈ R^{out×r} (zeros) trainable. The base W₀, b₀ are constants
 * of the program, so they cannot change; A and B are each a dense layer for curvature purposes.
 */
export function loraDense(
  base: { readonly w: HostArray; readonly b?: HostArray },
  rank: number,
  options: { alpha?: number; name?: string } = {},
): Model<LoraParams> {
  if (!(base?.w instanceof HostArray) || base.w.shape.length !== 2)
    throw new GrngError(
      'nn.loraDense',
      "base.w must be a host array [out, in] (e.g. from a dense layer's init)",
    );
  const [outFeatures, inFeatures] = base.w.shape;
  if (base.b !== undefined && (base.b.shape.length !== 1 || base.b.shape[0] !== outFeatures)) {
    throw new GrngError(
      'nn.loraDense',
      `base.b must have shape [${outFeatures}], got [${base.b.shape.join(', ')}]`,
    );
  }
  if (!Number.isInteger(rank) || rank < 1 || rank > Math.min(inFeatures, outFeatures)) {
    throw new GrngError(
      'nn.loraDense',
      `rank must be an integer in [1, ${Math.min(inFeatures, outFeatures)}], got ${String(rank)}`,
    );
  }
  const alpha = options.alpha ?? rank;
  const name = options.name ?? 'lora';
  const w0 = constant(base.w.data, base.w.shape);
  const b0 = base.b === undefined ? undefined : constant(base.b.data, base.b.shape);
  return {
    init(seed) {
      const next = seededUniform(seed);
      return {
        a: uniformInit(next, [rank, inFeatures], 1 / Math.sqrt(inFeatures)),
        b: zerosInit([outFeatures, rank]),
      };
    },
    apply(params, x) {
      if (x.rank !== 2 || x.shape[1] !== inFeatures)
        throw new GrngError(
          'nn.loraDense',
          `${name} expects inputs [batch, ${inFeatures}], got [${x.shape.join(', ')}]`,
        );
      const frozen = b0 === undefined ? matmul(x, mT(w0)) : add(matmul(x, mT(w0)), b0);
      const u = tapDense(`${name}.a`, x, matmul(x, mT(params.a)), add, { w: params.a });
      const v = tapDense(`${name}.b`, u, matmul(u, mT(params.b)), add, { w: params.b });
      return add(frozen, mul(alpha / rank, v));
    },
  };
}
