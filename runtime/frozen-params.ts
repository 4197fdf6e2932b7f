// The trainable and the frozen parts of a model's parameters (a LoRA model's base, a pretrained
// trunk): a training step differentiates, updates and keeps optimizer state for the first only.
// The frozen part is a program input like the batch, never donated, so it stays bit-identical.
import { GrngError } from '../core/errors.js';
import { joinTrees, leafPaths, splitTree, underAny } from '../core/tree-paths.js';
import { flattenTree, type Tree } from '../core/tree.js';
import type { Model } from '../dsl/nn/layers.js';
import { withoutTapsOf } from '../dsl/nn/taps.js';
import type { ParamTree } from '../dsl/optimizer.js';
import { isTensor, type Tensor } from '../dsl/tensor.js';

/**
 * `params` split by path prefixes (`trainable`, e.g. ['lora', 'base.head']); `frozen` is undefined
 * when every parameter trains. Each prefix must name at least one parameter.
 */
export function splitTrainable<L>(
  op: string,
  params: Tree<L>,
  isLeaf: (x: unknown) => x is L,
  trainable: readonly string[] | undefined,
): { trainable: Tree<L>; frozen: Tree<L> | undefined } {
  if (trainable === undefined) return { trainable: params, frozen: undefined };
  if (!Array.isArray(trainable) || !trainable.every((p) => typeof p === 'string'))
    throw new GrngError(
      op,
      `trainable must be a list of parameter paths, got ${String(trainable)}`,
    );
  const paths = leafPaths(op, params, isLeaf, 'an array');
  const shown = () =>
    paths.length > 12 ? `${paths.slice(0, 12).join(', ')}, …` : paths.join(', ');
  for (const prefix of trainable)
    if (!paths.some((p) => underAny([prefix], p)))
      throw new GrngError(op, `trainable '${prefix}' names no parameter; the paths are ${shown()}`);
  if (trainable.length === 0) throw new GrngError(op, 'trainable is empty: nothing would train');
  const { kept, rest } = splitTree(op, params, isLeaf, (p) => underAny(trainable, p));
  const frozenCount = flattenTree(op, rest, isLeaf, 'an array').leaves.length;
  return { trainable: kept, frozen: frozenCount === 0 ? undefined : rest };
}

/**
 * `model` over its trainable parameters, the frozen ones closed over: the frozen layers record no
 * curvature taps, so optimizers see only the layers they update.
 */
export function withFrozen(
  model: Model<never>,
  frozen: Tree<Tensor> | undefined,
): Model<ParamTree> {
  const inner = model as unknown as Model<ParamTree>;
  if (frozen === undefined) return inner;
  const weights = new Set(
    flattenTree('frozen', frozen, isTensor, 'a Tensor').leaves.map((t) => t.node),
  );
  return {
    init: inner.init,
    apply: (params, x) =>
      withoutTapsOf(weights, () =>
        inner.apply(joinTrees('frozen', params, frozen, isTensor) as ParamTree, x),
      ),
  };
}
