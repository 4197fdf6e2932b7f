// Dense Cholesky factorization and triangular solves for small SPD systems (R-Kalman's innovation
// covariance, whose size is the observation dimension). Written as unrolled column and row sweeps
// over static sizes — d steps of a matrix-vector product each — so they run on every device like
// any other program; meant for d up to a few hundred.
import { GrngError } from '../../core/errors.js';
import { fmtShape } from '../../core/errors.js';
import { add, div, ge, mul, sqrt, sub, where } from './elementwise.js';
import { iota, zeros } from './creation.js';
import { matmul } from './linalg.js';
import { mT, slice } from './movement.js';
import type { Tensor } from '../tensor.js';

function checkSquare(op: string, a: Tensor): number {
  if (a.rank !== 2 || a.shape[0] !== a.shape[1])
    throw new GrngError(op, `expects a square matrix, got ${fmtShape(a.shape)}`);
  return a.shape[0];
}

function checkRhs(op: string, d: number, b: Tensor): void {
  if (b.rank !== 2 || b.shape[0] !== d)
    throw new GrngError(op, `right-hand side must be [${d}, k], got ${fmtShape(b.shape)}`);
}

/** e_i as a [1, d] row (or [d, 1] column). */
function unit(i: number, d: number, column = false): Tensor {
  const ids = iota(column ? [d, 1] : [1, d], column ? 0 : 1);
  return where(ge(ids, i), where(ge(ids, i + 1), 0, 1), 0);
}

/**
 * The lower-triangular L with L Lᵀ = A for symmetric positive definite A (only the lower triangle
 * of A is read). A matrix that is not positive definite gives NaN pivots.
 */
export function cholesky(a: Tensor): Tensor {
  const d = checkSquare('cholesky', a);
  const rows = iota([d, 1], 0);
  let l = zeros([d, d]) as Tensor;
  for (let j = 0; j < d; j++) {
    // Column j of L is zero so far, so L·L[j, :]ᵀ sums over the columns before j only.
    const col = sub(slice(a, [0, j], [d, j + 1]), matmul(l, mT(slice(l, [j, 0], [j + 1, d]))));
    const pivot = sqrt(slice(col, [j, 0], [j + 1, 1]));
    l = add(l, matmul(where(ge(rows, j), div(col, pivot), 0), unit(j, d)));
  }
  return l;
}

/**
 * X with L X = B (`transpose`: Lᵀ X = B) for lower-triangular L, by forward (backward)
 * substitution.
 */
export function solveTriangular(
  l: Tensor,
  b: Tensor,
  options: { readonly transpose?: boolean } = {},
): Tensor {
  const d = checkSquare('solveTriangular', l);
  checkRhs('solveTriangular', d, b);
  const t = options.transpose === true ? mT(l) : l;
  let x = zeros([d, b.shape[1]]) as Tensor;
  const order = Array.from({ length: d }, (_, i) => (options.transpose === true ? d - 1 - i : i));
  for (const i of order) {
    // Rows of X not yet solved are zero, so the row product sums over the solved ones only.
    const row = slice(t, [i, 0], [i + 1, d]);
    const xi = div(
      sub(slice(b, [i, 0], [i + 1, b.shape[1]]), matmul(row, x)),
      slice(t, [i, i], [i + 1, i + 1]),
    );
    x = add(x, mul(unit(i, d, true), xi));
  }
  return x;
}

/** A⁻¹B for symmetric positive definite A, through its Cholesky factor (no inverse is formed). */
export function choleskySolve(a: Tensor, b: Tensor): Tensor {
  const l = cholesky(a);
  checkRhs('choleskySolve', a.shape[0], b);
  return solveTriangular(l, solveTriangular(l, b), { transpose: true });
}
