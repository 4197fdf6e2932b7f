import type { Shape } from '../ir/shape.js';

/**
 * Visits every index of `shape` in row-major order and returns, for each, the offset `base + Σ
 * index[i] * strides[i]`. Movement and reduction rules are all one such walk: gathers (broadcast,
 * permute, slice) use it over the output, scatters (pad, reduce) over the input.
 */
export function stridedOffsets(shape: Shape, strides: readonly number[], base = 0): Int32Array {
  const rank = shape.length;
  let total = 1;
  for (const d of shape) total *= d;
  const out = new Int32Array(total);
  if (total === 0) return out;
  const index = new Array<number>(rank).fill(0);
  let offset = base;
  for (let k = 0; k < total; k++) {
    out[k] = offset;
    for (let axis = rank - 1; axis >= 0; axis--) {
      index[axis]++;
      offset += strides[axis];
      if (index[axis] < shape[axis]) break;
      offset -= strides[axis] * shape[axis];
      index[axis] = 0;
    }
  }
  return out;
}
