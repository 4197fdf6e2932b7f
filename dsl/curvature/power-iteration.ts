import { fmtShape, GrngError } from '../../core/errors.js';
import { div, matmul, maximum, mul, reshape, sqnorm, sqrt, sum, type Tensor } from '../index.js';
import { expectCount, expectSquare, expectTensor } from './check.js';

/**
 * λ_max of a symmetric PSD matrix by `steps` power-iteration steps from `v0` (warm-started from
 * the previous top eigenvector), and the vector. The Rayleigh quotient vᵀAv never exceeds λ_max
 * (R10). A zero A gives 0 (the norm is guarded).
 */
export function powerIteration(
  a: Tensor,
  v0: Tensor,
  steps: number,
): { readonly value: Tensor; readonly vector: Tensor } {
  const n = expectSquare('powerIteration', 'a', a);
  const given = expectTensor('powerIteration', 'v0', v0);
  if (given.size !== n)
    throw new GrngError(
      'powerIteration',
      `v0 must hold ${n} values (a is ${fmtShape(a.shape)}), got ${fmtShape(given.shape)}`,
    );
  expectCount('powerIteration', 'steps', steps);
  const unit = (w: Tensor) => div(w, maximum(sqrt(sqnorm(w)), 1e-30));
  let v = unit(reshape(v0, [n, 1]));
  for (let j = 0; j < steps; j++) v = unit(matmul(a, v));
  const value = sum(mul(v, matmul(a, v)));
  return { value, vector: reshape(v, [n]) };
}
