// K-FAC (Martens & Grosse 2015) as KFAC-Pytorch runs it (docs/algorithms.md §6.4): per dense layer,
// Kronecker factors Λ = E[aaᵀ], Γ = E[ggᵀ] (moving averages, refreshed every covEvery steps),
// factored Tikhonov damping (Λ + π√λ I) ⊗ (Γ + √λ/π I), inverses by Newton–Schulz (refreshed
// every inverseEvery steps), preconditioned gradient V = Γ_d⁻¹ G Λ_d⁻¹, KL clipping, then SGD
// momentum and weight decay. Parameters outside dense layers get the plain SGD step.
import { add, eq, mul, ne, sub, where, zeros, zerosLike, type Tensor } from '../dsl/index.js';
import { defineOptimizer, outside, treeMap } from '../dsl/optimizer.js';
import {
  fisherTaps,
  gradientLookup,
  initialLayerState,
  klClipFactor,
  layerDirections,
  layerGrad,
  piRuleInverses,
  precondition,
  updatedFactors,
  type LayerState,
} from './kronecker.js';

const HYPER = {
  lr: 1e-2,
  momentum: 0.9,
  weightDecay: 0,
  damping: 1e-3,
  statDecay: 0.95,
  covEvery: 10,
  inverseEvery: 100,
  klClip: 1e-3,
  /**
   * 'mc': Γ from labels sampled from the model's softmax (the true Fisher, KFAC-Pytorch);
   * 'empirical': from the batch's labels.
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
   * 'identity': factors start at I and are averaged from the first statistics (KFAC-Pytorch);
   * 'first': they start at the first statistics.
   */
  factorInit: 'identity',
  /**
   * Newton–Schulz steps per inverse refresh (warm-started), and power-iteration steps for λ_max.
   */
  inverseIterations: 12,
  powerSteps: 8,
};

export const kfac = defineOptimizer({
  name: 'kfac',
  hyper: HYPER,
  static: ['covEvery', 'inverseEvery', 'inverseIterations', 'powerSteps'],
  validate: (h) =>
    outside('lr', h.lr, 0, Infinity) ??
    outside('momentum', h.momentum, 0, 1) ??
    outside('weightDecay', h.weightDecay, 0, Infinity) ??
    outside('damping', h.damping, Number.MIN_VALUE, Infinity) ??
    outside('statDecay', h.statDecay, 0, 1) ??
    outside('klClip', h.klClip, Number.MIN_VALUE, Infinity) ??
    (![h.covEvery, h.inverseEvery, h.inverseIterations, h.powerSteps].every(
      (n) => Number.isInteger(n) && n >= 1,
    )
      ? 'covEvery, inverseEvery, inverseIterations and powerSteps must be positive integers'
      : undefined) ??
    (h.weightSharing !== 'expand' && h.weightSharing !== 'reduce'
      ? `weightSharing must be 'expand' or 'reduce', got '${h.weightSharing}'`
      : undefined) ??
    (h.fisher !== 'mc' && h.fisher !== 'empirical'
      ? `fisher must be 'mc' or 'empirical', got '${h.fisher}'`
      : undefined) ??
    (h.factorInit !== 'identity' && h.factorInit !== 'first'
      ? `factorInit must be 'identity' or 'first', got '${h.factorInit}'`
      : undefined),
  init: (params, h, layers) => ({
    layers: layers.map((layer): LayerState => initialLayerState(layer, h.factorInit)),
    momentum: treeMap(zerosLike, params),
    started: zeros([]) as Tensor,
    /**
     * Inverse refreshes whose first Newton–Schulz attempt missed the tolerance (the guarded restart
     * ran).
     */
    fallbacks: zeros([]) as Tensor,
  }),
  report: { fallbacks: (state) => state.fallbacks },
  update: (ctx) => {
    const { params, grads, state, hyper, settings, every, map } = ctx;
    // Monte-Carlo Fisher: g from labels sampled from the model's own predictions (one extra
    // backward).
    const taps = fisherTaps(ctx, settings.fisher, state.layers.length, 'kfac');
    const gradOf = gradientLookup(params, grads, 'kfac');
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
      const inverses = every(
        settings.inverseEvery,
        () =>
          piRuleInverses(
            lambda,
            gamma,
            old,
            hyper.damping,
            settings.inverseIterations,
            settings.powerSteps,
          ),
        () => ({
          lambdaInv: old.lambdaInv,
          gammaInv: old.gammaInv,
          lambdaVec: old.lambdaVec,
          gammaVec: old.gammaVec,
          fellBack: zeros([]) as Tensor,
        }),
      );
      fallbacks = add(fallbacks, inverses.fellBack);
      const g = layerGrad(tap, gradOf);
      const v = precondition(inverses.gammaInv, g, inverses.lambdaInv);
      return {
        tap,
        g,
        v,
        state: {
          lambda,
          gamma,
          lambdaInv: inverses.lambdaInv,
          gammaInv: inverses.gammaInv,
          lambdaVec: inverses.lambdaVec,
          gammaVec: inverses.gammaVec,
        },
      };
    });

    // Preconditioned directions (KL-clipped) for the dense layers' parameters, the gradient
    // elsewhere.
    const nu = klClipFactor(layers, hyper.lr, hyper.klClip);
    const direction = layerDirections(layers.map(({ tap, v }) => ({ tap, v: mul(nu, v) })));
    const d = map(
      (p, g) => add(direction.get(p.node) ?? g, mul(hyper.weightDecay, p)),
      params,
      grads,
    );
    // SGD momentum after preconditioning (PyTorch's convention: the buffer starts as d).
    const active = ne(hyper.momentum, 0);
    const b = map(
      (bi, di) => where(first, di, where(active, add(mul(hyper.momentum, bi), di), di)),
      state.momentum,
      d,
    );
    return {
      params: map((p, bi) => sub(p, mul(hyper.lr, bi)), params, b),
      state: {
        layers: layers.map((l) => l.state),
        momentum: b,
        started: where(first, 1, state.started),
        fallbacks,
      },
    };
  },
});
