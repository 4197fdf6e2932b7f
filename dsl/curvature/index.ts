// Curvature building blocks for second-order optimizers (K-FAC, RING, RENG): Kronecker factors from
// dense-layer taps, their moving averages, λ_max by power iteration, inverses by Newton–Schulz.
export {
  kroneckerFactors,
  layerGradient,
  ema,
  tapGeometry,
  type WeightSharing,
} from './factors.js';
export {
  blockWithIdentity,
  newtonSchulz,
  guardedInverse,
  inverseResidual,
  newtonSchulzIterations,
  type GuardedInverse,
} from './newton-schulz.js';
export { powerIteration } from './power-iteration.js';
