// The non-finite step guard. A training step whose loss, gradients, updated parameters or updated
// optimizer state hold an ∞ or a NaN would poison every later step (a NaN parameter makes every
// later loss NaN), so the step decides on the device, without a host round trip, whether to keep
// its results, and leaves parameters and state exactly as they were when it does not. It also says
// which quantity failed first, as one number the step's metrics carry back.
import { GrngError } from '../core/errors.js';
import { LARGE_ARRAY } from '../compiler/kernels/large-array.js';
import { leafPaths } from '../core/tree-paths.js';
import { eq, isFinite, max, maximum, pad, reshape, where } from '../dsl/index.js';
import { isTensor, type Tensor } from '../dsl/tensor.js';
import type { Tree } from '../core/tree.js';
import { flattenTree } from '../core/tree.js';

/** A quantity the guard checks, and how a message names it. */
export interface Checked {
  readonly name: string;
  readonly value: Tensor;
}

/** The f32 leaves of `tree` with names `describe(path)` ('the gradient of layers.1.w'). */
export function checkedLeaves(
  op: string,
  tree: Tree<Tensor>,
  describe: (path: string) => string,
): Checked[] {
  const leaves = flattenTree(op, tree, isTensor, 'a Tensor').leaves;
  const paths = leafPaths(op, tree, isTensor, 'a Tensor');
  return leaves.flatMap((value, i) =>
    value.dtype === 'f32' ? [{ name: describe(paths[i]), value }] : [],
  );
}

/**
 * An f32 scalar: 0 when every quantity is finite, else n − i with i the first non-finite one of
 * the n (so the largest mark is the first failure, and a max finds it). Quantities of one size (a
 * parameter's gradient, its update and its Adam moments) are marked element by element in one
 * expression and reduced together, so the check costs a few kernels whatever the model's depth
 * (large ones excepted, see below);
 * maxima are combined as balanced trees, so expressions nest as log n (a kernel's nesting is
 * bounded).
 */
export function firstNonFinite(quantities: readonly Checked[]): Tensor {
  if (quantities.length === 0) throw new GrngError('firstNonFinite', 'nothing to check');
  const n = quantities.length;
  const bySize = new Map<number, Tensor[]>();
  const alone: Tensor[] = [];
  quantities.forEach(({ value }, i) => {
    const marked = reshape(where(isFinite(value), 0, n - i), [value.size]);
    // Large ones are reduced each on its own: the compiler then stores and tests them one at a
    // time (compiler/kernels/checked-alone.ts), so the copies are not all held at once.
    if (value.size >= LARGE_ARRAY) alone.push(largest(marked));
    else bySize.set(value.size, [...(bySize.get(value.size) ?? []), marked]);
  });
  // Largest first: the compiler orders kernels depth first from the first mark, and a small
  // quantity can depend on part of every layer's work (a flag that each layer's Newton–Schulz
  // iteration converged); visited first, it would start every layer's iteration before any ends
  // and hold all their iterates at once.
  const groups = [...bySize.entries()].sort(([a], [b]) => b - a).map(([, group]) => group);
  const marks = [...alone, ...groups.map((group) => largest(balancedMax(group)))];
  // A reduction of one element: stored once (a reduction is a kernel's result), so the select of
  // every parameter reads one number instead of recomputing the tree of maxima.
  return max(reshape(balancedMax(marks), [1]));
}

/** The elementwise maximum of `xs` (equal shapes), as a balanced tree. */
function balancedMax(xs: readonly Tensor[]): Tensor {
  let level = [...xs];
  while (level.length > 1) {
    const next: Tensor[] = [];
    for (let i = 0; i < level.length; i += 2)
      next.push(i + 1 < level.length ? maximum(level[i], level[i + 1]) : level[i]);
    level = next;
  }
  return level[0];
}

/** Elements each invocation of a partial maximum reads: under the 1024 of a wide reduction. */
const CHUNK = 1000;

/**
 * The maximum of `x` as a scalar, in stages of CHUNK elements per output: reductions that short
 * are ordinary kernels, which the compiler packs side by side in one dispatch for all arrays,
 * where a single full reduction per array would be a dispatch of its own each (a wide reduction).
 */
function largest(x: Tensor): Tensor {
  let flat: Tensor = reshape(x, [x.size]);
  while (flat.size > CHUNK) {
    const rows = Math.ceil(flat.size / CHUNK);
    // Zeros pad the last chunk: 0 is the mark of a finite value.
    const padded = pad(flat, [0], [rows * CHUNK - flat.size]);
    flat = max(reshape(padded, [rows, CHUNK]), 1);
  }
  return max(flat);
}

/** `next` where `mark` says every quantity was finite, else `previous` (leaf by leaf). */
export function keepIfFinite(mark: Tensor, next: Tensor, previous: Tensor): Tensor {
  return where(eq(mark, 0), next, previous);
}

/** The quantity a mark read back from the device names; undefined for 0 (all finite). */
export function markedQuantity(quantities: readonly string[], mark: number): string | undefined {
  if (mark === 0) return undefined;
  const i = quantities.length - mark;
  return quantities[i] ?? `quantity ${i}`;
}
