import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { GrngError } from '../../core/errors.js';
import { readIdx } from './idx.js';

/** Images as rows of floats in [0, 1] (N × pixels) and their class labels. */
export interface ImageSplit {
  readonly x: Float32Array;
  readonly y: Int32Array;
  readonly count: number;
  readonly features: number;
}

export interface ImageDataset {
  readonly train: ImageSplit;
  readonly test: ImageSplit;
  /** Training images held out for model selection (holdOutValidation). */
  readonly validation?: ImageSplit;
  readonly classes: number;
  /** Each image's shape [height, width, channels] (rows are flattened in this order). */
  readonly image?: readonly [number, number, number];
}

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

const FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
};

/**
 * An image-classification dataset in the four-file IDX layout of MNIST (gzip or raw), e.g.
 * Fashion-MNIST from the Debian package `dataset-fashion-mnist`. Pixels are scaled to [0, 1].
 */
export function loadIdxImages(dir: string = FASHION_MNIST_DIR): ImageDataset {
  const path = (name: string) => {
    for (const candidate of [join(dir, `${name}.gz`), join(dir, name)])
      if (existsSync(candidate)) return candidate;
    throw new GrngError(
      'data',
      `${join(dir, name)}[.gz] not found. For Fashion-MNIST install the ` +
        `Debian package: sudo apt-get install dataset-fashion-mnist (or pass ` +
        `another directory)`,
    );
  };
  let image: [number, number, number] | undefined;
  const split = (images: string, labels: string): ImageSplit => {
    const xi = readIdx(path(images));
    const yi = readIdx(path(labels));
    if (xi.shape.length < 2 || yi.shape.length !== 1 || xi.shape[0] !== yi.shape[0]) {
      throw new GrngError(
        'data',
        `${images} [${xi.shape.join(', ')}] and ${labels} ` +
          `[${yi.shape.join(', ')}] do not describe the same images`,
      );
    }
    const features = xi.shape.slice(1).reduce((a, d) => a * d, 1);
    // [count, H, W] or [count, H, W, C]; other layouts are rows of features, not images.
    const [h, w = 1, c = 1, ...more] = xi.shape.slice(1);
    image = more.length === 0 ? [h, w, c] : undefined;
    return {
      x: Float32Array.from(xi.data, (v) => v / 255),
      y: Int32Array.from(yi.data),
      count: xi.shape[0],
      features,
    };
  };
  const train = split(FILES.trainImages, FILES.trainLabels);
  const test = split(FILES.testImages, FILES.testLabels);
  if (train.features !== test.features)
    throw new GrngError(
      'data',
      `train images have ${train.features} pixels but test images ${test.features}`,
    );
  let classes = 0;
  for (const labels of [train.y, test.y])
    for (const c of labels) classes = Math.max(classes, c + 1);
  return { train, test, classes, image };
}
