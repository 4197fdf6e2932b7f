import { GrngError } from '../../core/errors.js';
import { relu, reshape } from '../index.js';
import type { Tensor } from '../tensor.js';
import { asImages, conv2d, maxPool2d } from './conv.js';
import { childSeed } from './init.js';
import { dense, type DenseParams, type Model } from './layers.js';

export type CnnParams = {
  readonly convs: readonly DenseParams[];
  readonly hidden?: DenseParams;
  readonly head: DenseParams;
};

/**
 * A small convolutional classifier on NHWC images `image` = [H, W, C] (flat rows are reshaped):
 * per entry of `channels` a `kernel`×`kernel` convolution with 'same' padding, ReLU and 2×2 max
 * pooling; then an optional ReLU dense layer of `hidden` units and a linear head. H and W must
 * halve evenly once per stage.
 */
export function cnn(options: {
  image: readonly [number, number, number];
  channels?: readonly number[];
  kernel?: number;
  hidden?: number;
  classes: number;
}): Model<CnnParams> {
  const op = 'nn.cnn';
  const [h, w, c] = options.image;
  const channels = options.channels ?? [16, 32];
  const kernel = options.kernel ?? 3;
  if (!Number.isInteger(kernel) || kernel < 1 || kernel % 2 === 0)
    throw new GrngError(op, `kernel must be an odd positive integer, got ${String(kernel)}`);
  const scale = 2 ** channels.length;
  if (h % scale !== 0 || w % scale !== 0)
    throw new GrngError(
      op,
      `${channels.length} stages of 2×2 pooling need H and W divisible by ${scale}, got ${h}×${w}`,
    );
  const convs = channels.map((out, i) =>
    conv2d(i === 0 ? c : channels[i - 1], out, kernel, {
      padding: (kernel - 1) / 2,
      name: `conv${i}`,
    }),
  );
  const flat = (h / scale) * (w / scale) * (channels[channels.length - 1] ?? c);
  const units = options.hidden ?? 0;
  const hidden = units === 0 ? undefined : dense(flat, units, { name: 'hidden' });
  const head = dense(units === 0 ? flat : units, options.classes, { name: 'head' });
  return {
    init: (seed) => ({
      convs: convs.map((l, i) => l.init(childSeed(seed, i))),
      ...(hidden === undefined ? {} : { hidden: hidden.init(childSeed(seed, 50)) }),
      head: head.init(childSeed(seed, 51)),
    }),
    apply(params, x) {
      let y: Tensor = asImages(op, x, options.image);
      convs.forEach((conv, i) => (y = maxPool2d(relu(conv.apply(params.convs[i], y)), 2)));
      y = reshape(y, [y.shape[0], flat]);
      if (hidden !== undefined && params.hidden !== undefined)
        y = relu(hidden.apply(params.hidden, y));
      return head.apply(params.head, y);
    },
  };
}
