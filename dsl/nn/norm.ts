import { GrngError } from '../../core/errors.js';
import { add, mean, mul, rsqrt, square, sub } from '../index.js';
import type { Tensor } from '../tensor.js';
import { onesInit, zerosInit } from './init.js';
import type { Model } from './layers.js';

export type LayerNormParams = { readonly weight: Tensor; readonly bias: Tensor };

/**
 * (x − mean) / √(var + eps) over the last axis, scaled by `weight` and shifted by `bias` (PyTorch's
 * LayerNorm: biased variance, eps 1e-5, weight 1 and bias 0 at init). A composite of mean, rsqrt
 * and elementwise ops: the fuser puts each row's two reductions and the normalisation into few
 * kernels, and it differentiates to any order like its pieces. Its parameters are not a dense
 * layer, so curvature optimizers give them their fallback step (docs/algorithms.md §10.5).
 */
export function layerNorm(
  dim: number,
  options: { eps?: number; name?: string } = {},
): Model<LayerNormParams> {
  if (!Number.isInteger(dim) || dim < 1)
    throw new GrngError('nn.layerNorm', `dim must be a positive integer, got ${String(dim)}`);
  const eps = options.eps ?? 1e-5;
  if (!(eps > 0)) throw new GrngError('nn.layerNorm', `eps must be positive, got ${String(eps)}`);
  const name = options.name ?? `layerNorm${dim}`;
  return {
    init: () => ({ weight: onesInit([dim]), bias: zerosInit([dim]) }),
    apply(params, x) {
      if (x.rank < 1 || x.shape[x.rank - 1] !== dim)
        throw new GrngError(
          'nn.layerNorm',
          `${name} normalises a last axis of ${dim}, got [${x.shape.join(', ')}]`,
        );
      return add(mul(normalize(x, eps), params.weight), params.bias);
    },
  };
}

/** (x − mean) / √(var + eps) over the last axis (biased variance). */
export function normalize(x: Tensor, eps = 1e-5): Tensor {
  const centered = sub(x, mean(x, -1, true));
  return mul(centered, rsqrt(add(mean(square(centered), -1, true), eps)));
}
