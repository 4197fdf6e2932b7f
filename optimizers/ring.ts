// RING, Regularized Implicit Natural Gradient (docs/algorithms.md §3): per dense layer the
// Kronecker factors get a damping relative to their own spectral norm, Λ_d = Λ + √ρ·λ_max(Λ)·I and
// Γ_d = Γ + √ρ·λ_max(Γ)·I — which dominates the gradient-regularized curvature F + ρ‖G‖²I of the
// paper's quadratic model (§3.2) — and the step is U = Γ_d⁻¹ G Λ_d⁻¹ with inverses by
// Newton–Schulz, refreshed every `inverseEvery` steps (Lazy Fisher), heavy-ball momentum on U and
// decoupled weight decay. Parameters outside dense layers take the fallback optimizer's step.
import {
  add,
  div,
  eq,
  eye,
  le,
  lt,
  maximum,
  mul,
  scalar,
  sqnorm,
  sqrt,
  sub,
  where,
  zeros,
  zerosLike,
  type Tensor,
} from '../dsl/index.js';
import { guardedInverse, powerIteration } from '../dsl/curvature/index.js';
import {
  defineOptimizer,
  outside,
  treeMap,
  type LayerInfo,
  type ParamTree,
  type StepContext,
} from '../dsl/optimizer.js';
import { adamMoments, ADAM_DEFAULTS } from './adam.js';
import {
  fisherTaps,
  gradientLookup,
  initialLayerState,
  klClipFactor,
  layerDirections,
  layerGrad,
  piRule,
  piRuleInverses,
  powerRestart,
  DEGENERATE,
  precondition,
  updatedFactors,
  type LayerState,
} from './kronecker.js';

export const RING_HYPER = {
  lr: 1e-2,
  momentum: 0.9,
  weightDecay: 5e-4,
  /** Gradient-regularization strength ρ. */
  rho: 1e-2,
  /** Factor EMA decay β_F; 0 uses each refresh's statistics alone. */
  statDecay: 0.95,
  covEvery: 1,
  /** Lazy Fisher period S: λ_max and the inverses are recomputed on steps 1, 1 + S, … */
  inverseEvery: 10,
  /**
   * 'mc': Γ from labels sampled from the model (true Fisher); 'empirical': from the batch's labels.
   */
  fisher: 'mc',
  /**
   * Layers applied at several positions per sample (attention projections over tokens, convolutions
   * over pixels; docs/algorithms.md §10): 'expand' (K-FAC-expand, every position a sample) or
   * 'reduce' (K-FAC-reduce, positions averaged first). Dense layers on [B, d] are the same either
   * way.
   */
  weightSharing: 'expand',
  /**
   * 'spectral': Λ + c·λ_max(Λ)·I, Γ + c·λ_max(Γ)·I (§3.3); 'grad_norm': λ = ρ‖G‖_F² split by the
   * π-rule (§9 O3).
   */
  damping: 'spectral',
  /**
   * c of the spectral damping; a negative value means √ρ (the default, which RING's derivation
   * uses).
   */
  dampingCoef: -1,
  /**
   * An absolute floor λ₀ under the spectral damping (docs/algorithms.md §3.3): split by the π-rule
   * into π√λ₀ on Λ and √λ₀/π on Γ, each factor's shift is the larger of its spectral shift and its
   * floor, so Λ_d ⊗ Γ_d ⪰ λ₀·I and ‖U‖_F ≤ ‖G‖_F/λ₀. 0 (the default) is RING as defined.
   */
  dampingFloor: 0,
  /**
   * Newton–Schulz steps per refresh (k_NS of §3.5: 8 reaches 1e-6 at √ρ = 0.1 from a cold start).
   */
  newtonIters: 8,
  /** Power-iteration steps for λ_max (warm-started from the previous top eigenvector). */
  powerSteps: 20,
  /** Start Newton–Schulz from the previous inverse when it is still a contraction (R9). */
  warmStart: true,
  /**
   * 'first': factors start at the first statistics; 'identity': at I, then averaged (KFAC-Pytorch).
   */
  factorInit: 'first',
  /**
   * The step of parameters outside dense layers: 'sgd' (momentum SGD on the raw gradient) or
   * 'adamw'.
   */
  fallback: 'sgd',
  /**
   * K-FAC's KL clip κ applied to the preconditioned step (§9 O10); 0 turns it off (the default).
   */
  klClip: 0,
};

