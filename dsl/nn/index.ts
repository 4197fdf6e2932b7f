// Neural-network building blocks: models as pure (init, apply) pairs whose dense layers record
// curvature taps.
import { crossEntropy, relu, sigmoid, softmax, tanh } from '../index.js';
import { dense, mlp } from './layers.js';
import { lora } from './lora.js';
import { accuracy } from './metrics.js';

export type { Model, DenseParams, ActivationName } from './layers.js';
export type { LoraParams } from './lora.js';
export { recordTaps, type DenseTap } from './taps.js';

export const nn = {
  dense,
  mlp,
  lora,
  relu,
  tanh,
  sigmoid,
  softmax,
  crossEntropy,
  accuracy,
} as const;
