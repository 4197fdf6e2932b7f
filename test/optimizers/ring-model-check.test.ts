// RING with the Monte-Carlo Fisher (docs/algorithms.md §3.3–3.4, its default fisher: 'mc') through
// grng/testing's checkTrainingOptimizer, against the float64 reference of ring-model-reference.ts.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { ring } from '../../index.js';
import { checkTrainingOptimizer } from '../../testing.js';
import { ringReference } from './ring-model-reference.js';

const reference = (coefScale = 1) => ringReference((ctx) => ctx.grads, coefScale);

// κ(Λ_d) ≤ (1 + c)/c (§3.3): c ≥ 0.1 keeps it ≤ 11, where 40 Newton–Schulz steps reach float64
// precision; the KL clip off, active, and inactive; the damping floor off or large enough to bind
// on some factors of these small models (taps of unit scale).
const settings = fc.record({
  lr: fc.constantFrom(0.01, 0.1),
  rho: fc.constantFrom(0.01, 1),
  klClip: fc.constantFrom(0, 1e-4, 1),
  statDecay: fc.constantFrom(0, 0.5),
  inverseEvery: fc.constantFrom(1, 2),
  weightDecay: fc.constantFrom(0, 0.1),
  dampingFloor: fc.constantFrom(0, 0.01, 1),
});

describe('ring (fisher mc) through checkTrainingOptimizer', () => {
  test('equals the §3 reference with Monte-Carlo labels from the step key; c 1 % off fails', async () => {
    const lines: string[] = [];
    const options = {
      hyper: { newtonIters: 40, powerSteps: 300 },
      settings,
      log: (l: string) => lines.push(l),
    };
    const ok = await checkTrainingOptimizer(ring(), reference(), options);
    console.log(`${lines[0]} → worst error ${ok.worstError.toExponential(2)}`);
    // Newton–Schulz to float64 precision against Gauss–Jordan: ulps times κ ≤ 11; power
    // iteration's λ̂ against Jacobi's λ_max: (λ₂/λ₁)^600 of the gap, negligible unless the top two
    // eigenvalues nearly tie, when the gap itself is small.
    expect(ok.worstError).toBeLessThan(1e-10);
    await expect(checkTrainingOptimizer(ring(), reference(1.01), options)).rejects.toThrow(
      /ring differs from the reference[^]*Shrunk counterexample/,
    );
  });
});
