import { builder as b, DTYPES, shapeSize, type DType } from '../../core/ir/index.js';
import { fmtShape, GrngError } from '../../core/errors.js';
import { flattenNested, type NestedNumbers } from '../../core/nested-numbers.js';
import type { Shape } from '../shape-types.js';
import type { Tensor } from '../tensor.js';
import { nodeOf, wrap } from './operands.js';

function checkDType(op: string, dtype: DType): void {
  if (!DTYPES.includes(dtype))
    throw new GrngError(op, `unknown dtype ${String(dtype)}; use f32, i32 or bool`);
}

function checkDims(op: string, shape: Shape): void {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new GrngError(
      op,
      `shape ${Array.isArray(shape) ? fmtShape(shape) : String(shape)} must ` +
        `be an array of non-negative integers`,
    );
  }
}

/**
 * A named input of the traced program. Names starting with "%" are reserved for the
 * placeholders that transforms create.
 */
export function input<const S extends Shape>(
  name: string,
  shape: S,
  dtype: DType = 'f32',
): Tensor<[...S]> {
  if (typeof name !== 'string' || name.length === 0 || name.startsWith('%')) {
    throw new GrngError(
      'input',
      `name ${JSON.stringify(name)} must be a non-empty string not starting with "%"`,
    );
  }
  checkDims('input', shape);
  checkDType('input', dtype);
  return wrap(b.input(name, shape, dtype));
}

/** A tensor filled with `value`. */
export function full<const S extends Shape>(
  shape: S,
  value: number,
  dtype: DType = 'f32',
): Tensor<[...S]> {
  return filled('full', shape, value, dtype);
}

/** full, with errors naming `op` (zeros, ones, scalar: the function the caller called). */
function filled<const S extends Shape>(
  op: string,
  shape: S,
  value: number,
  dtype: DType,
): Tensor<[...S]> {
  checkDims(op, shape);
  checkDType(op, dtype);
  if (typeof value !== 'number')
    throw new GrngError(op, `value must be a number, got ${typeof value}`);
  return wrap(b.fill(value, shape, dtype));
}
export const zeros = <const S extends Shape>(shape: S, dtype: DType = 'f32'): Tensor<[...S]> =>
  filled('zeros', shape, 0, dtype);
export const ones = <const S extends Shape>(shape: S, dtype: DType = 'f32'): Tensor<[...S]> =>
  filled('ones', shape, 1, dtype);
export const zerosLike = <S extends Shape>(x: Tensor<S>): Tensor<S> =>
  wrap(b.zerosLike(nodeOf('zerosLike', x)));
export const onesLike = <S extends Shape>(x: Tensor<S>): Tensor<S> =>
  wrap(b.fillLike(1, nodeOf('onesLike', x)));
/** A scalar constant. */
export const scalar = (value: number, dtype: DType = 'f32'): Tensor<[]> =>
  filled('scalar', [], value, dtype);

/** Nested JS arrays (or a flat array/typed array plus `shape`) as a constant in the graph. */
export function constant(
  values: NestedNumbers | ArrayLike<number>,
  shape?: Shape,
  dtype: DType = 'f32',
): Tensor {
  checkDType('constant', dtype);
  const { data, shape: inferred } = flattenNested('constant', values);
  const target = shape ?? inferred;
  checkDims('constant', target);
  if (shapeSize(target) !== data.length) {
    throw new GrngError(
      'constant',
      `got ${data.length} values but shape ${fmtShape(target)} needs ${shapeSize(target)}`,
    );
  }
  return wrap(b.emit('constant', [], { shape: [...target], dtype, data: Float64Array.from(data) }));
}

/** 0, 1, 2, … along `axis` of `shape` (default: a vector of length n). */
export function iota(shape: Shape | number, axis = 0, dtype: DType = 'i32'): Tensor {
  const s = typeof shape === 'number' ? [shape] : [...shape];
  checkDims('iota', s);
  return wrap(b.iota(s, axis < 0 ? axis + s.length : axis, dtype));
}
