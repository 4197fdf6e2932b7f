import { builder as b } from '../../core/ir/index.js';
import { GrngError } from '../../core/errors.js';
import type { Tensor } from '../tensor.js';
import { nodeOf, wrap } from './operands.js';

type Pair = number | readonly [number, number];

const pair = (what: string, v: Pair): [number, number] => {
  const [a, c] = typeof v === 'number' ? [v, v] : v;
  if (!Number.isInteger(a) || !Number.isInteger(c))
    throw new GrngError(
      'windows',
      `${what} must be an integer or a pair of integers, got ${String(v)}`,
    );
  return [a, c];
};

/**
 * The sliding k_h×k_w windows of NHWC images x [B, H, W, C]: [B, H_out, W_out, C, k_h, k_w] with
 * H_out = ⌊(H + 2·pad_h − k_h)/s_h⌋ + 1 (likewise W), zeros where a window reaches past the image.
 * A view (one read per element); its gradient adds each window back where it was read.
 */
export function windows(
  x: Tensor,
  window: Pair,
  options: { stride?: Pair; padding?: Pair } = {},
): Tensor {
  return wrap(
    b.emit('windows', [nodeOf('windows', x)], {
      window: pair('window', window),
      stride: pair('stride', options.stride ?? 1),
      padding: pair('padding', options.padding ?? 0),
    }),
  );
}
