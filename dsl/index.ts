// The DSL: tensors, ops, composites and autodiff transforms.
export { Tensor, isTensor, type Operand } from './tensor.js';
export type { Shape, Broadcast, MatmulShape, ShapeError } from './shape-types.js';
export {
  input,
  constant,
  full,
  zeros,
  ones,
  zerosLike,
  onesLike,
  scalar,
  iota,
} from './ops/creation.js';
export type { NestedNumbers } from '../core/nested-numbers.js';
export {
  add,
  sub,
  mul,
  div,
  pow,
  maximum,
  minimum,
  lt,
  le,
  gt,
  ge,
  eq,
  ne,
  neg,
  exp,
  log,
  sqrt,
  rsqrt,
  recip,
  sin,
  cos,
  tanh,
  erf,
  abs,
  sign,
  floor,
  isFinite,
  stopGradient,
  cast,
  square,
  relu,
  sigmoid,
  where,
} from './ops/elementwise.js';
export { gelu, type GeluApproximation } from './ops/activations.js';
export { bitAnd, bitOr, bitXor, shiftLeft, shiftRight } from './ops/bitwise.js';
export {
  prngKey,
  split,
  foldIn,
  randomBits,
  uniform,
  normal,
  rademacher,
  bernoulli,
  randint,
  categorical,
  threefry2x32,
  type Key,
} from './random.js';
export {
  reshape,
  transpose,
  mT,
  broadcastTo,
  flatten,
  expandDims,
  squeeze,
  slice,
  pad,
  concat,
} from './ops/movement.js';
export { take } from './ops/take.js';
export { windows } from './ops/windows.js';
export { sum, max, min, mean } from './ops/reduce.js';
export { matmul, outer, eye, trace } from './ops/linalg.js';
export { cholesky, solveTriangular, choleskySolve } from './ops/cholesky.js';
export {
  logsumexp,
  logSoftmax,
  softmax,
  oneHot,
  crossEntropy,
  meanSquaredError,
  sqnorm,
  globalSqnorm,
  norm,
} from './ops/composites.js';
export { grad, valueAndGrad, vjp, jvp, hvp, type TensorTree } from './transforms.js';
export { treeLeaves, treeSum, globalNorm } from './tree-reductions.js';
// Re-exported for optimizer files, which import the DSL only (docs/architecture.md, Layers).
export { GrngError } from '../core/errors.js';
export { flattenTree, mapTrees, type Tree } from '../core/tree.js';
export { leafPaths, underAny } from '../core/tree-paths.js';
