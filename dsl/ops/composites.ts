import { builder as b } from '../../core/ir/index.js';
import { fmtShape, GrngError } from '../../core/errors.js';
import {
  cast,
  eq,
  exp,
  log,
  mul,
  neg,
  sqrt,
  stopGradient,
  sub,
  abs,
  square,
} from './elementwise.js';
import { iota } from './creation.js';
import { expandDims } from './movement.js';
import { max, mean, sum } from './reduce.js';
import { normalizeAxes, wrap } from './operands.js';
import { isTensor, type Tensor } from '../tensor.js';

/** log Σ exp(x) along `axis`, shifted by the (constant) maximum so it never overflows. */
export function logsumexp(x: Tensor, axis = -1, keepdims = false): Tensor {
  return logsumexpAs('logsumexp', x, axis, keepdims);
}

// Errors name the function the user called (softmax, logSoftmax or logsumexp).
function logsumexpAs(op: string, x: Tensor, axis: number, keepdims: boolean): Tensor {
  checkFloat(op, x);
  [axis] = normalizeAxes(op, x.shape, axis);
  const m = stopGradient(max(x, axis, true));
  const s = sum(exp(sub(x, m)), axis, true);
  const out = wrap(b.add(log(s).node, m.node));
  return keepdims ? out : sum(out, axis); // summing a size-1 axis drops it
}

export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return sub(x, logsumexpAs('logSoftmax', x, axis, true));
}

export function softmax(x: Tensor, axis = -1): Tensor {
  return exp(sub(x, logsumexpAs('softmax', x, axis, true)));
}

function checkFloat(op: string, x: Tensor): void {
  if (!isTensor(x)) throw new GrngError(op, `expected a Tensor, got ${typeof x}`);
  if (x.dtype !== 'f32')
    throw new GrngError(
      op,
      `needs an f32 tensor, got ${x.dtype}${fmtShape(x.shape)}; cast it first`,
    );
}

/** One-hot rows: labels [..] (i32) → [.., classes] (f32). */
export function oneHot(labels: Tensor, classes: number): Tensor {
  if (labels.dtype !== 'i32')
    throw new GrngError(
      'oneHot',
      `labels must be i32, got ${labels.dtype} ${fmtShape(labels.shape)}`,
    );
  if (!Number.isInteger(classes) || classes < 1)
    throw new GrngError('oneHot', `classes must be a positive integer, got ${String(classes)}`);
  const ids = iota([...labels.shape, classes], labels.rank);
  return cast(eq(ids, expandDims(labels, -1)), 'f32');
}

/**
 * Mean cross-entropy of `logits` [B, C] against integer labels [B] (i32) or target
 * distributions [B, C] (f32, e.g. one-hot).
 */
export function crossEntropy(logits: Tensor, labels: Tensor): Tensor {
  if (logits.rank < 1)
    throw new GrngError(
      'crossEntropy',
      `logits must have a class axis, got ${fmtShape(logits.shape)}`,
    );
  const classes = logits.shape[logits.rank - 1];
  const batchShape = logits.shape.slice(0, -1);
  let targets: Tensor;
  if (labels.dtype === 'i32') {
    if (labels.rank !== batchShape.length || !labels.shape.every((d, i) => d === batchShape[i])) {
      throw new GrngError(
        'crossEntropy',
        `integer labels ${fmtShape(labels.shape)} must have shape ` +
          `${fmtShape(batchShape)} for logits ${fmtShape(logits.shape)}`,
      );
    }
    targets = oneHot(labels, classes);
  } else if (labels.dtype === 'f32') {
    if (labels.rank !== logits.rank || !labels.shape.every((d, i) => d === logits.shape[i])) {
      throw new GrngError(
        'crossEntropy',
        `target distributions ${fmtShape(labels.shape)} must have the logits' ` +
          `shape ${fmtShape(logits.shape)}`,
      );
    }
    targets = labels;
  } else {
    throw new GrngError(
      'crossEntropy',
      `labels must be i32 class ids or f32 distributions, got ${labels.dtype}`,
    );
  }
  return neg(mean(sum(mul(targets, logSoftmax(logits)), -1)));
}

/**
 * Mean squared error over every element, mean((outputs − targets)²): PyTorch's MSELoss and optax's
 * squared_error(…).mean(). `targets` (f32) must have the outputs' shape.
 */
export function meanSquaredError(outputs: Tensor, targets: Tensor): Tensor {
  if (targets.dtype !== 'f32')
    throw new GrngError('meanSquaredError', `targets must be f32, got ${targets.dtype}`);
  if (targets.rank !== outputs.rank || !targets.shape.every((d, i) => d === outputs.shape[i]))
    throw new GrngError(
      'meanSquaredError',
      `targets ${fmtShape(targets.shape)} must have the outputs' shape ${fmtShape(outputs.shape)}`,
    );
  return mean(square(sub(outputs, targets)));
}

/** Σ x² over all elements. */
export function sqnorm(x: Tensor): Tensor {
  return sum(square(x));
}

/** Squared global Euclidean norm over a list of tensors (e.g. all gradients). */
export function globalSqnorm(xs: readonly Tensor[]): Tensor {
  if (!Array.isArray(xs) || !xs.every(isTensor))
    throw new GrngError(
      'globalSqnorm',
      `expected an array of Tensors, got ${Array.isArray(xs) ? 'an array with other values' : typeof xs}`,
    );
  if (xs.length === 0) throw new GrngError('globalSqnorm', 'needs at least one tensor');
  return xs.map(sqnorm).reduce((acc, t) => wrap(b.add(acc.node, t.node)));
}

/** Vector p-norm over all elements: 2 (Euclidean/Frobenius, default), 1, or Infinity. */
export function norm(x: Tensor, ord: 1 | 2 | typeof Infinity = 2): Tensor {
  if (ord === 2) return sqrt(sqnorm(x));
  if (ord === 1) return sum(abs(x));
  if (ord === Infinity) return max(abs(x));
  throw new GrngError('norm', `ord ${String(ord)} is not supported; use 1, 2 or Infinity`);
}
