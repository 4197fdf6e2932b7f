import { builder as b } from '../../core/ir/index.js';
import { GrngError } from '../../core/errors.js';
import type { Tensor } from '../tensor.js';
import { nodeOf, normalizeAxes, wrap } from './operands.js';

type Axis = number | readonly number[] | undefined;

function reduce(
  kind: 'sum' | 'max',
  x: Tensor,
  axis: Axis,
  keepdims: boolean,
  op: string = kind,
): Tensor {
  const node = nodeOf(op, x);
  const axes = normalizeAxes(op, node.shape, axis);
  const reduced = kind === 'sum' ? b.reduceSum(node, axes) : b.reduceMax(node, axes);
  return wrap(keepdims ? b.reshape(reduced, b.keptShape(node.shape, axes)) : reduced);
}

/** Sum over `axis` (one, several, or all when omitted). */
export function sum(x: Tensor<readonly number[]>): Tensor<[]>;
export function sum(x: Tensor, axis?: Axis, keepdims?: boolean): Tensor;
export function sum(x: Tensor, axis?: Axis, keepdims = false): Tensor {
  return reduce('sum', x, axis, keepdims);
}

/** Maximum over `axis`; the derivative is shared equally among tied maxima. */
export function max(x: Tensor<readonly number[]>): Tensor<[]>;
export function max(x: Tensor, axis?: Axis, keepdims?: boolean): Tensor;
export function max(x: Tensor, axis?: Axis, keepdims = false): Tensor {
  return reduce('max', x, axis, keepdims);
}

export function min(x: Tensor<readonly number[]>): Tensor<[]>;
export function min(x: Tensor, axis?: Axis, keepdims?: boolean): Tensor;
export function min(x: Tensor, axis?: Axis, keepdims = false): Tensor {
  return wrap(b.neg(reduce('max', wrap(b.neg(nodeOf('min', x))), axis, keepdims, 'min').node));
}

/** Arithmetic mean over `axis`. */
export function mean(x: Tensor<readonly number[]>): Tensor<[]>;
export function mean(x: Tensor, axis?: Axis, keepdims?: boolean): Tensor;
export function mean(x: Tensor, axis?: Axis, keepdims = false): Tensor {
  const node = nodeOf('mean', x);
  if (node.dtype !== 'f32')
    throw new GrngError('mean', `needs an f32 tensor, got ${node.dtype}; cast it first`);
  const axes = normalizeAxes('mean', node.shape, axis);
  const count = axes.reduce((n, a) => n * node.shape[a], 1);
  const total = reduce('sum', x, axes, keepdims, 'mean');
  return wrap(b.scale(total.node, 1 / count));
}
