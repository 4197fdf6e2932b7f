// Data loading for Node (reads files): IDX image datasets such as Fashion-MNIST.
export { readIdx, type IdxArray } from './idx.js';
export {
  loadIdxImages,
  FASHION_MNIST_DIR,
  type ImageDataset,
  type ImageSplit,
} from './image-dataset.js';
export { holdOutValidation, subset } from './validation.js';
export { standardize } from './normalize.js';
export { selectClasses } from './select-classes.js';
export { shuffled } from './shuffle.js';
