// The property test a user writes for their optimizer: grng/testing's checkOptimizer runs
// AdaBelief compiled (float64 interpreter, then WebGPU) on random parameter trees and gradient
// sequences against the plain-loop reference, and shrinks any mismatch to a small case.
// In your project, import from 'grng' and 'grng/testing'.
import fc from 'fast-check';
import { expect, test } from 'vitest';
import { createDevice } from '../../index.js';
import { checkOptimizer } from '../../testing.js';
import { adabelief } from './adabelief.js';
import { adabeliefReference, type AdaBeliefState } from './adabelief-reference.js';

const reference = (
  params: readonly Float64Array[],
  grads: readonly Float64Array[],
  state: AdaBeliefState | undefined,
  hyper: Parameters<typeof adabeliefReference>[3],
  t: number,
) => adabeliefReference(params, grads, state, hyper, t);

test(
  'AdaBelief matches its float64 reference on random trees, gradients ' + 'and settings',
  async () => {
    const settings = fc.record({
      lr: fc.constantFrom(1e-3, 1e-2, 0.1),
      beta1: fc.constantFrom(0, 0.5, 0.9),
      weightDecay: fc.constantFrom(0, 0.01),
    });
    // Float64 interpreter: the same formulas in another order, a few ulps apart: the default 1e-10
    // (measured: 0, the interpreter happens to evaluate them in the reference's order).
    const cpu = await checkOptimizer(adabelief(), reference, { settings, numRuns: 25, steps: 5 });
    expect(cpu.worstError).toBeLessThan(1e-10);
  },
);

test('AdaBelief compiled to WebGPU matches the reference within float32 rounding', async () => {
  const device = await createDevice();
  // Float32: each step moves θ by lr·(r + λθ) with r = m̂/(√ŝ + ε); for gradients that vary (these
  // are random in [−1, 1]) |r| stays below ~1/√(1 − β₂) ≈ 32. A chain of ~10 float32 ops rounds r
  // by ≲ 10 ulps (6e-7 relative) and θ rounds by 6e-8: per step ≤ 6e-8 + 0.01·32·6e-7 ≈ 2.5e-7,
  // four steps ≈ 1e-6, a few times more where r is larger (measured worst: 1.8e-6, seed 20261128).
  // Tolerance 1e-5.
  const result = await checkOptimizer(adabelief({ lr: 0.01, eps: 1e-8 }), reference, {
    device,
    tolerance: 1e-5,
    numRuns: 8,
    steps: 4,
  });
  expect(result.worstError).toBeLessThan(1e-5);
});
