import type { Shape } from '../ir/shape.js';

/**
 * Visits every index of `shape` in row-major order and returns, for each, the offset `base + Σ
 * index[i] * strides[i]`. Movement and reduction rules are all one such walk: gathers (broadcast,
 * permute, slice) use it over the output, scatters (pad, reduce) over the input.
 */
export function stridedOffsets(shape: Shape, strides: readonly number[], base = 0): Int32Array {
  let total = 1;
  for (const d of shape) total *= d;
  const out = new Int32Array(total);
  if (total === 0) return out;
  // Axes of size 1 never move the index: dropping them keeps the inner loop long.
  const axes = shape.flatMap((d, i) => (d === 1 ? [] : [i]));
  const dims = axes.map((i) => shape[i]);
  const steps = axes.map((i) => strides[i]);
  const rank = dims.length;
  const inner = rank === 0 ? 1 : dims[rank - 1];
  const step = rank === 0 ? 0 : steps[rank - 1];
  const index = new Array<number>(rank).fill(0);
  let offset = base;
  for (let k = 0; k < total; k += inner) {
    for (let j = 0; j < inner; j++) out[k + j] = offset + j * step;
    // the next row: carry through the outer axes
    for (let axis = rank - 2; axis >= 0; axis--) {
      index[axis]++;
      offset += steps[axis];
      if (index[axis] < dims[axis]) break;
      offset -= steps[axis] * dims[axis];
      index[axis] = 0;
    }
  }
  return out;
}
