// Nested JS arrays of numbers (what users write for small arrays), flattened row-major.
import { fmtShape, GrngError } from './errors.js';

/** A number or arbitrarily nested arrays of numbers, e.g. [[1, 2], [3, 4]]. */
export type NestedNumbers = number | readonly NestedNumbers[];

/** Flattens nested arrays row-major and infers their shape; ragged input is an error. */
export function flattenNested(
  op: string,
  values: NestedNumbers | ArrayLike<number>,
): { data: number[]; shape: number[] } {
  if (typeof values === 'number') return { data: [values], shape: [] };
  if (ArrayBuffer.isView(values))
    return {
      data: Array.from(values as ArrayLike<number>),
      shape: [(values as ArrayLike<number>).length],
    };
  if (!Array.isArray(values))
    throw new GrngError(
      op,
      `expected numbers, nested arrays of numbers or a typed array, got ${typeof values}`,
    );
  const shape: number[] = [];
  for (let v: unknown = values; Array.isArray(v); v = v[0]) shape.push(v.length);
  const data: number[] = [];
  const walk = (v: unknown, depth: number) => {
    if (depth === shape.length) {
      if (typeof v !== 'number')
        throw new GrngError(
          op,
          `ragged or non-numeric nested array at depth ${depth} (expected shape ` +
            `${fmtShape(shape)})`,
        );
      data.push(v);
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[depth]) {
      throw new GrngError(
        op,
        `ragged nested array: expected ${shape[depth]} entries at depth ` +
          `${depth} (shape ${fmtShape(shape)})`,
      );
    }
    for (const item of v) walk(item, depth + 1);
  };
  walk(values, 0);
  return { data, shape };
}
