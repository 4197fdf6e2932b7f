// grng/testing: helpers for users who check their own differentiable code and optimizers:
// checkGradient (autodiff vs finite differences), checkOptimizer (a compiled optimizer vs a
// float64 reference, property-tested with fast-check; checkCurvatureOptimizer for those that read
// the dense layers' taps, with random tap data; checkTrainingOptimizer for those that need a model:
// the loss, Hessian-vector products, the output, sampled labels), optimizerMatrix (convergence,
// state, setHyper and resume checks), the float64 model engine and PRNG that references use, and
// the fast-check arbitraries they are built from.
import { GrngError } from './core/errors.js';
import type { Tensor } from './dsl/tensor.js';
import { grad } from './dsl/transforms.js';
import { CpuDevice } from './runtime/cpu-device.js';
import { HostArray } from './core/host-array.js';
import { jit } from './runtime/jit.js';

export {
  checkCurvatureOptimizer,
  type CheckCurvatureOptions,
  type CurvatureReferenceStep,
  type DenseValues,
  type LayerSize,
  type TapValues,
} from './testing/check-curvature.js';
export {
  checkTrainingOptimizer,
  type CheckTrainingOptions,
  type TrainingReferenceContext,
  type TrainingReferenceStep,
  type TrainingTap,
} from './testing/check-training-optimizer.js';
export {
  layerValueShapes,
  referencePass,
  type ReferenceActivation,
  type ReferenceDense,
  type ReferenceLayer,
  type ReferenceLayerValues,
  type ReferenceLora,
  type ReferencePass,
  type ReferenceTap,
  type ReferenceTarget,
} from './testing/reference-model.js';
export { Tape, type Adjoints, type Scalar } from './testing/reference-tape.js';
export {
  tokenLeaves,
  tokenPass,
  type TokenBlock,
  type TokenModel,
  type TokenPass,
  type TokenTap,
} from './testing/reference-transformer.js';
export type {
  HiddenActivation,
  TrainingCaseOptions,
  TrainingModelKind,
} from './testing/training-case.js';
export type { BatchLabels, TrainingTask } from './testing/training-targets.js';
/**
 * grng's counter-based PRNG in plain JavaScript (the DSL's names: prngKey, foldIn, normal,
 * categorical, …), so a reference recomputes a compiled step's random draws from ctx.key.
 */
export * as referenceRandom from './testing/reference-random.js';
export {
  checkOptimizer,
  DEFAULT_SEED,
  type CheckOptimizerOptions,
  type CheckOptimizerResult,
  type OptimizerCase,
  type ReferenceStep,
} from './testing/check-optimizer.js';
export {
  optimizerMatrix,
  type CheckReport,
  type ConvergenceReport,
  type OptimizerMatrixOptions,
  type OptimizerMatrixReport,
  type QuadraticOptions,
  type ResumeReport,
  type RosenbrockOptions,
  type SetHyperOptions,
  type SetHyperReport,
  type StructureReport,
} from './testing/optimizer-matrix.js';
export {
  batch,
  leafValues,
  paramLeaves,
  paramShapes,
  paramTree,
  shape,
  spdMatrix,
  value,
  type Batch,
  type BatchOptions,
  type ParamLeaves,
  type ParamTreeCase,
  type ShapeOptions,
  type SpdOptions,
  type ValueOptions,
} from './testing/arbitraries.js';
export { scaledError } from './testing/compare.js';
export { trainingStepNeeds } from './testing/gradient-only.js';
export { hostTree, treeOfLeaves, type TreeStructure } from './testing/trees.js';

export interface GradientCheckOptions {
  /** Which argument to differentiate (default 0). */
  readonly argnum?: number;
  /**
   * Central-difference step (default 1e-5: truncation h²·f'''/6 and rounding ε·|f|/h balance near
   * 1e-10 in float64).
   */
  readonly step?: number;
  /** Allowed error |ad − fd| ≤ atol + rtol·|fd| (defaults 1e-7 and 1e-6). */
  readonly atol?: number;
  readonly rtol?: number;
}

export interface GradientCheckResult {
  readonly autodiff: Float64Array;
  readonly finiteDifference: Float64Array;
  readonly maxAbsError: number;
}

/**
 * Compares grad(f) with central finite differences of f, both in float64 on the reference
 * interpreter. Throws a GrngError naming the worst element when they disagree.
 */
export async function checkGradient(
  f: (...args: Tensor[]) => Tensor,
  args: readonly HostArray[],
  options: GradientCheckOptions = {},
): Promise<GradientCheckResult> {
  const { argnum = 0, step = 1e-5, atol = 1e-7, rtol = 1e-6 } = options;
  // A zero, negative or NaN step or tolerance would report a mismatch that is not there.
  if (!(step > 0) || !Number.isFinite(step))
    throw new GrngError('checkGradient', `options.step must be a finite number > 0, got ${step}`);
  for (const [name, t] of [
    ['atol', atol],
    ['rtol', rtol],
  ] as const)
    if (!(t >= 0))
      throw new GrngError('checkGradient', `options.${name} must be a number ≥ 0, got ${t}`);
  if (!Array.isArray(args))
    throw new GrngError('checkGradient', `args must be an array of HostArrays, got ${typeof args}`);
  if (!(args[argnum] instanceof HostArray))
    throw new GrngError(
      'checkGradient',
      `argument ${argnum} must be a HostArray made with array()`,
    );
  const device = new CpuDevice('f64');
  const value = jit(f, { device });
  const gradient = jit(grad(f, argnum), { device });
  const autodiff = await (await gradient(...args)).read();
  const x = args[argnum];
  const finiteDifference = new Float64Array(x.data.length);
  const at = async (i: number, delta: number) => {
    const data = Float64Array.from(x.data);
    data[i] += delta;
    const moved = args.map((a, k) => (k === argnum ? new HostArray(data, x.shape, x.dtype) : a));
    return (await (await value(...moved)).read())[0];
  };
  for (let i = 0; i < finiteDifference.length; i++)
    finiteDifference[i] = ((await at(i, step)) - (await at(i, -step))) / (2 * step);
  let maxAbsError = 0;
  let worst = -1;
  for (let i = 0; i < autodiff.length; i++) {
    const err = Math.abs(autodiff[i] - finiteDifference[i]);
    maxAbsError = Math.max(maxAbsError, err);
    if (!(err <= atol + rtol * Math.abs(finiteDifference[i])) && worst < 0) worst = i;
  }
  if (worst >= 0) {
    throw new GrngError(
      'checkGradient',
      `element ${worst}: autodiff ${autodiff[worst]} vs finite difference ` +
        `${finiteDifference[worst]} (atol ${atol}, rtol ${rtol}); check the ` +
        `function's derivative rules or its smoothness there`,
    );
  }
  return { autodiff, finiteDifference, maxAbsError };
}
