// A batch checked against the model before a training step is compiled or queued: a trace of the
// model and loss alone (no gradients, no optimizer) finds a batch that does not fit, and says so
// in one short sentence naming the batch or the parameter path at fault, instead of failing deep
// inside the step's trace with its dozens of arguments. Class labels given as host arrays are
// checked against the model's output width on every batch (a few hundred integers).
import { fmtShape, GrngError } from '../core/errors.js';
import { HostArray } from '../core/host-array.js';
import { leafPaths } from '../core/tree-paths.js';
import { flattenTree, type Tree } from '../core/tree.js';
import type { DType } from '../core/ir/dtype.js';
import { input } from '../dsl/index.js';
import type { Model } from '../dsl/nn/layers.js';
import type { ParamTree } from '../dsl/optimizer.js';
import type { Tensor } from '../dsl/tensor.js';
import { isArrayLeaf, type ArrayLeaf } from './jit.js';

type Shaped = { readonly shape: readonly number[]; readonly dtype: DType };

const shapedOf = (leaf: ArrayLeaf): Shaped =>
  typeof leaf === 'number' ? { shape: [], dtype: 'f32' } : leaf;

const described = (leaf: ArrayLeaf): string => {
  const { shape, dtype } = shapedOf(leaf);
  return `${dtype}${fmtShape(shape)}`;
};

/** Input tensors shaped like `tree`'s arrays. */
function symbolic(tree: Tree<ArrayLeaf>, prefix: string): Tree<Tensor> {
  const { leaves, rebuild } = flattenTree('compileTrainStep', tree, isArrayLeaf, 'an array');
  return rebuild(
    leaves.map((leaf, i) => {
      const { shape, dtype } = shapedOf(leaf);
      return input(`${prefix}${i}`, shape, dtype);
    }),
  ) as Tree<Tensor>;
}

/** Paths where `given` and the model's own parameters differ in shape (at most a few). */
function parameterMismatches(model: Model<never>, given: Tree<ArrayLeaf>): string[] {
  let made: Tree<ArrayLeaf>;
  try {
    made = (model as Model<ParamTree>).init(0) as Tree<ArrayLeaf>;
  } catch {
    return [];
  }
  const op = 'compileTrainStep';
  const shapesByPath = (tree: Tree<ArrayLeaf>) => {
    const leaves = flattenTree(op, tree, isArrayLeaf, 'an array').leaves;
    const paths = leafPaths(op, tree, isArrayLeaf, 'an array');
    return new Map(paths.map((p, i) => [p, leaves[i]]));
  };
  let expected: Map<string, ArrayLeaf>;
  let actual: Map<string, ArrayLeaf>;
  try {
    [expected, actual] = [shapesByPath(made), shapesByPath(given)];
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const [path, want] of expected) {
    const got = actual.get(path);
    if (got === undefined) out.push(`${path} is missing (the model makes ${described(want)})`);
    else if (fmtShape(shapedOf(got).shape) !== fmtShape(shapedOf(want).shape))
      out.push(`${path} is ${described(got)}, the model makes ${described(want)}`);
  }
  for (const path of actual.keys())
    if (!expected.has(path)) out.push(`${path} is not a parameter of the model`);
  return out;
}

/**
 * The model's output shape on a batch like `x`, `y` (the loss traced too), or a GrngError saying
 * which parameter paths or which part of the batch do not fit. `params` is the whole tree the
 * model reads (frozen parameters included).
 */
export function checkBatch(
  op: string,
  model: Model<never>,
  loss: (output: Tensor, y: Tensor) => Tensor,
  params: Tree<ArrayLeaf>,
  batch: { readonly x: ArrayLeaf; readonly y: ArrayLeaf },
): readonly number[] {
  const [x, y] = [shapedOf(batch.x), shapedOf(batch.y)];
  try {
    const output = (model as Model<ParamTree>).apply(
      symbolic(params, 'param_check_') as ParamTree,
      input('x_check', x.shape, x.dtype),
    );
    loss(output, input('y_check', y.shape, y.dtype));
    return output.shape;
  } catch (error) {
    if (!(error instanceof GrngError)) throw error;
    const mismatches = parameterMismatches(model, params);
    if (mismatches.length > 0)
      throw new GrngError(
        op,
        `the parameters do not fit the model: ${mismatches.slice(0, 3).join('; ')}` +
          (mismatches.length > 3 ? ` (and ${mismatches.length - 3} more)` : ''),
        mismatches.join('\n'),
      );
    throw new GrngError(
      op,
      `the batch (x ${described(batch.x)}, y ${described(batch.y)}) does not fit the model ` +
        `and loss: ${error.message}`,
      error.details,
    );
  }
}

/**
 * Class labels (i32 host arrays) must lie in [0, C) for a model with C outputs: a label past the
 * last class would otherwise pick no logit and give a finite, meaningless loss.
 */
export function checkLabels(op: string, y: ArrayLeaf, output: readonly number[]): void {
  if (!(y instanceof HostArray) || y.dtype !== 'i32' || output.length < 2) return;
  const classes = output[output.length - 1];
  const at = y.data.findIndex((label) => !(label >= 0 && label < classes));
  if (at >= 0)
    throw new GrngError(
      op,
      `label ${y.data[at]} (position ${at} of the batch's y) is not a class of this model: ` +
        `it has ${classes} outputs, so labels must lie in 0..${classes - 1}`,
    );
}
