// RENG (docs/algorithms.md §4) through grng/testing's checkTrainingOptimizer, in its three gradient
// modes: RING's step (ring-model-reference.ts) on the regularized gradient ∇L_G, which the
// reference forms from the float64 engine's gradient and Hessian-vector product (§4.1) or its
// shifted gradients (§4.2).
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { reng } from '../../index.js';
import { checkTrainingOptimizer, type TrainingReferenceContext } from '../../testing.js';
import { gpuDevice } from '../support/gpu.js';
import { FLOAT32_RING_CHECK, ringReference, type RingHyper } from './ring-model-reference.js';

type RengHyper = ReturnType<typeof reng>['hyper'];

/** ∇L_G per §4.1/§4.2 from the engine; `rhoScale` ≠ 1 is the deliberately wrong reference. */
const regularizedGradient =
  (rhoScale: number) =>
  (base: TrainingReferenceContext<RingHyper>): Float64Array[] => {
    const ctx = base as TrainingReferenceContext<RengHyper>;
    const { fdEps: eps, gradient: mode } = ctx.hyper;
    const rho = rhoScale * ctx.hyper.rho;
    const g = ctx.grads;
    const at = (sign: number) =>
      ctx.gradient(ctx.params.map((p, k) => p.map((x, i) => x + sign * eps * g[k][i])));
    if (mode === 'double_backprop') {
      const hg = ctx.hvp(g);
      return g.map((gk, k) => gk.map((x, i) => x + rho * hg[k][i]));
    }
    const up = at(1);
    if (mode === 'fd_forward')
      return g.map((gk, k) => gk.map((x, i) => x + (rho / eps) * (up[k][i] - x)));
    const down = at(-1);
    return g.map((gk, k) => gk.map((x, i) => x + (rho / (2 * eps)) * (up[k][i] - down[k][i])));
  };

// As RING's check (c = √ρ ≥ 0.1 keeps κ(Λ_d) ≤ 11), with ε large enough that the shifted
// gradients differ from ∇L well above rounding.
const settings = fc.record({
  lr: fc.constantFrom(0.01, 0.1),
  rho: fc.constantFrom(0.01, 1),
  klClip: fc.constantFrom(0, 1e-4),
  statDecay: fc.constantFrom(0, 0.5),
  inverseEvery: fc.constantFrom(1, 2),
  weightDecay: fc.constantFrom(0, 0.1),
  fdEps: fc.constantFrom(1e-3, 0.1),
});

describe('reng through checkTrainingOptimizer', () => {
  for (const gradient of ['double_backprop', 'fd_forward', 'fd_central'] as const) {
    test(`${gradient}: equals RING's step on the §4 regularized gradient; ρ 1 % off fails`, async () => {
      const lines: string[] = [];
      const options = {
        hyper: { gradient, newtonIters: 40, powerSteps: 300 },
        settings,
        log: (l: string) => lines.push(l),
      };
      const reference = (rhoScale: number) => ringReference(regularizedGradient(rhoScale));
      const ok = await checkTrainingOptimizer(reng(), reference(1), options);
      console.log(`${lines[0]} (${gradient}) → worst error ${ok.worstError.toExponential(2)}`);
      // As for RING (ulps times κ ≤ 11), plus the finite differences' cancellation: ρ/ε ≤ 1e3
      // times ulps of ∇L.
      expect(ok.worstError).toBeLessThan(1e-10);
      await expect(checkTrainingOptimizer(reng(), reference(1.01), options)).rejects.toThrow(
        /reng differs from the reference[^]*Shrunk counterexample/,
      );
    });
  }

  test('on WebGPU (float32), double backprop: within 1e-5 of float64; ρ 1 % off still fails', async () => {
    const gpu = await gpuDevice();
    // As RING's float32 check (ring-model-check.test.ts): the floor λ₀ ≥ 0.01 bounds the
    // preconditioner by 1/λ₀, and both sides run the same 20 power steps. ∇L_G = g + ρ·Hg adds the
    // Hessian-vector product's few ulps times ρ ≤ 1 to G's ~2^-24·Σ|g||a| error; the finite-
    // difference modes are left to float64, where ρ/ε ≤ 1e3 times float32's ulps would swamp it.
    const lines: string[] = [];
    const options = {
      ...FLOAT32_RING_CHECK,
      hyper: { ...FLOAT32_RING_CHECK.hyper, gradient: 'double_backprop' as const },
      device: gpu,
      log: (l: string) => lines.push(l),
    };
    const reference = (rhoScale: number) =>
      ringReference(regularizedGradient(rhoScale), 1, 'power');
    const ok = await checkTrainingOptimizer(reng(), reference(1), options);
    console.log(`${lines[0]} → worst error ${ok.worstError.toExponential(2)}`);
    await expect(checkTrainingOptimizer(reng(), reference(1.01), options)).rejects.toThrow(
      /reng differs from the reference/,
    );
  });
});
