import { GrngError } from '../../core/errors.js';
import { cast, ge, max, mean, mul, oneHot, sum } from '../index.js';
import type { Tensor } from '../tensor.js';

/** Fraction of rows whose labelled class has the largest logit (ties count as correct). */
export function accuracy(logits: Tensor, labels: Tensor): Tensor {
  if (logits.rank !== 2 || labels.dtype !== 'i32' || labels.rank !== 1) {
    throw new GrngError(
      'accuracy',
      `needs logits [batch, classes] and i32 labels [batch], got ` +
        `[${logits.shape.join(', ')}] and ${labels.dtype} ` +
        `[${labels.shape.join(', ')}]`,
    );
  }
  const picked = sum(mul(oneHot(labels, logits.shape[1]), logits), -1);
  return mean(cast(ge(picked, max(logits, -1)), 'f32'));
}
