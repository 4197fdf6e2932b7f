// A dataset checked once, before training on it: sizes that agree, finite pixels and labels that
// name a class. A NaN pixel would otherwise surface as skipped steps (the step guard) and a label
// past the last class as a finite loss that means nothing.
import { GrngError } from '../../core/errors.js';
import type { ImageDataset, ImageSplit } from './image-dataset.js';

// Splits already checked (a comparison trains many runs on one dataset): each is scanned once.
const checked = new WeakSet<ImageSplit>();

/** A GrngError naming the first thing wrong with `data`, if anything is. */
export function checkDataset(op: string, data: ImageDataset): void {
  if (!Number.isInteger(data.classes) || data.classes < 1)
    throw new GrngError(
      op,
      `the dataset's classes must be a positive integer, got ${data.classes}`,
    );
  const splits: [string, ImageSplit | undefined][] = [
    ['train', data.train],
    ['test', data.test],
    ['validation', data.validation],
  ];
  for (const [name, split] of splits) {
    if (split === undefined || checked.has(split)) continue;
    checkSplit(op, name, split, data.classes);
    if (split.features !== data.train.features)
      throw new GrngError(
        op,
        `${name} images have ${split.features} features but train images ${data.train.features}`,
      );
    checked.add(split);
  }
}

function checkSplit(op: string, name: string, split: ImageSplit, classes: number): void {
  const { x, y, count, features } = split;
  if (!Number.isInteger(count) || count < 1 || !Number.isInteger(features) || features < 1)
    throw new GrngError(
      op,
      `the ${name} split needs positive integer count and features, got ${count} and ${features}`,
    );
  if (x.length !== count * features || y.length !== count)
    throw new GrngError(
      op,
      `the ${name} split says ${count} images of ${features} features, so x must hold ` +
        `${count * features} values and y ${count}; they hold ${x.length} and ${y.length}`,
    );
  for (let i = 0; i < x.length; i++)
    if (!Number.isFinite(x[i]))
      throw new GrngError(
        op,
        `${name} image ${Math.floor(i / features)}, feature ${i % features}, is ${x[i]}: ` +
          `inputs must be finite numbers`,
      );
  for (let n = 0; n < count; n++)
    if (!(y[n] >= 0 && y[n] < classes))
      throw new GrngError(
        op,
        `${name} label ${y[n]} (image ${n}) is not one of the dataset's ${classes} classes ` +
          `(0..${classes - 1})`,
      );
}
