import { div, matmul, maximum, mul, reshape, sqnorm, sqrt, sum, type Tensor } from '../index.js';

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
  const n = a.shape[0];
  const unit = (w: Tensor) => div(w, maximum(sqrt(sqnorm(w)), 1e-30));
  let v = unit(reshape(v0, [n, 1]));
  for (let j = 0; j < steps; j++) v = unit(matmul(a, v));
  const value = sum(mul(v, matmul(a, v)));
  return { value, vector: reshape(v, [n]) };
}
