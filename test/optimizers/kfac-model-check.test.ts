// K-FAC with the Monte-Carlo Fisher (docs/algorithms.md §6.4, its default fisher: 'mc') through
// grng/testing's checkTrainingOptimizer: compiled training steps on random dense/LoRA models
// against a float64 reference written from §6.4 — labels resampled with referenceRandom from the
// step key, factors from the taps of those labels, π-rule damping with its degenerate-layer guard,
// exact inverses (Gauss–Jordan, where grng runs Newton–Schulz), KL clip, coupled decay and
// PyTorch's momentum buffer.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { kfac } from '../../index.js';
import {
  checkTrainingOptimizer,
  referenceRandom as random,
  type TrainingReferenceContext,
} from '../../testing.js';
import { addMat, eye, matmul, scaleMat, type Mat } from '../curvature/reference.js';
import { gpuDevice } from '../support/gpu.js';
import {
  addToLeaves,
  fallbackLeaves,
  klClipFactor,
  kroneckerFactors,
  layerGradient,
} from './kronecker-model-helpers.js';
import { piRuleInverses } from './ring-reference.js';

type KfacHyper = ReturnType<typeof kfac>['hyper'];
interface LayerState {
  lambda: Mat;
  gamma: Mat;
  lambdaInv: Mat;
  gammaInv: Mat;
}
interface State {
  layers: LayerState[];
  buffer: Float64Array[];
}

/** One K-FAC step from §6.4; `klScale` ≠ 1 is the deliberately wrong reference. */
const reference =
  (klScale = 1) =>
  (ctx: TrainingReferenceContext<KfacHyper>, state: State | undefined) => {
    const h = ctx.hyper;
    const labels = random.categorical(random.mcLabelKey(ctx.key), ctx.output(), [
      ctx.batch,
      ctx.classes,
    ]);
    const taps = ctx.tapsFor(labels);
    const refresh = (period: number) => (ctx.t - 1) % period === 0;
    const layers = taps.map((tap, i): LayerState & { g: Mat; v: Mat } => {
      const old = state?.layers[i] ?? {
        lambda: eye(tap.in),
        gamma: eye(tap.out),
        lambdaInv: eye(tap.in),
        gammaInv: eye(tap.out),
      };
      // Rows over B·T positions for layers that share weights (§10), by `weightSharing`.
      const fresh = kroneckerFactors(tap, h.weightSharing);
      // factorInit 'identity': the factors start at I and average every covEvery steps.
      const ema = (prev: Mat, next: Mat) =>
        addMat(scaleMat(prev, h.statDecay), next, 1 - h.statDecay);
      const lambda = refresh(h.covEvery) ? ema(old.lambda, fresh.lambda) : old.lambda;
      const gamma = refresh(h.covEvery) ? ema(old.gamma, fresh.gamma) : old.gamma;
      let { lambdaInv, gammaInv } = old;
      // The π-rule's damping, with I for both sides of a degenerate layer.
      if (refresh(h.inverseEvery))
        ({ lambdaInv, gammaInv } = piRuleInverses(lambda, gamma, h.damping));
      const G = layerGradient(tap, ctx.grads);
      return {
        lambda,
        gamma,
        lambdaInv,
        gammaInv,
        g: G,
        v: matmul(matmul(gammaInv, G), lambdaInv),
      };
    });
    const nu = klClipFactor(layers, h.lr, klScale * h.klClip);
    // d = ν·V + λ_wd·θ on the layers' leaves, g + λ_wd·θ elsewhere (§6.4).
    const d = fallbackLeaves(taps, ctx.grads).map((g, k) =>
      g.map((x, i) => x + h.weightDecay * ctx.params[k][i]),
    );
    addToLeaves(
      d,
      taps,
      layers.map((l) => l.v),
      nu,
    );
    const buffer =
      state === undefined
        ? d
        : state.buffer.map((b, k) => b.map((x, i) => h.momentum * x + d[k][i]));
    return {
      params: ctx.params.map((p, k) => p.map((x, i) => x - h.lr * buffer[k][i])),
      state: {
        layers: layers.map(({ lambda, gamma, lambdaInv, gammaInv }) => ({
          lambda,
          gamma,
          lambdaInv,
          gammaInv,
        })),
        buffer,
      },
    };
  };

