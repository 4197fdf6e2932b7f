import { GrngError } from '../../core/errors.js';
import type { ImageDataset, ImageSplit } from './image-dataset.js';

/**
 * Standardizes pixels to zero mean and unit variance with the training split's statistics (one
 * mean and one deviation over all pixels, as torchvision's Normalize((μ,), (σ,)) for grey images),
 * applied alike to every split so nothing about validation or test leaks into training.
 */
export function standardize(
  dataset: ImageDataset,
): ImageDataset & { readonly mean: number; readonly std: number } {
  // The statistics come from train: without images they would be NaN, and every split with them.
  const train = (dataset as Partial<ImageDataset> | null)?.train;
  if (train === undefined || !(train.x instanceof Float32Array) || train.x.length === 0)
    throw new GrngError(
      'standardize',
      `needs a dataset whose train split has images (a Float32Array x), got ` +
        `${train === undefined ? 'no train split' : `x of ${train.x?.length ?? 0} values`}`,
    );
  for (const [name, split] of [
    ['test', dataset.test],
    ['validation', dataset.validation],
  ] as const)
    if (name === 'test' || split !== undefined)
      if (!(split?.x instanceof Float32Array))
        throw new GrngError('standardize', `the ${name} split needs images (a Float32Array x)`);
  const x = train.x;
  let sum = 0;
  for (const v of x) sum += v;
  const mean = sum / x.length;
  let squares = 0;
  for (const v of x) squares += (v - mean) ** 2;
  const std = Math.sqrt(squares / x.length) || 1; // a constant image set stays as it is, shifted
  const scale = (split: ImageSplit): ImageSplit => ({
    ...split,
    x: Float32Array.from(split.x, (v) => (v - mean) / std),
  });
  return {
    ...dataset,
    train: scale(dataset.train),
    test: scale(dataset.test),
    ...(dataset.validation === undefined ? {} : { validation: scale(dataset.validation) }),
    mean,
    std,
  };
}
