import {
  add,
  div,
  eye,
  le,
  lt,
  matmul,
  mT,
  mul,
  pad,
  slice,
  sqnorm,
  sqrt,
  sub,
  where,
  type Tensor,
} from '../index.js';
import { fmtShape, GrngError } from '../../core/errors.js';
import { expectCount, expectSquare, expectTensor } from './check.js';

/** ‖I − A X‖_F: how far X is from A⁻¹ (an upper bound on the spectral norm of the residual). */
export function inverseResidual(a: Tensor, x: Tensor): Tensor {
  expectSameSquare('inverseResidual', a, x, 'x');
  return residualOf(matmul(a, x));
}

/** A GrngError unless `a` is a square f32 matrix and `x` (named `what`) has its shape. */
function expectSameSquare(op: string, a: Tensor, x: Tensor, what: string): void {
  expectSquare(op, 'a', a);
  const t = expectTensor(op, what, x);
  if (t.rank !== 2 || t.shape[0] !== a.shape[0] || t.shape[1] !== a.shape[1])
    throw new GrngError(
      op,
      `${what} must have a's shape ${fmtShape(a.shape)}, got ${fmtShape(t.shape)}`,
    );
}

/** ‖I − P‖_F for P = A·X. */
const residualOf = (product: Tensor): Tensor => sqrt(sqnorm(sub(eye(product.shape[0]), product)));

/**
 * `iterations` Newton–Schulz steps X ← X(2I − AX), each followed by X ← (X + Xᵀ)/2
 * (docs/algorithms.md §3.5). The residual squares every step (R_{j+1} = R_j²), so from ‖I − AX₀‖₂ <
 * 1 it converges quadratically; cost: two d×d matmuls per step.
 */
export function newtonSchulz(a: Tensor, x0: Tensor, iterations: number): Tensor {
  expectSameSquare('newtonSchulz', a, x0, 'x0');
  expectCount('newtonSchulz', 'iterations', iterations);
  return iterate(a, withProduct(x0, matmul(a, x0)), iterations).x;
}

/**
 * (X + Xᵀ)/2 as X/2 + (X/2)ᵀ, the same floats (halving is exact): the transpose of a product X
 * itself would be rewritten to Sᵀ·Xᵀ (core/ir/builder.ts), a third d×d product per step.
 */
function symmetricPart(x: Tensor): Tensor {
  const half = mul(x, 0.5);
  return add(half, mT(half));
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
 * e.g. by power iteration) otherwise (R9). The first attempt is up to `iterations` steps; once the
 * residual is within `tolerance`, a step is kept only while it at least halves the residual (below
 * the tolerance it squares until the rounding floor), and once one does not, the rest — of this
 * attempt and of the `extra` steps — is skipped on the device (the compiler gates their kernels on
 * the flag that says so): the iteration stops at the floor. A first attempt that ends above
 * `tolerance` counts as a fallback event, and the `extra` steps then all run, continuing from
 * there or — if the iteration diverged (residual ≥ 1, e.g. λ̂ far below λ_max) — restarting from
 * I/‖A‖_F, which always converges since ‖A‖_F ≥ λ_max. One straight-line program either way:
 * `where` chooses. A width that is not a multiple of 4 iterates on blockdiag(A, I) (see
 * `blockWithIdentity`), which computes the same inverse.
 */
