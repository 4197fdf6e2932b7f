// Dense Cholesky factorization and triangular solves for small SPD systems (R-Kalman's innovation
// covariance, whose size is the observation dimension): the `cholesky` and `triangularSolve`
// primitives (core/ops/solvers.ts), each a kernel of its own on WebGPU; meant for d up to a few
// hundred.
import { GrngError } from '../../core/errors.js';
import { fmtShape } from '../../core/errors.js';
import { builder as b } from '../../core/ir/index.js';
import type { Tensor } from '../tensor.js';
import { nodeOf, wrap } from './operands.js';

function checkSquare(op: string, a: Tensor): number {
  if (a.rank !== 2 || a.shape[0] !== a.shape[1])
    throw new GrngError(op, `expects a square matrix, got ${fmtShape(a.shape)}`);
  return a.shape[0];
}

function checkRhs(op: string, d: number, rhs: Tensor): void {
  if (rhs.rank !== 2 || rhs.shape[0] !== d)
    throw new GrngError(op, `right-hand side must be [${d}, k], got ${fmtShape(rhs.shape)}`);
}

/**
 * The lower-triangular L with L Lᵀ = A for symmetric positive definite A (only the lower triangle
 * of A is read). A matrix that is not positive definite gives NaN pivots.
 */
export function cholesky(a: Tensor): Tensor {
  checkSquare('cholesky', a);
  return wrap(b.emit('cholesky', [nodeOf('cholesky', a)], {}));
}

/**
 * X with L X = B (`transpose`: Lᵀ X = B) for lower-triangular L (only its lower triangle is
 * read), by forward (backward) substitution.
 */
export function solveTriangular(
  l: Tensor,
  rhs: Tensor,
  options: { readonly transpose?: boolean } = {},
): Tensor {
  const d = checkSquare('solveTriangular', l);
  checkRhs('solveTriangular', d, rhs);
  const transpose = options.transpose === true;
  return wrap(
    b.emit('triangularSolve', [nodeOf('solveTriangular', l), nodeOf('solveTriangular', rhs)], {
      transpose,
    }),
  );
}

/** A⁻¹B for symmetric positive definite A, through its Cholesky factor (no inverse is formed). */
export function choleskySolve(a: Tensor, b: Tensor): Tensor {
  const l = cholesky(a);
  checkRhs('choleskySolve', a.shape[0], b);
  return solveTriangular(l, solveTriangular(l, b), { transpose: true });
}
