// grng's public API (README.md, "Using it as a library"; layers: docs/architecture.md).
export * from './dsl/index.js';
export { GrngError } from './core/errors.js';
export type { DType } from './core/ir/dtype.js';
export { array, HostArray } from './core/host-array.js';
export { createDevice, type DeviceOptions } from './runtime/create-device.js';
export type { Device, DeviceArray } from './runtime/device.js';
export { jit, type ArrayLeaf, type JitOptions, type Materialized } from './runtime/jit.js';
export { WebGpuDevice } from './runtime/webgpu-device.js';
export {
  defineOptimizer,
  treeMap,
  outside,
  type Optimizer,
  type OptimizerDefinition,
  type StepContext,
  type LossOfParams,
  type HyperDefaults,
  type HyperSettings,
  type HyperTensors,
  type ParamTree,
} from './dsl/optimizer.js';
export {
  sgd,
  adam,
  adamw,
  kfac,
  ring,
  reng,
  rkalman,
  sophia,
  partition,
  chain,
  clipByGlobalNorm,
  addWeightDecay,
  defineTransform,
  scheduled,
  lrMultiplier,
  type Transform,
  type ScheduleSettings,
} from './optimizers/index.js';
export {
  compileOptimizer,
  type CompiledOptimizer,
  type CompileOptimizerOptions,
} from './runtime/compile-optimizer.js';
export {
  nn,
  recordTaps,
  type Model,
  type DenseParams,
  type DenseTap,
  type LoraParams,
} from './dsl/nn/index.js';
export {
  compileTrainStep,
  type TrainStep,
  type TrainStepOptions,
  type Metrics,
  type MetricName,
} from './runtime/train-step.js';
export {
  kroneckerFactors,
  layerGradient,
  ema,
  newtonSchulz,
  guardedInverse,
  inverseResidual,
  newtonSchulzIterations,
  powerIteration,
  tapGeometry,
  type GuardedInverse,
  type WeightSharing,
} from './dsl/curvature/index.js';
export type { LayerTap } from './dsl/optimizer.js';
