// The non-finite step guard. A training step whose loss, gradients, updated parameters or updated
// optimizer state hold an ∞ or a NaN would poison every later step (a NaN parameter makes every
// later loss NaN), so the step decides on the device, without a host round trip, whether to keep
// its results, and leaves parameters and state exactly as they were when it does not. It also says
// which quantity failed first, as one number the step's metrics carry back.
import { GrngError } from '../core/errors.js';
import { leafPaths } from '../core/tree-paths.js';
import { eq, isFinite, max, maximum, mul, reshape, where } from '../dsl/index.js';
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
 * the n (so the largest mark is the first failure, and a max finds it). Each quantity costs one
 * reduction; the marks are combined by a balanced tree of maxima, so its depth grows as log n
 * (a kernel's expression nesting is bounded).
 */
export function firstNonFinite(quantities: readonly Checked[]): Tensor {
  if (quantities.length === 0) throw new GrngError('firstNonFinite', 'nothing to check');
  const n = quantities.length;
  let marks = quantities.map(({ value }, i) => {
    const bad = where(isFinite(value), 0, 1);
    return mul(value.rank === 0 ? bad : max(bad), n - i);
  });
  while (marks.length > 1) {
    const next: Tensor[] = [];
    for (let i = 0; i < marks.length; i += 2)
      next.push(i + 1 < marks.length ? maximum(marks[i], marks[i + 1]) : marks[i]);
    marks = next;
  }
  // A reduction of one element: stored once (a reduction is a kernel's result), so the select of
  // every parameter reads one number instead of recomputing the tree of maxima.
  return max(reshape(marks[0], [1]));
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
