import { GrngError } from '../../core/errors.js';
import { shuffled } from './shuffle.js';
import type { ImageDataset, ImageSplit } from './image-dataset.js';

/** The rows `indices` of a split, as a new split. */
export function subset(split: ImageSplit, indices: ArrayLike<number>): ImageSplit {
  const f = split.features;
  // A row past the end would be copied as zeros with label 0, silently.
  for (let n = 0; n < indices.length; n++) {
    const k = indices[n];
    if (!Number.isInteger(k) || k < 0 || k >= split.count)
      throw new GrngError(
        'subset',
        `index ${k} (entry ${n}) is not a row of a split of ${split.count} rows ` +
          `(0..${split.count - 1})`,
      );
  }
  const x = new Float32Array(indices.length * f);
  const y = new Int32Array(indices.length);
  for (let n = 0; n < indices.length; n++) {
    const k = indices[n];
    x.set(split.x.subarray(k * f, (k + 1) * f), n * f);
    y[n] = split.y[k];
  }
  return { x, y, count: indices.length, features: f };
}

/**
 * Holds `count` training images out as a validation split, chosen by a seeded shuffle (the same
 * seed always holds out the same images, so a resumed run sees the same split). The test split is
 * untouched; model selection should look at validation, reporting at test.
 */
export function holdOutValidation(dataset: ImageDataset, count: number, seed = 0): ImageDataset {
  if (!Number.isInteger(count) || count < 1 || count >= dataset.train.count) {
    throw new GrngError(
      'data',
      `the validation split must hold between 1 and ` +
        `${dataset.train.count - 1} training images, got ${count}`,
    );
  }
  if (dataset.validation !== undefined)
    throw new GrngError('data', 'this dataset already has a validation split');
  // Sorted within each part, so the kept training images stay in file order.
  const order = shuffled(dataset.train.count, seed ^ 0x5eed);
  const held = Int32Array.from(order.subarray(0, count)).sort();
  const kept = Int32Array.from(order.subarray(count)).sort();
  return {
    ...dataset,
    train: subset(dataset.train, kept),
    validation: subset(dataset.train, held),
  };
}

/**
 * The first `count` training images of a seeded shuffle (in file order): a smaller training set,
 * e.g. for few-shot fine-tuning. Validation and test splits are untouched.
 */
export function limitTraining(dataset: ImageDataset, count: number, seed = 0): ImageDataset {
  if (!Number.isInteger(count) || count < 1)
    throw new GrngError('data', `the training limit must be a positive integer, got ${count}`);
  if (count >= dataset.train.count) return dataset;
  const kept = Int32Array.from(
    shuffled(dataset.train.count, seed ^ 0x11a1).subarray(0, count),
  ).sort();
  return { ...dataset, train: subset(dataset.train, kept) };
}
