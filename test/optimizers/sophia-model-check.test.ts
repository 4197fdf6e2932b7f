// Sophia-H and Sophia-G (docs/algorithms.md §6.5) through grng/testing's checkTrainingOptimizer:
// compiled training steps on random dense/LoRA models against a float64 reference written from the
// spec, which recomputes the step's Gaussian probes and Monte-Carlo labels with referenceRandom.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { sophia } from '../../index.js';
import {
  checkTrainingOptimizer,
  referenceRandom as random,
  type TrainingReferenceContext,
} from '../../testing.js';
import { gpuDevice } from '../support/gpu.js';

type SophiaHyper = ReturnType<typeof sophia>['hyper'];
type State = { m: Float64Array[]; h: Float64Array[] };

/** One Sophia step from §6.5; `rhoScale` ≠ 1 is the deliberately wrong reference. */
const reference =
  (rhoScale = 1) =>
  (ctx: TrainingReferenceContext<SophiaHyper>, state: State | undefined) => {
    const { lr, beta1, beta2, rho, eps, weightDecay, every, estimator } = ctx.hyper;
    const zeros = () => ctx.params.map((p) => new Float64Array(p.length));
    const s = state ?? { m: zeros(), h: zeros() };
    let estimate: Float64Array[] | undefined;
    if ((ctx.t - 1) % every === 0) {
      if (estimator === 'gnb') {
        // ŷ ~ softmax(f(θ, x)) with the step's label key; ĥ = B·∇L̂ ⊙ ∇L̂.
        const labels = random.categorical(random.mcLabelKey(ctx.key), ctx.output(), [
          ctx.batch,
          ctx.classes,
        ]);
        estimate = ctx.gradient(undefined, labels).map((g) => g.map((e) => ctx.batch * e * e));
      } else {
        // u ~ N(0, I), one key per leaf; ĥ = u ⊙ (∇²L u).
        const u = ctx.shapes.map((shape, i) =>
          random.normal(random.hutchinsonProbeKey(ctx.key, i), shape),
        );
        const hu = ctx.hvp(u);
        estimate = u.map((ui, k) => ui.map((e, i) => e * hu[k][i]));
      }
    }
    const m = s.m.map((mk, k) => mk.map((e, i) => beta1 * e + (1 - beta1) * ctx.grads[k][i]));
    const h =
      estimate === undefined
        ? s.h
        : s.h.map((hk, k) => hk.map((e, i) => beta2 * e + (1 - beta2) * estimate[k][i]));
    const params = ctx.params.map((p, k) =>
      p.map((e, i) => {
        const ratio = m[k][i] / Math.max(rhoScale * rho * h[k][i], eps);
        return e * (1 - lr * weightDecay) - lr * Math.min(1, Math.max(-1, ratio));
      }),
    );
    return { params, state: { m, h } };
  };

// γ·h of the order of |m| keeps most ratios inside the clip, where the estimate matters; β₂ ≤ 0.5
// lets one estimate dominate h.
const settings = fc.record({
  lr: fc.constantFrom(0.05, 0.2),
  rho: fc.constantFrom(0.1, 1, 10),
  beta2: fc.constantFrom(0, 0.5),
  every: fc.constantFrom(1, 2),
  weightDecay: fc.constantFrom(0, 0.1),
});

describe('sophia through checkTrainingOptimizer', () => {
  for (const estimator of ['hutchinson', 'gnb'] as const) {
    test(`Sophia-${estimator === 'gnb' ? 'G' : 'H'} equals the §6.5 reference; γ 1 % off fails`, async () => {
      const lines: string[] = [];
      const options = { hyper: { estimator }, settings, log: (l: string) => lines.push(l) };
      const ok = await checkTrainingOptimizer(sophia(), reference(), options);
      console.log(`${lines[0]} → worst error ${ok.worstError.toExponential(2)}`);
      // The same float64 formulas in another order: a few ulps over 3 steps (γ·h ≥ ε bounds the
      // division's amplification; the checker's own default tolerance is 1e-9).
      expect(ok.worstError).toBeLessThan(1e-12);
      await expect(checkTrainingOptimizer(sophia(), reference(1.01), options)).rejects.toThrow(
        /sophia differs from the reference[^]*Shrunk counterexample/,
      );
    });
  }

  for (const estimator of ['hutchinson', 'gnb'] as const)
    test(`on WebGPU (float32): Sophia-${estimator === 'gnb' ? 'G' : 'H'} within 1e-5 of float64; γ 1 % off still fails`, async () => {
      const gpu = await gpuDevice();
      // Each element's step is lr·clip(m/max(γh, ε)) with |·| ≤ lr ≤ 0.2. The forward, backward
      // and Hessian-vector sums of these ≤ 3-layer, ≤ 3-unit models lose a few float32 ulps (2^-24)
      // each, times the loss's conditioning (tens): ≲ 1e-5 relative in m and h, so ≲ 2e-6 per step
      // on the ratio's unclipped side, and 3 steps stay under 1e-5. γ 1 % off moves unclipped
      // ratios by 1 %.
      const lines: string[] = [];
      const options = {
        hyper: { estimator },
        settings,
        device: gpu,
        tolerance: 1e-5,
        numRuns: 6,
        log: (l: string) => lines.push(l),
      };
      const ok = await checkTrainingOptimizer(sophia(), reference(), options);
      console.log(`${lines[0]} (${estimator}) → worst error ${ok.worstError.toExponential(2)}`);
      await expect(checkTrainingOptimizer(sophia(), reference(1.01), options)).rejects.toThrow(
        /sophia differs from the reference/,
      );
    });
});
