import {
  add,
  div,
  eye,
  le,
  lt,
  matmul,
  mT,
  mul,
  sqnorm,
  sqrt,
  sub,
  where,
  type Tensor,
} from '../index.js';

/** ‖I − A X‖_F: how far X is from A⁻¹ (an upper bound on the spectral norm of the residual). */
export function inverseResidual(a: Tensor, x: Tensor): Tensor {
  return sqrt(sqnorm(sub(eye(a.shape[0]), matmul(a, x))));
}

/**
 * `iterations` Newton–Schulz steps X ← X(2I − AX), each followed by X ← (X + Xᵀ)/2
 * (docs/algorithms.md §3.5). The residual squares every step (R_{j+1} = R_j²), so from ‖I − AX₀‖₂ <
 * 1 it converges quadratically; cost: two d×d matmuls per step.
 */
export function newtonSchulz(a: Tensor, x0: Tensor, iterations: number): Tensor {
  const twoI = mul(2, eye(a.shape[0]));
  let x = x0;
  for (let j = 0; j < iterations; j++) {
    x = matmul(x, sub(twoI, matmul(a, x)));
    x = div(add(x, mT(x)), 2);
  }
  return x;
}

export interface GuardedInverse {
  readonly inverse: Tensor;
  /** ‖I − A X‖_F of the returned inverse. */
  readonly residual: Tensor;
  /**
   * 1 when the first attempt missed `tolerance` (extra steps continued or, if it diverged,
   * restarted), else 0: a metric to report.
   */
  readonly fellBack: Tensor;
}

/**
 * A⁻¹ of a symmetric positive definite A by Newton–Schulz, decided on the device. Starts from
 * `x0` (a warm start: the previous inverse) when ‖I − AX₀‖_F < 1 and from I/λ̂ (λ̂ ≈ λ_max(A),
 * e.g. by power iteration) otherwise (R9). After `iterations` steps the residual is checked: above
 * `tolerance` counts as a fallback event; `extra` steps then continue from there, or — if the
 * iteration diverged (residual ≥ 1, e.g. λ̂ far below λ_max) — restart from I/‖A‖_F, which always
 * converges since ‖A‖_F ≥ λ_max. One straight-line program: the restart point is chosen with
 * `where`, and extra steps on a converged X only refine it.
 */
export function guardedInverse(
  a: Tensor,
  options: { lambdaMax: Tensor; x0?: Tensor; iterations: number; extra: number; tolerance: number },
): GuardedInverse {
  const n = a.shape[0];
  const identity = eye(n);
  const cold = div(identity, options.lambdaMax);
  const start =
    options.x0 === undefined
      ? cold
      : where(lt(inverseResidual(a, options.x0), 1), options.x0, cold);
  const first = newtonSchulz(a, start, options.iterations);
  const residual = inverseResidual(a, first);
  const safe = div(identity, sqrt(sqnorm(a)));
  const inverse = newtonSchulz(a, where(lt(residual, 1), first, safe), options.extra);
  // Written as ≤ so that a first attempt that overflowed (residual NaN) counts as a fallback too.
  return {
    inverse,
    residual: inverseResidual(a, inverse),
    fellBack: where(le(residual, options.tolerance), 0, 1),
  };
}

/**
 * Iterations k_NS = ⌈log₂(ln τ / ln(1/(1+√ρ)))⌉ that bring the residual below τ from X₀ = I/λ_max
 * (docs/algorithms.md §3.5).
 */
export function newtonSchulzIterations(sqrtRho: number, tolerance: number): number {
  return Math.max(1, Math.ceil(Math.log2(Math.log(tolerance) / Math.log(1 / (1 + sqrtRho)))));
}
