// RING's step (docs/algorithms.md §3.3–3.4) as a float64 reference for checkTrainingOptimizer, on
// any gradient: labels resampled with referenceRandom from the step key ('mc') or the batch's
// ('empirical'), factors from their taps (EMA from the first statistics or from I), spectral
// damping over the π-split absolute floor with λ_max by Jacobi or by §3.5's power iteration, or
// 'grad_norm' damping (λ = ρ‖G‖_F² split by the π-rule); exact inverses (Gauss–Jordan, where grng
// runs Newton–Schulz), the degenerate-factor rules, KL clip, heavy-ball momentum on U and decoupled
// weight decay; the leaves no tap records take momentum SGD or (fallback 'adamw') AdamW (O11).
// RING passes the gradient, RENG its regularized gradient (§4).
import fc from 'fast-check';
import type { ring } from '../../index.js';
import { referenceRandom as random, type TrainingReferenceContext } from '../../testing.js';
import {
  addMat,
  eye,
  inverse,
  lambdaMax,
  matmul,
  scaleMat,
  type Mat,
} from '../curvature/reference.js';
import {
  addToLeaves,
  fallbackLeaves,
  klClipFactor,
  kroneckerFactors,
  layerGradient,
  tappedLeaves,
} from './kronecker-model-helpers.js';
import { adamwReference, type AdamState } from './reference.js';
import { DEGENERATE, piRule, piRuleInverses } from './ring-reference.js';

export type RingHyper = ReturnType<typeof ring>['hyper'];

/**
 * The float32 (WebGPU) checks of RING and RENG: settings whose damping floor λ₀ ≥ 0.01 bounds the
 * preconditioner by 1/λ₀ (why: ring-model-check.test.ts), 12 Newton–Schulz and 20 power steps,
 * which the reference repeats with lambdaMaxBy 'power', and tolerance 1e-5.
 */
export const FLOAT32_RING_CHECK = {
  settings: fc.record({
    lr: fc.constantFrom(0.01, 0.1),
    rho: fc.constantFrom(0.01, 1),
    klClip: fc.constantFrom(0, 1e-4),
    statDecay: fc.constantFrom(0, 0.5),
    inverseEvery: fc.constantFrom(1, 2),
    weightDecay: fc.constantFrom(0, 0.1),
    dampingFloor: fc.constantFrom(0.01, 1),
  }),
  hyper: { newtonIters: 12, powerSteps: 20 },
  tolerance: 1e-5,
  numRuns: 8,
};
interface LayerState {
  lambda: Mat;
  gamma: Mat;
  lambdaInv: Mat;
  gammaInv: Mat;
  /** The power-iteration vectors of the last refresh ('power' only). */
  lambdaVec?: Float64Array;
  gammaVec?: Float64Array;
}
interface State {
  layers: LayerState[];
  buffer: Float64Array[];
  /** AdamW's moments for the leaves no tap records (fallback 'adamw'). */
  adam?: AdamState;
}

/** F + max(c·top, floor)·I, or I for a degenerate factor (top ≤ 1e-30, §3.3). */
function spectrallyDamped(f: Mat, top: number, c: number, floor: number): Mat {
  return top <= DEGENERATE ? eye(f.rows) : addMat(f, eye(f.rows), Math.max(c * top, floor));
}

/**
 * §3.5's λ̂: `steps` power steps v ← Fv/‖Fv‖ from the previous refresh's vector, or from
 * (1, 1/2, …, 1/n) at the first refresh and after a zero vector; λ̂ = vᵀFv.
 */
function powerIteration(f: Mat, previous: Float64Array | undefined, steps: number) {
  const n = f.rows;
  const apply = (v: Float64Array) =>
    Float64Array.from({ length: n }, (_, i) => {
      let s = 0;
      for (let j = 0; j < n; j++) s += f.data[i * n + j] * v[j];
      return s;
    });
  const unit = (w: Float64Array) => {
    const norm = Math.sqrt(w.reduce((acc, x) => acc + x * x, 0));
    return w.map((x) => x / Math.max(norm, 1e-30));
  };
  const restart = previous === undefined || previous.every((x) => x === 0);
  let v = unit(restart ? Float64Array.from({ length: n }, (_, i) => 1 / (1 + i)) : previous);
  for (let k = 0; k < steps; k++) v = unit(apply(v));
  const fv = apply(v);
  return { value: v.reduce((acc, x, i) => acc + x * fv[i], 0), vector: v };
}

/**
 * One RING step from §3.3–3.4 on the layer gradients `gradient(ctx)` (RING: ctx.grads; RENG: ∇L_G,
 * §4.1); `coefScale` ≠ 1 is the deliberately wrong reference. λ_max comes from Jacobi ('exact') or,
 * for float32 devices, where many power steps cost too much to compile, from §3.5's warm-started
 * power iteration with the step's `powerSteps` ('power'), so that both sides shift by the same λ̂.
 */