type RingHyper = typeof RING_HYPER;

/**
 * A refresh whose first Newton–Schulz attempt ends above this residual counts as a fallback (as in
 * K-FAC).
 */
const NS_TOLERANCE = 1e-3;

export function validateRing(h: {
  [K in keyof RingHyper]: RingHyper[K] extends number
    ? number
    : RingHyper[K] extends boolean
      ? boolean
      : string;
}): string | undefined {
  return (
    outside('lr', h.lr, 0, Infinity) ??
    outside('momentum', h.momentum, 0, 1) ??
    outside('weightDecay', h.weightDecay, 0, Infinity) ??
    outside('rho', h.rho, 0, Infinity) ??
    outside('statDecay', h.statDecay, 0, 1) ??
    outside('klClip', h.klClip, 0, Infinity) ??
    outside('dampingFloor', h.dampingFloor, 0, Infinity) ??
    (![h.covEvery, h.inverseEvery, h.newtonIters, h.powerSteps].every(
      (n) => Number.isInteger(n) && n >= 1,
    )
      ? 'covEvery, inverseEvery, newtonIters and powerSteps must be positive integers'
      : undefined) ??
    (h.weightSharing !== 'expand' && h.weightSharing !== 'reduce'
      ? `weightSharing must be 'expand' or 'reduce', got '${h.weightSharing}'`
      : undefined) ??
    (h.fisher !== 'mc' && h.fisher !== 'empirical'
      ? `fisher must be 'mc' or 'empirical', got '${h.fisher}'`
      : undefined) ??
    (h.damping !== 'spectral' && h.damping !== 'grad_norm'
      ? `damping must be 'spectral' or 'grad_norm', got '${h.damping}'`
      : undefined) ??
    (h.factorInit !== 'identity' && h.factorInit !== 'first'
      ? `factorInit must be 'identity' or 'first', got '${h.factorInit}'`
      : undefined) ??
    (h.fallback !== 'sgd' && h.fallback !== 'adamw'
      ? `fallback must be 'sgd' or 'adamw', got '${h.fallback}'`
      : undefined)
  );
}

export const RING_STATIC = ['covEvery', 'inverseEvery', 'newtonIters', 'powerSteps'] as const;

export function initRing(
  params: ParamTree,
  h: { readonly factorInit: string; readonly fallback: string },
  layers: readonly LayerInfo[],
) {
  return {
    layers: layers.map(
      (layer): LayerState & { readonly residual: Tensor; readonly damping: Tensor } => ({
        ...initialLayerState(layer, h.factorInit),
        residual: zeros([]) as Tensor,
        damping: zeros([]) as Tensor,
      }),
    ),
    velocity: treeMap(zerosLike, params),
    /**
     * AdamW moments for the parameters outside dense layers (fallback 'adamw'; unused otherwise).
     */
    adam:
      h.fallback === 'adamw'
        ? { m: treeMap(zerosLike, params), v: treeMap(zerosLike, params) }
        : {},
    started: zeros([]) as Tensor,
    fallbacks: zeros([]) as Tensor,
  };
}

type RingState = ReturnType<typeof initRing>;

/**
 * One RING-style step from `gradient` (RING: the plain minibatch gradient; RENG: ∇L_G) with the
 * spectral damping coefficient `coef` (RING: √ρ; RENG: ε_R).
 */
