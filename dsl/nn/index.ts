// Neural-network building blocks: models as pure (init, apply) pairs whose dense layers record
// curvature taps.
import { crossEntropy, gelu, relu, sigmoid, softmax, tanh } from '../index.js';
import { multiHeadAttention, scaledDotProductAttention } from './attention.js';
import { cnn } from './cnn.js';
import { avgPool2d, conv2d, globalAvgPool, maxPool2d, patches } from './conv.js';
import { embedding } from './embedding.js';
import { dense, mlp } from './layers.js';
import { loraDense } from './lora.js';
import { lora } from './lora-model.js';
import { accuracy } from './metrics.js';
import { layerNorm } from './norm.js';
import { encoderBlock, textTransformer, vit } from './transformer.js';

export type { Model, DenseParams, ActivationName } from './layers.js';
export type { LoraParams } from './lora.js';
export type { LoraModel, LoraModelParams, LoraOptions } from './lora-model.js';
export type { AttentionParams } from './attention.js';
export type { CnnParams } from './cnn.js';
export type { Conv2dOptions } from './conv.js';
export type { EmbeddingParams } from './embedding.js';
export type { LayerNormParams } from './norm.js';
export type {
  EncoderBlockParams,
  Pooling,
  TextTransformerParams,
  VitParams,
} from './transformer.js';
export { recordTaps, type DenseTap } from './taps.js';

export const nn = {
  dense,
  mlp,
  lora,
  loraDense,
  conv2d,
  patches,
  maxPool2d,
  avgPool2d,
  globalAvgPool,
  layerNorm,
  embedding,
  multiHeadAttention,
  scaledDotProductAttention,
  encoderBlock,
  vit,
  cnn,
  textTransformer,
  relu,
  tanh,
  sigmoid,
  gelu,
  softmax,
  crossEntropy,
  accuracy,
} as const;