export const ringReference =
  (
    gradient: (ctx: TrainingReferenceContext<RingHyper>) => readonly Float64Array[],
    coefScale = 1,
    lambdaMaxBy: 'exact' | 'power' = 'exact',
  ) =>
  (ctx: TrainingReferenceContext<RingHyper>, state: State | undefined) => {
    const h = ctx.hyper;
    const c = coefScale * (h.dampingCoef < 0 ? Math.sqrt(h.rho) : h.dampingCoef);
    // fisher 'mc': Γ from labels sampled with the step's key; 'empirical': from the batch's.
    const labels =
      h.fisher === 'empirical'
        ? ctx.labels
        : random.categorical(random.mcLabelKey(ctx.key), ctx.output(), [ctx.batch, ctx.classes]);
    const taps = ctx.tapsFor(labels);
    const grads = gradient(ctx);
    const refresh = (period: number) => (ctx.t - 1) % period === 0;
    const layers = taps.map((tap, i): LayerState & { g: Mat; u: Mat } => {
      // Rows over B·T positions for layers that share weights (§10), by `weightSharing`.
      const { lambda: a, gamma: g } = kroneckerFactors(tap, h.weightSharing);
      const old = state?.layers[i];
      // factorInit 'first': the first statistics, then Λ ← β_F Λ + (1 − β_F) Λ̂ every covEvery;
      // 'identity': the average starts from I.
      const ema = (prev: Mat, fresh: Mat) =>
        addMat(scaleMat(prev, h.statDecay), fresh, 1 - h.statDecay);
      const start = (fresh: Mat) =>
        h.factorInit === 'identity' ? ema(eye(fresh.rows), fresh) : fresh;
      const stale = old !== undefined && !refresh(h.covEvery);
      const lambda = old === undefined ? start(a) : stale ? old.lambda : ema(old.lambda, a);
      const gamma = old === undefined ? start(g) : stale ? old.gamma : ema(old.gamma, g);
      const fresh = old === undefined || refresh(h.inverseEvery);
      // The floor λ₀ splits as π√λ₀ on Λ and √λ₀/π on Γ, π² = (tr Λ/d_in)/(tr Γ/d_out).
      const pi = piRule(lambda, gamma);
      const root = Math.sqrt(h.dampingFloor);
      const top = (f: Mat, previous: Float64Array | undefined) =>
        lambdaMaxBy === 'exact'
          ? { value: lambdaMax(f), vector: undefined }
          : powerIteration(f, previous, h.powerSteps);
      const G = layerGradient(tap, grads);
      if (h.damping === 'grad_norm') {
        // λ = ρ‖G‖_F², split as π√λ on Λ and √λ/π on Γ.
        const lam = h.rho * G.data.reduce((acc, x) => acc + x * x, 0);
        const { lambdaInv, gammaInv } = fresh
          ? piRuleInverses(lambda, gamma, lam)
          : (old as LayerState);
        return {
          lambda,
          gamma,
          lambdaInv,
          gammaInv,
          g: G,
          u: matmul(matmul(gammaInv, G), lambdaInv),
        };
      }
      const lambdaTop = fresh ? top(lambda, old?.lambdaVec) : undefined;
      const gammaTop = fresh ? top(gamma, old?.gammaVec) : undefined;
      const lambdaInv =
        lambdaTop === undefined
          ? (old as LayerState).lambdaInv
          : inverse(spectrallyDamped(lambda, lambdaTop.value, c, pi * root));
      const gammaInv =
        gammaTop === undefined
          ? (old as LayerState).gammaInv
          : inverse(spectrallyDamped(gamma, gammaTop.value, c, root / pi));
      return {
        lambda,
        gamma,
        lambdaInv,
        gammaInv,
        lambdaVec: lambdaTop === undefined ? old?.lambdaVec : lambdaTop.vector,
        gammaVec: gammaTop === undefined ? old?.gammaVec : gammaTop.vector,
        g: G,
        u: matmul(matmul(gammaInv, G), lambdaInv),
      };
    });
    const nu = klClipFactor(
      layers.map(({ g, u }) => ({ g, v: u })),
      h.lr,
      h.klClip,
    );
    // v ← μv + ν·U on the layers' leaves, v ← μv + g elsewhere (fallback 'sgd', O11).
    const u = fallbackLeaves(taps, grads);
    addToLeaves(
      u,
      taps,
      layers.map((l) => l.u),
      nu,
    );
    const velocity = u.map((uk, k) =>
      uk.map((x, i) => (state === undefined ? 0 : h.momentum * state.buffer[k][i]) + x),
    );
    // fallback 'adamw': AdamW with RING's η and λ_wd, β = (0.9, 0.999), ε = 1e-8 on those leaves.
    const adam =
      h.fallback === 'adamw'
        ? adamwReference.step(ctx.params, grads, state?.adam ?? adamwReference.init(ctx.params), {
            lr: h.lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weightDecay: h.weightDecay,
          })
        : undefined;
    const tapped = tappedLeaves(taps);
    return {
      params: ctx.params.map((p, k) =>
        adam !== undefined && !tapped.has(k)
          ? adam.params[k]
          : p.map((x, i) => x * (1 - h.lr * h.weightDecay) - h.lr * velocity[k][i]),
      ),
      state: {
        layers: layers.map(({ lambda, gamma, lambdaInv, gammaInv, lambdaVec, gammaVec }) => ({
          lambda,
          gamma,
          lambdaInv,
          gammaInv,
          lambdaVec,
          gammaVec,
        })),
        buffer: velocity,
        adam: adam?.state,
      },
    };
  };
