import { DTYPES, shapeSize, type DType, type Shape } from './ir/index.js';
import { fmtShape, GrngError } from './errors.js';
import { flattenNested, type NestedNumbers } from './nested-numbers.js';

/** Numbers on the host, ready to be passed to a compiled function. */
export class HostArray {
  readonly data: Float64Array;
  readonly shape: readonly number[];
  readonly dtype: DType;

  /** Checks only what is O(rank) to check (array() checks the values too). */
  constructor(data: Float64Array, shape: Shape, dtype: DType) {
    if (!(data instanceof Float64Array))
      throw new GrngError(
        'HostArray',
        `data must be a Float64Array, got ${describeValue(data)}; array(values, shape) converts`,
      );
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0))
      throw new GrngError(
        'HostArray',
        `shape must be an array of non-negative integers, got ${Array.isArray(shape) ? fmtShape(shape) : String(shape)}`,
      );
    if (shapeSize(shape) !== data.length)
      throw new GrngError(
        'HostArray',
        `got ${data.length} values but shape ${fmtShape(shape)} needs ${shapeSize(shape)}`,
      );
    if (!DTYPES.includes(dtype))
      throw new GrngError('HostArray', `unknown dtype ${String(dtype)}; use f32, i32 or bool`);
    this.data = data;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
  }

  toString(): string {
    return `HostArray(${this.dtype}${fmtShape(this.shape)})`;
  }
}

function describeValue(x: unknown): string {
  if (x === null || x === undefined) return String(x);
  return typeof x === 'object' ? (x.constructor?.name ?? 'an object') : typeof x;
}

/** Whether `x` is a host array (a tree leaf test for flattenTree and friends). */
export const isHostArray = (x: unknown): x is HostArray => x instanceof HostArray;

/**
 * A host array from nested JS arrays, a number, or a flat (typed) array plus `shape`.
 * The dtype defaults to i32 for an Int32Array, bool for a Uint8Array of 0/1 with dtype given,
 * and f32 otherwise. Values are copied, so later changes to `values` do not leak in.
 */
export function array(
  values: NestedNumbers | ArrayLike<number>,
  shape?: Shape,
  dtype?: DType,
): HostArray {
  const resolvedDType: DType = dtype ?? (values instanceof Int32Array ? 'i32' : 'f32');
  if (!DTYPES.includes(resolvedDType))
    throw new GrngError('array', `unknown dtype ${String(dtype)}; use f32, i32 or bool`);
  if (
    typeof values === 'object' &&
    values !== null &&
    !Array.isArray(values) &&
    typeof (values as ArrayLike<number>).length !== 'number'
  ) {
    throw new GrngError(
      'array',
      'expected a number, nested arrays of numbers or a typed array, got an ' +
        'object without a length',
    );
  }
  // Typed arrays of f32 data skip the per-value checks (a batch of images is ~10⁵ values).
  if (
    (values instanceof Float32Array || values instanceof Float64Array) &&
    resolvedDType === 'f32'
  ) {
    const target = shape ?? [values.length];
    if (!target.every((d) => Number.isInteger(d) && d >= 0))
      throw new GrngError('array', `shape ${fmtShape(target)} must hold non-negative integers`);
    if (shapeSize(target) !== values.length)
      throw new GrngError(
        'array',
        `got ${values.length} values but shape ${fmtShape(target)} needs ${shapeSize(target)}`,
      );
    return new HostArray(Float64Array.from(values), target, 'f32');
  }
  const flat =
    ArrayBuffer.isView(values) || (typeof values === 'object' && !Array.isArray(values))
      ? {
          data: Array.from(values as ArrayLike<number>),
          shape: [(values as ArrayLike<number>).length],
        }
      : shape !== undefined && Array.isArray(values) && values.every((v) => typeof v === 'number')
        ? { data: values as number[], shape: [values.length] }
        : flattenNested('array', values);
  const target = shape ?? flat.shape;
  if (!target.every((d) => Number.isInteger(d) && d >= 0))
    throw new GrngError('array', `shape ${fmtShape(target)} must hold non-negative integers`);
  if (shapeSize(target) !== flat.data.length) {
    throw new GrngError(
      'array',
      `got ${flat.data.length} values but shape ${fmtShape(target)} needs ${shapeSize(target)}`,
    );
  }
  const data = Float64Array.from(flat.data, (v) => convert(v, resolvedDType));
  return new HostArray(data, target, resolvedDType);
}

function convert(v: number, dtype: DType): number {
  if (typeof v !== 'number')
    throw new GrngError('array', `values must be numbers, got ${typeof v}`);
  if (dtype === 'i32' && !(Number.isInteger(v) && v >= -2147483648 && v <= 2147483647)) {
    throw new GrngError('array', `value ${v} is not an i32; round it or use dtype f32`);
  }
  if (dtype === 'bool' && v !== 0 && v !== 1)
    throw new GrngError('array', `value ${v} is not a bool (0 or 1)`);
  return dtype === 'f32' ? v : v | 0; // integers have no −0
}
