import { builder as b, shapeSize } from '../../core/ir/index.js';
import { fmtShape, GrngError } from '../../core/errors.js';
import type { Reverse, Shape } from '../shape-types.js';
import type { Tensor } from '../tensor.js';
import { broadcastNode, nodeOf, normalizeAxes, wrap } from './operands.js';

/** Same elements, new shape; one axis may be -1 (inferred). */
export function reshape<const T extends Shape>(x: Tensor, shape: T): Tensor<[...T]> {
  const node = nodeOf('reshape', x);
  const known = shape.filter((d) => d !== -1);
  const holes = shape.length - known.length;
  let resolved: number[] = [...shape];
  if (holes > 1)
    throw new GrngError(
      'reshape',
      `target ${fmtShape(shape)} has more than one -1; at most one axis can be inferred`,
    );
  if (holes === 1) {
    const rest = shapeSize(known);
    if (rest === 0 || shapeSize(node.shape) % rest !== 0) {
      throw new GrngError(
        'reshape',
        `cannot infer the -1 in ${fmtShape(shape)} for ${fmtShape(node.shape)} ` +
          `(${shapeSize(node.shape)} elements)`,
      );
    }
    resolved = shape.map((d) => (d === -1 ? shapeSize(node.shape) / rest : d));
  }
  return wrap(b.reshape(node, resolved));
}

/** Permutes axes; without `perm`, reverses them (NumPy's transpose). */
export function transpose<S extends Shape>(
  x: Tensor<S>,
  perm?: readonly number[],
): Tensor<Reverse<S>> {
  const node = nodeOf('transpose', x);
  const rank = node.shape.length;
  const p = perm ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  const normalized = p.map((a) => (a < 0 ? a + rank : a));
  if (
    p.length !== rank ||
    new Set(normalized).size !== rank ||
    !normalized.every((a) => Number.isInteger(a) && a >= 0 && a < rank)
  ) {
    throw new GrngError(
      'transpose',
      `perm [${p.join(', ')}] must list each of the ${rank} axes of ${fmtShape(node.shape)} once`,
    );
  }
  return wrap(b.permute(node, normalized));
}

/** Swaps the last two axes (batched matrix transpose). */
export function mT(x: Tensor): Tensor {
  const node = nodeOf('mT', x);
  if (node.shape.length < 2)
    throw new GrngError('mT', `needs a tensor of rank ≥ 2, got ${fmtShape(node.shape)}`);
  return wrap(b.transposeLast(node));
}

/** Broadcasts to `shape` with NumPy rules. */
export function broadcastTo<const T extends Shape>(x: Tensor, shape: T): Tensor<[...T]> {
  const node = nodeOf('broadcastTo', x);
  const lead = shape.length - node.shape.length;
  if (lead < 0 || !node.shape.every((d, i) => d === 1 || d === shape[lead + i])) {
    throw new GrngError(
      'broadcastTo',
      `cannot broadcast ${fmtShape(node.shape)} to ${fmtShape(shape)}; each ` +
        `axis must match or be 1`,
    );
  }
  return wrap(broadcastNode(node, shape));
}

export function flatten(x: Tensor): Tensor<[number]> {
  return wrap(b.reshape(nodeOf('flatten', x), [x.size]));
}

/** Inserts an axis of size 1 at `axis`. */
export function expandDims(x: Tensor, axis: number): Tensor {
  const shape = [...x.shape];
  const [a] = normalizeAxes('expandDims', x.shape, axis, x.rank + 1);
  shape.splice(a, 0, 1);
  return wrap(b.reshape(x.node, shape));
}

/** Removes axes of size 1 (all of them, or those named). */
export function squeeze(x: Tensor, axis?: number | readonly number[]): Tensor {
  const axes =
    axis === undefined
      ? x.shape.flatMap((d, i) => (d === 1 ? [i] : []))
      : normalizeAxes('squeeze', x.shape, axis);
  for (const a of axes) {
    if (x.shape[a] !== 1)
      throw new GrngError(
        'squeeze',
        `axis ${a} of ${fmtShape(x.shape)} has size ${x.shape[a]}, not 1`,
      );
  }
  return wrap(
    b.reshape(
      x.node,
      x.shape.filter((_, i) => !axes.includes(i)),
    ),
  );
}

/**
 * The elements `start ≤ i < end` along each axis (Python-style negative indices allowed);
 * `starts`/`ends` may be shorter than the rank (remaining axes are taken whole).
 */
export function slice(x: Tensor, starts: readonly number[], ends?: readonly number[]): Tensor {
  const shape = x.shape;
  if (starts.length > shape.length || (ends !== undefined && ends.length > shape.length)) {
    throw new GrngError(
      'slice',
      `got ${starts.length} starts for a tensor of rank ${shape.length} ${fmtShape(shape)}`,
    );
  }
  const fix = (v: number, d: number) => (v < 0 ? v + d : v);
  const s = shape.map((d, i) => fix(starts[i] ?? 0, d));
  const e = shape.map((d, i) => fix(ends?.[i] ?? d, d));
  return wrap(b.slice(x.node, s, e));
}

/** Zero padding: `lo[i]` elements before and `hi[i]` after axis i. */
export function pad(x: Tensor, lo: readonly number[], hi: readonly number[]): Tensor {
  const node = nodeOf('pad', x);
  for (const [name, widths] of [
    ['lo', lo],
    ['hi', hi],
  ] as const) {
    // Checked here: the builder returns x itself for all-zero widths, of any length.
    if (
      !Array.isArray(widths) ||
      widths.length !== node.shape.length ||
      !widths.every((p) => Number.isInteger(p) && p >= 0)
    )
      throw new GrngError(
        'pad',
        `${name} must give one non-negative integer per axis of ${fmtShape(node.shape)}, got ` +
          `${Array.isArray(widths) ? fmtShape(widths) : String(widths)}; use slice to crop`,
      );
  }
  return wrap(b.pad(node, lo, hi));
}

/** Joins tensors along `axis` (built from pads and adds, so it differentiates like them). */
export function concat(xs: readonly Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new GrngError('concat', 'needs at least one tensor');
  const first = xs[0];
  const [a] = normalizeAxes('concat', first.shape, axis);
  for (const x of xs) {
    if (
      x.rank !== first.rank ||
      x.dtype !== first.dtype ||
      !x.shape.every((d, i) => i === a || d === first.shape[i])
    ) {
      throw new GrngError(
        'concat',
        `all tensors must share dtype and every axis but ${a}: got ` +
          `${first.dtype}${fmtShape(first.shape)} and ` +
          `${x.dtype}${fmtShape(x.shape)}`,
      );
    }
  }
  // Pieces are joined by adding zero-padded copies, which needs a numeric dtype.
  if (first.dtype === 'bool')
    throw new GrngError(
      'concat',
      'cannot join bool tensors; cast them to i32 first and compare afterwards',
    );
  const total = xs.reduce((n, x) => n + x.shape[a], 0);
  let offset = 0;
  const placed = xs.map((x) => {
    const lo = x.shape.map((_, i) => (i === a ? offset : 0));
    const hi = x.shape.map((_, i) => (i === a ? total - offset - x.shape[a] : 0));
    offset += x.shape[a];
    return b.pad(x.node, lo, hi);
  });
  return wrap(placed.reduce((acc, p) => b.add(acc, p)));
}