// Damping ≥ 0.1 keeps the damped factors' condition ≲ 1e2 on these |values| ≤ 1 models, where 40
// Newton–Schulz steps reach float64 precision; κ in both regimes (the clip active and not).
const settings = fc.record({
  lr: fc.constantFrom(0.1, 0.5),
  damping: fc.constantFrom(0.1, 1),
  klClip: fc.constantFrom(1e-4, 1),
  statDecay: fc.constantFrom(0, 0.5),
  covEvery: fc.constantFrom(1, 2),
  inverseEvery: fc.constantFrom(1, 2),
  weightDecay: fc.constantFrom(0, 0.1),
});

describe('kfac (fisher mc) through checkTrainingOptimizer', () => {
  test('equals the §6.4 reference with Monte-Carlo labels from the step key; κ 1 % off fails', async () => {
    const lines: string[] = [];
    const options = {
      hyper: { inverseIterations: 40, powerSteps: 40 },
      settings,
      log: (l: string) => lines.push(l),
    };
    const ok = await checkTrainingOptimizer(kfac(), reference(), options);
    console.log(`${lines[0]} → worst error ${ok.worstError.toExponential(2)}`);
    // Newton–Schulz to float64 precision against Gauss–Jordan: ulps times the damped factors'
    // condition (≲ 1e2), over 3 steps.
    expect(ok.worstError).toBeLessThan(1e-10);
    await expect(checkTrainingOptimizer(kfac(), reference(1.01), options)).rejects.toThrow(
      /kfac differs from the reference[^]*Shrunk counterexample/,
    );
  });

  for (const weightSharing of ['expand', 'reduce'] as const)
    test(`token models (attention, layerNorm, dense over tokens), weightSharing '${weightSharing}': equals the §10 reference; κ 1 % off fails`, async () => {
      const lines: string[] = [];
      const options = {
        hyper: { inverseIterations: 40, powerSteps: 40, weightSharing },
        settings,
        kinds: ['transformer' as const],
        numRuns: 10,
        log: (l: string) => lines.push(l),
      };
      const ok = await checkTrainingOptimizer(kfac(), reference(), options);
      console.log(`${lines[0]} (${weightSharing}) → worst error ${ok.worstError.toExponential(2)}`);
      // As above: the factors over B·T rows change the sums, not the damped condition (≲ 1e2).
      expect(ok.worstError).toBeLessThan(1e-10);
      await expect(checkTrainingOptimizer(kfac(), reference(1.01), options)).rejects.toThrow(
        /kfac differs from the reference[^]*Shrunk counterexample/,
      );
    });

  test('on WebGPU (float32): within 1e-5 of float64; κ 1 % off still fails', async () => {
    const gpu = await gpuDevice();
    // Damping λ ≥ 0.1 split by the π-rule makes ‖Λ_d⁻¹‖‖Γ_d⁻¹‖ ≤ 1/λ ≤ 10. Float32 rounds G = gᵀa/B
    // to ~2^-24·Σ|g||a| (≲ 3 here), so ≲ 2e-6 in V. Newton–Schulz is self-correcting and stops at
    // float32's floor, a residual R = I − AX of a few n·2^-24 (n ≤ 4); X·G − A⁻¹G = −A⁻¹R·G adds
    // ≲ 10·1e-6 per factor. lr ≤ 0.5 times momentum's 1 + 0.9 + 0.81 over 3 steps: ≲ 1e-5 in θ.
    const lines: string[] = [];
    const options = {
      hyper: { inverseIterations: 20, powerSteps: 20 },
      settings,
      device: gpu,
      tolerance: 1e-5,
      numRuns: 8,
      log: (l: string) => lines.push(l),
    };
    const ok = await checkTrainingOptimizer(kfac(), reference(), options);
    console.log(`${lines[0]} → worst error ${ok.worstError.toExponential(2)}`);
    await expect(checkTrainingOptimizer(kfac(), reference(1.01), options)).rejects.toThrow(
      /kfac differs from the reference/,
    );
  });
});
