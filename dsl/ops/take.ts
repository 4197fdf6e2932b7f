import { builder as b, type Node } from '../../core/ir/index.js';
import { fmtShape, GrngError } from '../../core/errors.js';
import type { Shape } from '../shape-types.js';
import { isTensor, type Tensor } from '../tensor.js';
import { wrap } from './operands.js';

type IsTuple<S extends Shape> = number extends S['length'] ? false : true;

/** The shape of take(table, ids) where both are literal tuples: ids' axes, then the rows'. */
export type TakeShape<T extends Shape, I extends Shape> = T extends readonly [
  number,
  ...infer R extends number[],
]
  ? IsTuple<I> extends true
    ? [...I, ...R]
    : Shape
  : Shape;

/**
 * Rows of `table` [V, ...rest] picked by integer `ids` [...idx] (i32, or one id as a number):
 * the result is [...idx, ...rest], row ids[p] at position p (an embedding lookup; NumPy's and JAX's
 * take along axis 0). An id outside [0, V) reads the row it clamps to, row 0 or row V − 1 (JAX's
 * behaviour on GPUs), on every device. The derivative with respect to the table adds each
 * position's cotangent into its row (a scatter-add); the ids, being integers, have none.
 */
export function take<T extends Shape, I extends Shape>(
  table: Tensor<T>,
  ids: Tensor<I> | number,
): Tensor<TakeShape<T, I>> {
  if (!isTensor(table))
    throw new GrngError('take', `the table must be a Tensor, got ${describe(table)}`);
  if (table.rank === 0 || table.shape[0] === 0) {
    throw new GrngError(
      'take',
      `the table ${table.dtype}${fmtShape(table.shape)} needs a row axis (axis 0) with at least ` +
        `one row; reshape a scalar to [1] first`,
    );
  }
  let idsNode: Node;
  if (typeof ids === 'number') {
    if (!Number.isInteger(ids) || ids < -2147483648 || ids > 2147483647)
      throw new GrngError('take', `an id given as a number must be an i32 integer, got ${ids}`);
    idsNode = b.fill(ids, [], 'i32');
  } else if (isTensor(ids)) {
    if (ids.dtype !== 'i32') {
      throw new GrngError(
        'take',
        `ids must be i32, got ${ids.dtype}${fmtShape(ids.shape)}; convert them with ` +
          `cast(ids, 'i32') (f32 values truncate toward zero)`,
      );
    }
    idsNode = ids.node;
  } else throw new GrngError('take', `ids must be an i32 Tensor or a number, got ${describe(ids)}`);
  return wrap<TakeShape<T, I>>(b.emit('gather', [table.node, idsNode], {}));
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'a JS array (wrap it with constant(values, shape, "i32"))';
  return typeof x;
}
