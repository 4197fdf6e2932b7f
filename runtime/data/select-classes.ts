// A dataset restricted to some of its classes, relabelled 0..k−1 in the order given: how a
// transfer experiment pretrains on some classes and fine-tunes on others it never saw (Fashion-
// MNIST's clothing against its footwear and bags, say) with data that is all offline.
import { GrngError } from '../../core/errors.js';
import type { ImageDataset, ImageSplit } from './image-dataset.js';
import { subset } from './validation.js';

/** `dataset` with only the images of `classes` (each split), class classes[i] relabelled i. */
export function selectClasses(dataset: ImageDataset, classes: readonly number[]): ImageDataset {
  if (classes.length === 0) throw new GrngError('selectClasses', 'give at least one class');
  for (const c of classes)
    if (!Number.isInteger(c) || c < 0 || c >= dataset.classes)
      throw new GrngError(
        'selectClasses',
        `class ${c} is not one of the dataset's classes 0..${dataset.classes - 1}`,
      );
  if (new Set(classes).size !== classes.length)
    throw new GrngError('selectClasses', `classes must not repeat, got ${classes.join(',')}`);
  const label = new Map(classes.map((c, i) => [c, i]));
  const pick = (split: ImageSplit): ImageSplit => {
    const rows = Array.from(split.y.keys()).filter((n) => label.has(split.y[n]));
    const kept = subset(split, rows);
    return { ...kept, y: kept.y.map((c) => label.get(c) as number) };
  };
  return {
    ...dataset,
    train: pick(dataset.train),
    test: pick(dataset.test),
    ...(dataset.validation === undefined ? {} : { validation: pick(dataset.validation) }),
    classes: classes.length,
  };
}
