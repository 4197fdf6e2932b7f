import { builder as b, broadcastShapes } from '../../core/ir/index.js';
import { fmtShape, GrngError } from '../../core/errors.js';
import type { MatmulCheck, MatmulShape, Shape } from '../shape-types.js';
import type { Tensor } from '../tensor.js';
import { broadcastNode, nodeOf, wrap } from './operands.js';
import { mul } from './elementwise.js';
import { sum } from './reduce.js';
import { expandDims } from './movement.js';
import { iota } from './creation.js';

/**
 * Matrix product with NumPy semantics: batch axes broadcast; a 1-D left operand is a row,
 * a 1-D right operand a column (and that axis is dropped from the result).
 */
export function matmul<A extends Shape, B extends Shape>(
  x: Tensor<A>,
  y: Tensor<B> & MatmulCheck<A, B>,
): Tensor<MatmulShape<A, B>> {
  return matmulAny(x as Tensor, y as Tensor) as Tensor<MatmulShape<A, B>>;
}

/** The untyped body of matmul (method sugar calls it too). */
export function matmulAny(x: Tensor, y: Tensor): Tensor {
  let p = nodeOf('matmul', x);
  let q = nodeOf('matmul', y);
  if (p.shape.length === 0 || q.shape.length === 0) {
    throw new GrngError(
      'matmul',
      `operands ${fmtShape(p.shape)} and ${fmtShape(q.shape)} must have rank ` +
        `≥ 1; use mul for scalars`,
    );
  }
  const rowVector = p.shape.length === 1;
  const colVector = q.shape.length === 1;
  if (rowVector) p = b.reshape(p, [1, p.shape[0]]);
  if (colVector) q = b.reshape(q, [q.shape[0], 1]);
  const batch = broadcastShapes('matmul', p.shape.slice(0, -2), q.shape.slice(0, -2));
  if (p.shape[p.shape.length - 1] !== q.shape[q.shape.length - 2]) {
    throw new GrngError(
      'matmul',
      `inner dimensions differ: ${fmtShape(x.shape)} has ` +
        `${p.shape[p.shape.length - 1]} columns but ${fmtShape(y.shape)} has ` +
        `${q.shape[q.shape.length - 2]} rows; transpose one operand or fix the ` +
        `sizes`,
    );
  }
  p = broadcastNode(p, [...batch, ...p.shape.slice(-2)]);
  q = broadcastNode(q, [...batch, ...q.shape.slice(-2)]);
  let out = b.matmul(p, q);
  const shape = [...out.shape];
  if (colVector) shape.splice(shape.length - 1, 1);
  if (rowVector) shape.splice(shape.length - (colVector ? 1 : 2), 1);
  out = b.reshape(out, shape);
  return wrap(out);
}

/** Outer product of two vectors: [m] × [n] → [m, n]. */
export function outer(u: Tensor, v: Tensor): Tensor {
  if (u.rank !== 1 || v.rank !== 1)
    throw new GrngError(
      'outer',
      `needs two vectors, got ${fmtShape(u.shape)} and ${fmtShape(v.shape)}`,
    );
  return mul(expandDims(u, 1), expandDims(v, 0));
}

/** The n×n identity (or n×m with ones on the main diagonal). */
export function eye(n: number, m = n, dtype: 'f32' | 'i32' = 'f32'): Tensor {
  for (const [name, d] of [
    ['n', n],
    ['m', m],
  ] as const)
    if (!Number.isInteger(d) || d < 0)
      throw new GrngError('eye', `${name} must be a non-negative integer, got ${String(d)}`);
  if (dtype !== 'f32' && dtype !== 'i32')
    throw new GrngError('eye', `dtype must be f32 or i32, got ${String(dtype)}`);
  const rows = iota([n, m], 0);
  const cols = iota([n, m], 1);
  return wrap(b.cast(b.eq(rows.node, cols.node), dtype));
}

/** Sum of the diagonal of a square matrix (or of the last two axes, batched). */
export function trace(x: Tensor): Tensor {
  const r = x.rank;
  if (r < 2 || x.shape[r - 1] !== x.shape[r - 2])
    throw new GrngError(
      'trace',
      `needs square matrices in the last two axes, got ${fmtShape(x.shape)}`,
    );
  const n = x.shape[r - 1];
  return sum(mul(x, eye(n, n, x.dtype === 'i32' ? 'i32' : 'f32')), [r - 2, r - 1]);
}
