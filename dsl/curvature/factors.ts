import { GrngError } from '../../core/errors.js';
import { add, div, matmul, mT, mul, sub, type Tensor } from '../index.js';
import type { LayerTap } from '../optimizer.js';

/**
 * A dense layer's Kronecker factors for one minibatch (docs/algorithms.md §2): Λ̂ = aᵀa/B
 * (d_in×d_in), Γ̂ = gᵀg/B (d_out×d_out).
 */
export function kroneckerFactors(tap: LayerTap): {
  readonly lambda: Tensor;
  readonly gamma: Tensor;
} {
  const { a, g } = tap;
  if (a.rank !== 2 || g.rank !== 2 || a.shape[0] !== g.shape[0]) {
    throw new GrngError(
      'kroneckerFactors',
      `tap ${tap.name}: a [B, d_in] and g [B, d_out] must share the batch ` +
        `axis, got [${a.shape.join(', ')}] and [${g.shape.join(', ')}]`,
    );
  }
  const batch = a.shape[0];
  return { lambda: div(matmul(mT(a), a), batch), gamma: div(matmul(mT(g), g), batch) };
}

/**
 * The layer gradient G = gᵀa/B (d_out×d_in, the bias as the last column when a carries a ones
 * column).
 */
export function layerGradient(tap: LayerTap): Tensor {
  return div(matmul(mT(tap.g), tap.a), tap.a.shape[0]);
}

/** Exponential moving average: decay·old + (1 − decay)·fresh (docs/algorithms.md §3.4). */
export function ema(old: Tensor, fresh: Tensor, decay: Tensor | number): Tensor {
  return add(mul(decay, old), mul(sub(1, decay), fresh));
}
