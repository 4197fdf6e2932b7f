// RING with the Monte-Carlo Fisher (docs/algorithms.md §3.3–3.4, its default fisher: 'mc') through
// grng/testing's checkTrainingOptimizer, against the float64 reference of ring-model-reference.ts.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { ring } from '../../index.js';
import { checkTrainingOptimizer } from '../../testing.js';
import { gpuDevice } from '../support/gpu.js';
import { FLOAT32_RING_CHECK, ringReference } from './ring-model-reference.js';

const reference = (coefScale = 1, lambdaMaxBy: 'exact' | 'power' = 'exact') =>
  ringReference((ctx) => ctx.grads, coefScale, lambdaMaxBy);

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
  covEvery: fc.constantFrom(1, 2),
  factorInit: fc.constantFrom('first', 'identity'),
  fisher: fc.constantFrom('mc', 'empirical'),
  momentum: fc.constantFrom(0.9, 0),
  // −1 is √ρ; 0.5 keeps κ ≤ 3.
  dampingCoef: fc.constantFrom(-1, 0.5),
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
    // eigenvalues nearly tie, when the gap itself is small. factorInit 'identity' pulls them
    // together (½ + ½μ at statDecay ½: μ = 0.1, 0.05 leave 0.955^600 ≈ 1e-12), the worst here.
    expect(ok.worstError).toBeLessThan(1e-10);
    await expect(checkTrainingOptimizer(ring(), reference(1.01), options)).rejects.toThrow(
      /ring differs from the reference[^]*Shrunk counterexample/,
    );
  });

  for (const weightSharing of ['expand', 'reduce'] as const)
    test(`token models (attention, layerNorm, dense over tokens), weightSharing '${weightSharing}': equals the §10 reference; c 1 % off fails`, async () => {
      const lines: string[] = [];
      const options = {
        hyper: { newtonIters: 40, powerSteps: 300, weightSharing },
        settings,
        kinds: ['transformer' as const],
        numRuns: 10,
        log: (l: string) => lines.push(l),
      };
      const ok = await checkTrainingOptimizer(ring(), reference(), options);
      console.log(`${lines[0]} (${weightSharing}) → worst error ${ok.worstError.toExponential(2)}`);
      // As above: the factors over B·T rows change the sums, not the conditioning κ ≤ 11.
      expect(ok.worstError).toBeLessThan(1e-10);
      await expect(checkTrainingOptimizer(ring(), reference(1.01), options)).rejects.toThrow(
        /ring differs from the reference[^]*Shrunk counterexample/,
      );
    });

  test('on WebGPU (float32): within 1e-5 of float64 with the same λ̂; c 1 % off still fails', async () => {
    const gpu = await gpuDevice();
    // Float32 rounds G = gᵀa/B to ~2^-24·Σ|g||a|/B, not relative to G, and without an absolute
    // floor Γ_d⁻¹ can be ~1e6 on these models (a saturated softmax): that error then grows into a
    // blown-up trajectory (parameters ~1e4 after two steps), where no tolerance means anything. So
    // here the floor λ₀ ≥ 0.01 bounds ‖Λ_d⁻¹‖‖Γ_d⁻¹‖ ≤ 1/λ₀ ≤ 100 (the spectral path is covered
    // in float64 above). U's error is then ≲ 100·2^-24·(|g||a| ≲ 3) ≈ 2e-5 absolute, plus the
    // inverses' own ~n·κ·2^-24 (n ≤ 4, κ ≤ 11: 12 Newton–Schulz steps reach float32's floor from a
    // cold start, as (1 − 1/11)^(2^12) underflows) and λ̂'s ~n·2^-24 (both sides run the same 20
    // power steps). lr ≤ 0.1 times momentum's 1 + 0.9 + 0.81 over 3 steps keeps it under 1e-5.
    const lines: string[] = [];
    const options = {
      ...FLOAT32_RING_CHECK,
      device: gpu,
      log: (l: string) => lines.push(l),
    };
    const started = performance.now();
    const ok = await checkTrainingOptimizer(ring(), reference(1, 'power'), options);
    console.log(
      `${lines[0]} → worst error ${ok.worstError.toExponential(2)} ` +
        `(${((performance.now() - started) / 1000).toFixed(1)} s)`,
    );
    await expect(checkTrainingOptimizer(ring(), reference(1.01, 'power'), options)).rejects.toThrow(
      /ring differs from the reference/,
    );
  });
});