export function ringStep(
  ctx: StepContext<RingHyper, RingState>,
  gradient: ParamTree,
  coef: Tensor,
  op: string,
) {
  const { params, state, every, map, hyper, settings } = ctx;
  const taps = fisherTaps(ctx, settings.fisher, state.layers.length, op);
  const gradOf = gradientLookup(params, gradient, op);
  const first = eq(state.started, 0);
  let fallbacks = state.fallbacks;

  const layers = taps.map((tap, i) => {
    const old = state.layers[i];
    const [lambda, gamma] = updatedFactors(tap, old, {
      first,
      decay: hyper.statDecay,
      factorInit: settings.factorInit,
      covEvery: settings.covEvery,
      weightSharing: settings.weightSharing,
      every,
    });
    const g = layerGrad(tap, gradOf);
    const inverses = every(
      settings.inverseEvery,
      () => {
        if (settings.damping === 'grad_norm') {
          const r = piRuleInverses(
            lambda,
            gamma,
            old,
            mul(hyper.rho, sqnorm(g)),
            settings.newtonIters,
            settings.powerSteps,
            settings.warmStart,
          );
          return { ...r, damping: r.damping[0] };
        }
        const pi = piRule(lambda, gamma);
        const root = sqrt(hyper.dampingFloor);
        const l = spectralInverse(lambda, old.lambdaInv, old.lambdaVec, coef, {
          ...settings,
          floor: mul(pi, root),
        });
        const gm = spectralInverse(gamma, old.gammaInv, old.gammaVec, coef, {
          ...settings,
          floor: div(root, pi),
        });
        return {
          lambdaInv: l.inverse,
          gammaInv: gm.inverse,
          lambdaVec: l.vector,
          gammaVec: gm.vector,
          fellBack: maximum(l.fellBack, gm.fellBack),
          residual: maximum(l.residual, gm.residual),
          damping: maximum(l.damping, gm.damping),
        };
      },
      () => ({
        lambdaInv: old.lambdaInv,
        gammaInv: old.gammaInv,
        lambdaVec: old.lambdaVec,
        gammaVec: old.gammaVec,
        fellBack: zeros([]) as Tensor,
        residual: old.residual,
        damping: old.damping,
      }),
    );
    fallbacks = add(fallbacks, inverses.fellBack);
    const v = precondition(inverses.gammaInv, g, inverses.lambdaInv);
    const next = {
      lambda,
      gamma,
      lambdaInv: inverses.lambdaInv,
      gammaInv: inverses.gammaInv,
      lambdaVec: inverses.lambdaVec,
      gammaVec: inverses.gammaVec,
      residual: inverses.residual,
      damping: inverses.damping,
    };
    return { tap, g, v, state: next };
  });

  // KL clip only when asked for (klClip > 0): ν = 1 otherwise.
  const nu = where(le(hyper.klClip, 0), 1, klClipFactor(layers, hyper.lr, hyper.klClip));
  const preconditioned = layerDirections(layers.map(({ tap, v }) => ({ tap, v: mul(nu, v) })));
  const decay = (p: Tensor) => mul(p, sub(1, mul(hyper.lr, hyper.weightDecay)));
  // Dense layers: v ← μv + U, W̃ ← (1 − ηλ)W̃ − ηv. Elsewhere: the same on the raw gradient, or
  // AdamW.
  const velocity = map(
    (vi, p, gi) => add(mul(hyper.momentum, vi), preconditioned.get(p.node) ?? gi),
    state.velocity,
    params,
    gradient,
  );
  const adamState = state.adam as { m?: ParamTree; v?: ParamTree };
  const useAdam =
    settings.fallback === 'adamw' && adamState.m !== undefined && adamState.v !== undefined;
  const betas = {
    beta1: scalar(ADAM_DEFAULTS.beta1),
    beta2: scalar(ADAM_DEFAULTS.beta2),
    eps: scalar(ADAM_DEFAULTS.eps),
  };
  const moments = (g: Tensor, m: Tensor, v: Tensor) => adamMoments(g, m, v, betas, ctx.t);
  const step = (p: Tensor, vi: Tensor, gi: Tensor, m: Tensor, v: Tensor) =>
    preconditioned.has(p.node) || !useAdam
      ? sub(decay(p), mul(hyper.lr, vi))
      : sub(decay(p), mul(hyper.lr, moments(gi, m, v).step));
  const m = useAdam ? (adamState.m as ParamTree) : params;
  const v = useAdam ? (adamState.v as ParamTree) : params;
  const nextParams = map(step, params, velocity, gradient, m, v);
  const adam = useAdam
    ? {
        m: map((g, mi, vi) => moments(g, mi, vi).m, gradient, m, v),
        v: map((g, mi, vi) => moments(g, mi, vi).v, gradient, m, v),
      }
    : {};
  return {
    params: nextParams,
    state: {
      layers: layers.map((l) => l.state),
      velocity,
      adam,
      started: where(first, 1, state.started),
      fallbacks,
    },
  };
}

