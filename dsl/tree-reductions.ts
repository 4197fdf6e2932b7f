// Reductions over a whole tree of tensors (parameters, gradients, state): a loop over the leaves
// in flattenTree's fixed order, so an optimizer needs no recursion over its trees (which
// `grng compile` refuses: a recursion has no trip count known at trace time).
import { GrngError } from '../core/errors.js';
import { flattenTree, type Tree } from '../core/tree.js';
import { sqnorm } from './ops/composites.js';
import { scalar } from './ops/creation.js';
import { add, sqrt } from './ops/elementwise.js';
import { sum } from './ops/reduce.js';
import { isTensor, type Tensor } from './tensor.js';

/** A tree's tensors, arrays by index and objects by sorted key (the order treeMap walks). */
export function treeLeaves(tree: Tree<Tensor>): Tensor[] {
  return flattenTree('treeLeaves', tree, isTensor, 'a Tensor').leaves;
}

/** Σ over every leaf of the sum of its entries: a scalar (0 for a tree without leaves). */
export function treeSum(tree: Tree<Tensor>): Tensor<[]> {
  return addAll('treeSum', tree, sum);
}

/**
 * The global Euclidean norm √(Σ over every leaf of its squared entries), as gradient clipping
 * uses (0 for a tree without leaves).
 */
export function globalNorm(tree: Tree<Tensor>): Tensor<[]> {
  return sqrt(addAll('globalNorm', tree, sqnorm));
}

/** Σ of `reduce` over the leaves, which must be f32 (sums of other dtypes would not add up). */
function addAll(op: string, tree: Tree<Tensor>, reduce: (x: Tensor) => Tensor): Tensor<[]> {
  const { leaves, paths } = flattenTree(op, tree, isTensor, 'a Tensor');
  let total = scalar(0);
  leaves.forEach((leaf, i) => {
    if (leaf.dtype !== 'f32')
      throw new GrngError(
        op,
        `the leaf ${paths[i] === '' ? '' : `at ${paths[i]} `}is ${leaf.dtype}, but ${op} ` +
          `adds f32 tensors: cast it (cast(x, 'f32')) or leave it out of the tree`,
      );
    total = i === 0 ? (reduce(leaf) as Tensor<[]>) : add(total, reduce(leaf) as Tensor<[]>);
  });
  return total;
}
