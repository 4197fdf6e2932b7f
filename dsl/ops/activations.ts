import { builder as b } from '../../core/ir/index.js';
import { fmtShape, GrngError } from '../../core/errors.js';
import type { Shape } from '../shape-types.js';
import { isTensor, type Tensor } from '../tensor.js';
import { erf, tanh } from './elementwise.js';
import { wrap } from './operands.js';

/** How gelu computes Φ: exactly through erf ('none') or by the tanh approximation ('tanh'). */
export type GeluApproximation = 'none' | 'tanh';

/**
 * The Gaussian error linear unit, x·Φ(x) with Φ the standard normal CDF, with PyTorch's nn.GELU
 * semantics: 'none' (the default) is x·½(1 + erf(x/√2)); 'tanh' is
 * ½x(1 + tanh(√(2/π)(x + 0.044715x³))). Both are compositions of primitives, so they differentiate
 * to any order. Like PyTorch's, the 'none' form computes 1 + erf(x/√2), which cancels for very
 * negative x: there the result keeps its absolute accuracy (about |x|·1e-7 in f32) but not its
 * relative one (gelu(−5) ≈ −1.4e-6 is off by some percent in f32).
 */
export function gelu<S extends Shape>(
  x: Tensor<S>,
  approximate: GeluApproximation = 'none',
): Tensor<S> {
  if (!isTensor(x)) throw new GrngError('gelu', `expected a Tensor, got ${typeof x}`);
  if (x.dtype !== 'f32')
    throw new GrngError('gelu', `needs an f32 tensor, got ${x.dtype}${fmtShape(x.shape)}`);
  if (approximate !== 'none' && approximate !== 'tanh')
    throw new GrngError(
      'gelu',
      `approximate must be 'none' or 'tanh', got ${JSON.stringify(approximate)}`,
    );
  const n = x.node;
  const half = b.scale(n, 0.5);
  const one = b.fillLike(1, n);
  if (approximate === 'none') {
    const phi = erf(wrap(b.scale(n, Math.SQRT1_2))).node;
    return wrap(b.mul(half, b.add(one, phi)));
  }
  const cube = b.mul(n, b.mul(n, n));
  const inner = b.scale(b.add(n, b.scale(cube, 0.044715)), Math.sqrt(2 / Math.PI));
  return wrap(b.mul(half, b.add(one, tanh(wrap(inner)).node)));
}
