import { fmtShape, GrngError } from '../../core/errors.js';
import {
  abs,
  add,
  concat,
  div,
  le,
  matmul,
  mean,
  mT,
  mul,
  reshape,
  slice,
  sub,
  sum,
  where,
  zeros,
  type Tensor,
} from '../index.js';
import { isTensor } from '../tensor.js';
import type { LayerTap } from '../optimizer.js';
import { expectTensor } from './check.js';

/**
 * How a layer applied at T positions per sample (tokens, patches, output pixels) turns into
 * Kronecker factors (docs/algorithms.md §10): 'expand' treats every position as a sample of its
 * own (K-FAC-expand), 'reduce' first averages the inputs and sums the output gradients over the
 * positions (K-FAC-reduce). Both equal the dense factors of §2 when T = 1.
 */
export type WeightSharing = 'expand' | 'reduce';

/**
 * A tap's rows: B samples of T positions each. A rank-2 tap (a [B, d_in]) is one position per
 * sample; a rank-3 tap (a [B, T, d_in]) has T.
 */
export function tapGeometry(
  tap: LayerTap,
  op = 'tapGeometry',
): { readonly batch: number; readonly positions: number } {
  if (typeof tap !== 'object' || tap === null)
    throw new GrngError(op, `expected a layer tap { name, a, g, w }, got ${String(tap)}`);
  const where = typeof tap.name === 'string' ? `tap ${tap.name}` : 'the tap';
  const a = expectTensor(op, `${where}: a`, tap.a);
  const g = expectTensor(op, `${where}: g`, tap.g);
  const sameLead = a.rank === g.rank && a.shape.slice(0, -1).every((d, i) => d === g.shape[i]);
  if ((a.rank !== 2 && a.rank !== 3) || !sameLead) {
    throw new GrngError(
      op,
      `tap ${tap.name}: a [B, d_in] and g [B, d_out] (or [B, T, d_in] and [B, T, d_out]) ` +
        `must share their leading axes, got [${a.shape.join(', ')}] and [${g.shape.join(', ')}]`,
    );
  }
  return { batch: a.shape[0], positions: a.rank === 3 ? a.shape[1] : 1 };
}

/** The tap's a and g as matrices of B·T rows. */
function rows(tap: LayerTap): { readonly a: Tensor; readonly g: Tensor } {
  const { a, g } = tap;
  if (a.rank === 2) return { a, g };
  const n = a.shape[0] * a.shape[1];
  return { a: reshape(a, [n, a.shape[2]]), g: reshape(g, [n, g.shape[2]]) };
}

/**
 * A layer's Kronecker factors for one minibatch (docs/algorithms.md §2, §10). With B samples of
 * T positions, expand gives Λ̂ = Σ ã ãᵀ / (B·T) and Γ̂ = Σ g gᵀ / B over all B·T rows; reduce gives
 * Λ̂ = Σ_n ā ā ᵀ / B and Γ̂ = Σ_n ĝ ĝᵀ / B with ā_n the mean of a over positions and ĝ_n the sum
 * of g. Dense layers (T = 1) get Λ̂ = aᵀa/B, Γ̂ = gᵀg/B either way.
 */
export function kroneckerFactors(
  tap: LayerTap,
  weightSharing: WeightSharing = 'expand',
): {
  readonly lambda: Tensor;
  readonly gamma: Tensor;
} {
  if (weightSharing !== 'expand' && weightSharing !== 'reduce')
    throw new GrngError(
      'kroneckerFactors',
      `weightSharing must be 'expand' or 'reduce', got ${JSON.stringify(weightSharing)}`,
    );
  const { batch, positions } = tapGeometry(tap, 'kroneckerFactors');
  if (weightSharing === 'reduce' && tap.a.rank === 3) {
    const aBar = mean(tap.a, 1);
    const gHat = summedGradients(tap.g);
    return { lambda: gram(aBar, batch), gamma: gram(gHat, batch) };
  }
  const { a, g } = rows(tap);
  return { lambda: gram(a, batch * positions), gamma: gram(g, batch) };
}

/**
 * xᵀx / count. A width that is not a multiple of 4 (a with its ones column: 785, 257) is computed
 * on x with zero columns appended and the product's top-left block taken: the same sums, on the
 * vec4 matmul kernel.
 */
function gram(x: Tensor, count: number): Tensor {
  const [n, d] = x.shape;
  const p = (4 - (d % 4)) % 4;
  if (p === 0) return div(matmul(mT(x), x), count);
  const padded = concat([x, zeros([n, p])], 1);
  return slice(div(matmul(mT(padded), padded), count), [0, 0], [d, d]);
}

/**
 * ĝ_n = Σ_t g_{n,t}, with entries that cancel to within 2⁻¹² of Σ_t |g_{n,t}| set to zero. Some
 * sums vanish identically — an attention key projection's, as softmax ignores a shift shared by all
 * keys — and in floating point leave a Γ of rounding noise (float32 autodiff rounds each g to a few
 * ulps of the larger terms it came from), which RING's relative damping would invert as if it were
 * curvature. Zero, it takes the degenerate-factor rule instead (docs/algorithms.md §10.3).
 */
function summedGradients(g: Tensor): Tensor {
  const total = sum(g, 1);
  const cancelled = le(abs(total), mul(sum(abs(g), 1), CANCELLED));
  return where(cancelled, 0, total);
}

/** Relative size below which a sum over positions counts as cancelled (see summedGradients). */
export const CANCELLED = 2 ** -12;

/**
 * The layer gradient G = Σ g ãᵀ / B over all B·T rows (d_out×d_in, the bias as the last column
 * when a carries a ones column): ∂L/∂[W | b] for the mean loss over the B samples.
 */
export function layerGradient(tap: LayerTap): Tensor {
  const { batch } = tapGeometry(tap, 'layerGradient');
  const { a, g } = rows(tap);
  return div(matmul(mT(g), a), batch);
}

/** Exponential moving average: decay·old + (1 − decay)·fresh (docs/algorithms.md §3.4). */
export function ema(old: Tensor, fresh: Tensor, decay: Tensor | number): Tensor {
  expectTensor('ema', 'old', old);
  expectTensor('ema', 'fresh', fresh);
  if (old.rank !== fresh.rank || !old.shape.every((d, i) => d === fresh.shape[i]))
    throw new GrngError(
      'ema',
      `old and fresh must have one shape, got ${fmtShape(old.shape)} and ${fmtShape(fresh.shape)}`,
    );
  if (typeof decay !== 'number' && !isTensor(decay))
    throw new GrngError('ema', `decay must be a number or a Tensor, got ${typeof decay}`);
  if (typeof decay === 'number' && !(decay >= 0 && decay <= 1))
    throw new GrngError('ema', `decay must be in [0, 1], got ${decay}`);
  return add(mul(decay, old), mul(sub(1, decay), fresh));
}