export function guardedInverse(
  a: Tensor,
  options: { lambdaMax: Tensor; x0?: Tensor; iterations: number; extra: number; tolerance: number },
): GuardedInverse {
  const op = 'guardedInverse';
  const n = expectSquare(op, 'a', a);
  if (typeof options !== 'object' || options === null)
    throw new GrngError(
      op,
      `expected options { lambdaMax, iterations, extra, tolerance }, got ${String(options)}`,
    );
  const lambdaMax = expectTensor(
    op,
    'options.lambdaMax (λ_max of a, e.g. powerIteration)',
    options.lambdaMax,
  );
  if (lambdaMax.rank !== 0)
    throw new GrngError(op, `options.lambdaMax must be a scalar, got ${fmtShape(lambdaMax.shape)}`);
  if (options.x0 !== undefined) expectSameSquare(op, a, options.x0, 'options.x0');
  expectCount(op, 'options.iterations', options.iterations);
  expectCount(op, 'options.extra', options.extra);
  if (!(options.tolerance > 0 && options.tolerance < 1))
    throw new GrngError(
      op,
      `options.tolerance must be in (0, 1), got ${String(options.tolerance)}`,
    );
  const embed = blockWithIdentity(n);
  const padded = embed(a);
  // A·X for X = c·I embedded is blockdiag(c·A, I): exact without a product (one nonzero term each).
  const scaledIdentity = (c: Tensor): Iterate => {
    const x = embed(mul(c, eye(n)));
    return withProduct(x, embed(mul(a, c)));
  };
  const cold = scaledIdentity(div(1, options.lambdaMax));
  let start = cold;
  if (options.x0 !== undefined) {
    const warm = withProduct(embed(options.x0), matmul(padded, embed(options.x0)));
    start = choose(lt(warm.residual, 1), warm, cold);
  }
  // `running` says a step is kept: above the tolerance (or NaN) every step is; within it, each one
  // that at least halves the residual until one does not. From there the residual squares each
  // step until it meets the rounding floor, so a step that no longer halves it marks the floor,
  // and every later step (gated on `running`) is skipped on the device. Each step starts from the
  // previous one's iterate, which is the result whenever the step is needed at all.
  let running: Tensor | undefined;
  const keepRunning = (keep: Tensor) => {
    running = running === undefined ? keep : where(running, keep, 0);
    return running;
  };
  const halves = (next: Iterate, from: Iterate) => le(next.residual, mul(from.residual, 0.5));
  let first = start;
  let previous = start;
  for (let k = 0; k < options.iterations; k++) {
    const next = iterate(padded, previous, 1);
    const keep = where(le(previous.residual, options.tolerance), halves(next, previous), 1);
    first = choose(keepRunning(keep), next, first);
    previous = next;
  }
  const converged = le(first.residual, options.tolerance); // false for NaN: a fallback too
  const safe = scaledIdentity(div(1, sqrt(sqnorm(a))));
  let result = choose(converged, first, choose(lt(first.residual, 1), first, safe));
  // A fallback runs every extra step; a first attempt within the tolerance goes on polishing as
  // above (`running` is still true after a fallback: it turns false only within the tolerance).
  // They start from the last step's iterate, which is `first` whenever they run (the first
  // attempt kept every step), or from the restart: not from `result`, whose selects over every
  // step's iterate would be inlined into the first extra step's products.
  previous = choose(lt(previous.residual, 1), previous, safe);
  for (let k = 0; k < options.extra; k++) {
    const next = iterate(padded, previous, 1);
    result = choose(keepRunning(where(converged, halves(next, previous), 1)), next, result);
    previous = next;
  }
  const inverse = result.x;
  return {
    inverse: padded === a ? inverse : slice(inverse, [0, 0], [n, n]),
    residual: result.residual,
    fellBack: where(converged, 0, 1),
  };
}

/** An iterate X with A·X and ‖I − A X‖_F (the next step needs the product; the guard, the norm). */
interface Iterate {
  readonly x: Tensor;
  readonly product: Tensor;
  readonly residual: Tensor;
}

function withProduct(x: Tensor, product: Tensor): Iterate {
  return { x, product, residual: residualOf(product) };
}

const choose = (c: Tensor, a: Iterate, b: Iterate): Iterate => ({
  x: where(c, a.x, b.x),
  product: where(c, a.product, b.product),
  residual: where(c, a.residual, b.residual),
});

/** `steps` Newton–Schulz steps from `from`, each reusing the product the previous one computed. */
function iterate(a: Tensor, from: Iterate, steps: number): Iterate {
  const twoI = mul(2, eye(a.shape[0]));
  let it = from;
  for (let j = 0; j < steps; j++) {
    const x = symmetricPart(matmul(it.x, sub(twoI, it.product)));
    it = withProduct(x, matmul(a, x));
  }
  return it;
}

/**
 * M ↦ blockdiag(M, I_p) for n×n matrices, p the fewest rows that make n + p a multiple of 4 (the
 * identity map when n is one): guardedInverse iterates on the embedded matrices so that its
 * products take the vec4 matmul kernel, whose rows must start on vec4 boundaries. The embedding
 * changes nothing it computes: A's and every iterate's identity block stays exactly I (1·(2 − 1·1)
 * = 1 in floating point too) and the off-diagonal blocks exactly 0, so the top-left block follows
 * the unpadded iteration and the pad adds exact zeros to ‖I − AX‖_F.
 */
export function blockWithIdentity(n: number): (m: Tensor) => Tensor {
  const p = (4 - (n % 4)) % 4;
  if (p === 0) return (m) => m;
  const identityBlock = sub(eye(n + p), pad(eye(n), [0, 0], [p, p]));
  return (m) => add(pad(m, [0, 0], [p, p]), identityBlock);
}

/**
 * Iterations k_NS = ⌈log₂(ln τ / ln(1/(1+√ρ)))⌉ that bring the residual below τ from X₀ = I/λ_max
 * (docs/algorithms.md §3.5).
 */
export function newtonSchulzIterations(sqrtRho: number, tolerance: number): number {
  // Outside these ranges the formula gives NaN or a meaningless count.
  if (!(sqrtRho >= 0 && Number.isFinite(sqrtRho)))
    throw new GrngError(
      'newtonSchulzIterations',
      `sqrtRho must be a finite number ≥ 0, got ${String(sqrtRho)}`,
    );
  if (!(tolerance > 0 && tolerance < 1))
    throw new GrngError(
      'newtonSchulzIterations',
      `tolerance must be in (0, 1), got ${String(tolerance)}`,
    );
  return Math.max(1, Math.ceil(Math.log2(Math.log(tolerance) / Math.log(1 / (1 + sqrtRho)))));
}
