// Argument checks for the curvature building blocks: they are public (grng's index), so a
// JavaScript caller can pass anything, and a wrong shape would otherwise surface as an error of
// some op deep inside (a matmul, a reshape) that names none of the caller's arguments.
import { fmtShape, GrngError } from '../../core/errors.js';
import { isTensor, type Tensor } from '../tensor.js';

/** `x` when it is a tensor; otherwise a GrngError naming `op` and `what`. */
export function expectTensor(op: string, what: string, x: unknown): Tensor {
  if (!isTensor(x))
    throw new GrngError(op, `${what} must be a Tensor, got ${x === null ? 'null' : typeof x}`);
  return x;
}

/** The size n of `a` when it is an n×n f32 matrix. */
export function expectSquare(op: string, what: string, a: unknown): number {
  const t = expectTensor(op, what, a);
  if (t.rank !== 2 || t.shape[0] !== t.shape[1] || t.dtype !== 'f32')
    throw new GrngError(
      op,
      `${what} must be a square f32 matrix [n, n], got ${t.dtype}${fmtShape(t.shape)}`,
    );
  return t.shape[0];
}

/** `n` when it is a non-negative integer (a count of steps or iterations). */
export function expectCount(op: string, what: string, n: unknown): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0)
    throw new GrngError(op, `${what} must be a non-negative integer, got ${String(n)}`);
  return n;
}