/**
 * (F + s·I)⁻¹ with s = max(c·λ̂, floor) and λ̂ ≈ λ_max(F) by warm-started power iteration
 * (λ̂ ≤ λ_max), by Newton–Schulz from the previous inverse (warm start, when still a contraction)
 * or I/(λ̂ + s) (§3.5); a degenerate F (λ̂ ≤ 1e-30, e.g. all-zero inputs) is replaced by I (§3.3;
 * see DEGENERATE).
 */
function spectralInverse(
  f: Tensor,
  previous: Tensor,
  v0: Tensor,
  coef: Tensor,
  settings: {
    readonly newtonIters: number;
    readonly powerSteps: number;
    readonly warmStart: boolean;
    readonly floor: Tensor;
  },
) {
  const n = f.shape[0];
  const top = powerIteration(f, powerRestart(v0), settings.powerSteps);
  const shift = maximum(mul(coef, top.value), settings.floor);
  const damped = add(f, mul(shift, eye(n)));
  const inverse = guardedInverse(damped, {
    lambdaMax: add(top.value, shift),
    x0: settings.warmStart ? previous : undefined,
    iterations: settings.newtonIters,
    extra: settings.newtonIters,
    tolerance: NS_TOLERANCE,
  });
  const degenerate = le(top.value, DEGENERATE);
  return {
    inverse: where(degenerate, eye(n), inverse.inverse),
    vector: top.vector,
    residual: where(degenerate, 0, inverse.residual),
    fellBack: where(degenerate, 0, inverse.fellBack),
    damping: where(degenerate, 0, shift),
  };
}

/** The spectral damping coefficient: `dampingCoef`, or √ρ when it is negative. */
export function dampingCoefficient(hyper: {
  readonly rho: Tensor;
  readonly dampingCoef: Tensor;
}): Tensor {
  return where(lt(hyper.dampingCoef, 0), sqrt(hyper.rho), hyper.dampingCoef);
}

/**
 * Metrics RING and RENG report: fallback count, worst Newton–Schulz residual and largest damping
 * shift at the last refresh.
 */
export const RING_REPORT = {
  fallbacks: (state: RingState) => state.fallbacks,
  residual: (state: RingState) =>
    state.layers.reduce<Tensor>((acc, l) => maximum(acc, l.residual), zeros([])),
  damping: (state: RingState) =>
    state.layers.reduce<Tensor>((acc, l) => maximum(acc, l.damping), zeros([])),
};

export const ring = defineOptimizer({
  name: 'ring',
  hyper: RING_HYPER,
  static: [...RING_STATIC],
  validate: validateRing,
  init: (params, h, layers) => initRing(params, h, layers),
  report: RING_REPORT,
  update: (ctx) => ringStep(ctx, ctx.grads, dampingCoefficient(ctx.hyper), 'ring'),
});
