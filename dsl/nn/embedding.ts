import { GrngError } from '../../core/errors.js';
import { positiveInteger } from './check.js';
import { take } from '../index.js';
import type { Tensor } from '../tensor.js';
import { normalInit, seededUniform } from './init.js';
import type { Model } from './layers.js';

export type EmbeddingParams = { readonly weight: Tensor };

/**
 * A lookup table [vocab, dim] (PyTorch's nn.Embedding: N(0, 1) at init): ids [...] (i32) → rows
 * [..., dim]. Its gradient is a scatter-add of the rows' cotangents. Not a dense layer for
 * curvature purposes (its Λ would be a diagonal of token counts): curvature optimizers give it
 * their fallback step (docs/algorithms.md §10.5).
 */
export function embedding(
  vocab: number,
  dim: number,
  options: { name?: string } = {},
): Model<EmbeddingParams> {
  positiveInteger('nn.embedding', 'vocab', vocab);
  positiveInteger('nn.embedding', 'dim', dim);
  const name = options.name ?? 'embedding';
  return {
    init: (seed) => ({ weight: normalInit(seededUniform(seed), [vocab, dim], 1) }),
    apply(params, ids) {
      if (ids.dtype !== 'i32')
        throw new GrngError(
          'nn.embedding',
          `${name} looks up i32 ids, got ${ids.dtype} [${ids.shape.join(', ')}]`,
        );
      return take(params.weight, ids);
    },
  };
}
