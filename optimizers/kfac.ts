// K-FAC (Martens & Grosse 2015) as KFAC-Pytorch runs it (grng-spec.md §6.4): per dense layer,
// Kronecker factors Λ = E[aaᵀ], Γ = E[ggᵀ] (moving averages, refreshed every covEvery steps),
// factored Tikhonov damping (Λ + π√λ I) ⊗ (Γ + √λ/π I), inverses by Newton–Schulz (refreshed
// every inverseEvery steps), preconditioned gradient V = Γ_d⁻¹ G Λ_d⁻¹, KL clipping, then SGD
// momentum and weight decay. Parameters outside dense layers get the plain SGD step.
import { GrngError } from '../compiler/errors.js';
import { add, categorical, concat, div, eq, expandDims, eye, foldIn, le, matmul, maximum, minimum, mul, ne, reshape, slice, sqrt, stopGradient, sub, sum, trace, where, zeros, zerosLike, type Tensor } from '../dsl/index.js';
import { ema, guardedInverse, kroneckerFactors, powerIteration } from '../dsl/curvature/index.js';
import { defineOptimizer, outside, treeMap, type LayerTap } from '../dsl/optimizer.js';
import { isTensor } from '../dsl/tensor.js';
import { flattenTree } from '../dsl/tree.js';

interface LayerState {
  readonly lambda: Tensor;
  readonly gamma: Tensor;
  readonly lambdaInv: Tensor;
  readonly gammaInv: Tensor;
  /** Power-iteration vectors, warm-started from step to step. */
  readonly lambdaVec: Tensor;
  readonly gammaVec: Tensor;
}

const HYPER = {
  lr: 1e-2,
  momentum: 0.9,
  weightDecay: 0,
  damping: 1e-3,
  statDecay: 0.95,
  covEvery: 10,
  inverseEvery: 100,
  klClip: 1e-3,
  /** 'mc': Γ from labels sampled from the model's softmax (the true Fisher, KFAC-Pytorch); 'empirical': from the batch's labels. */
  fisher: 'mc',
  /** 'identity': factors start at I and are averaged from the first statistics (KFAC-Pytorch); 'first': they start at the first statistics. */
  factorInit: 'identity',
  /** Newton–Schulz steps per inverse refresh (warm-started), and power-iteration steps for λ_max. */
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
    (![h.covEvery, h.inverseEvery, h.inverseIterations, h.powerSteps].every((n) => Number.isInteger(n) && n >= 1) ? 'covEvery, inverseEvery, inverseIterations and powerSteps must be positive integers' : undefined) ??
    (h.fisher !== 'mc' && h.fisher !== 'empirical' ? `fisher must be 'mc' or 'empirical', got '${h.fisher}'` : undefined) ??
    (h.factorInit !== 'identity' && h.factorInit !== 'first' ? `factorInit must be 'identity' or 'first', got '${h.factorInit}'` : undefined),
  init: (params, h, layers) => ({
    layers: layers.map((layer): LayerState => {
      const [dOut, dIn] = [layer.w.shape[0], layer.w.shape[1] + (layer.b === undefined ? 0 : 1)];
      const start = (n: number) => (h.factorInit === 'identity' ? eye(n) : zeros([n, n]));
      return { lambda: start(dIn), gamma: start(dOut), lambdaInv: eye(dIn), gammaInv: eye(dOut), lambdaVec: onesVector(dIn), gammaVec: onesVector(dOut) };
    }),
    momentum: treeMap(zerosLike, params),
    started: zeros([]) as Tensor,
    /** Inverse refreshes whose first Newton–Schulz attempt missed the tolerance (the guarded restart ran). */
    fallbacks: zeros([]) as Tensor,
  }),
  report: { fallbacks: (state) => state.fallbacks },
  update: (ctx) => {
    const { params, grads, state, hyper, settings, every, map } = ctx;
    // Monte-Carlo Fisher: g from labels sampled from the model's own predictions (one extra backward).
    const taps = settings.fisher === 'mc' ? ctx.tapsFor(categorical(foldIn(ctx.key, 1), stopGradient(ctx.output(params)))) : ctx.taps;
    if (taps.length !== state.layers.length) throw new GrngError('kfac', `the model has ${taps.length} dense layers but the state was made for ${state.layers.length}`);
    const leaves = flattenTree('kfac', params, isTensor, 'a Tensor').leaves;
    const gradLeaves = flattenTree('kfac', grads, isTensor, 'a Tensor').leaves;
    const gradOf = (p: Tensor) => gradLeaves[leaves.findIndex((l) => l.node === p.node)];
    const first = eq(state.started, 0);
    let fallbacks = state.fallbacks;

    const layers = taps.map((tap, i) => {
      const old = state.layers[i];
      const fresh = kroneckerFactors(tap);
      const average = (prev: Tensor, stat: Tensor) => (settings.factorInit === 'first' ? where(first, stat, ema(prev, stat, hyper.statDecay)) : ema(prev, stat, hyper.statDecay));
      const [lambda, gamma] = every(settings.covEvery, () => [average(old.lambda, fresh.lambda), average(old.gamma, fresh.gamma)], () => [old.lambda, old.gamma]);
      const inverses = every(
        settings.inverseEvery,
        () => dampedInverses(lambda, gamma, old, hyper.damping, settings.inverseIterations, settings.powerSteps),
        () => ({ lambdaInv: old.lambdaInv, gammaInv: old.gammaInv, lambdaVec: old.lambdaVec, gammaVec: old.gammaVec, fellBack: zeros([]) as Tensor }),
      );
      fallbacks = add(fallbacks, inverses.fellBack);
      const g = layerGrad(tap, gradOf);
      const v = matmul(matmul(inverses.gammaInv, g), inverses.lambdaInv);
      return { tap, g, v, state: { lambda, gamma, lambdaInv: inverses.lambdaInv, gammaInv: inverses.gammaInv, lambdaVec: inverses.lambdaVec, gammaVec: inverses.gammaVec } };
    });

    // KL clipping: ν = min(1, √(κ / (η² Σ⟨V, G⟩))); a non-positive Σ leaves ν = 1.
    const inner = layers.reduce<Tensor>((acc, l) => add(acc, sum(mul(l.v, l.g))), zeros([]));
    const quota = mul(mul(hyper.lr, hyper.lr), inner);
    const nu = where(le(quota, 0), 1, minimum(1, sqrt(div(hyper.klClip, maximum(quota, 1e-30)))));

    // Preconditioned directions for the dense layers' parameters, the gradient elsewhere.
    const direction = new Map<Tensor['node'], Tensor>();
    for (const { tap, v } of layers) {
      const scaled = mul(nu, v);
      const dIn = tap.w.shape[1];
      direction.set(tap.w.node, slice(scaled, [0, 0], [tap.w.shape[0], dIn]));
      if (tap.b !== undefined) direction.set(tap.b.node, reshape(slice(scaled, [0, dIn], [tap.w.shape[0], dIn + 1]), [tap.w.shape[0]]));
    }
    const d = map((p, g) => add(direction.get(p.node) ?? g, mul(hyper.weightDecay, p)), params, grads);
    // SGD momentum after preconditioning (PyTorch's convention: the buffer starts as d).
    const active = ne(hyper.momentum, 0);
    const b = map((bi, di) => where(first, di, where(active, add(mul(hyper.momentum, bi), di), di)), state.momentum, d);
    return {
      params: map((p, bi) => sub(p, mul(hyper.lr, bi)), params, b),
      state: { layers: layers.map((l) => l.state), momentum: b, started: where(first, 1, state.started), fallbacks },
    };
  },
});

function onesVector(n: number): Tensor {
  return add(zeros([n]), 1);
}

/** The layer gradient [∂L/∂W | ∂L/∂b] from the parameter gradients. */
function layerGrad(tap: LayerTap, gradOf: (p: Tensor) => Tensor): Tensor {
  const gw = gradOf(tap.w);
  return tap.b === undefined ? gw : concat([gw, expandDims(gradOf(tap.b), 1)], 1);
}

/**
 * Inverses of the factored-Tikhonov damped factors Λ + π√λ I and Γ + (√λ/π) I, with
 * π = √((tr Λ / d_in) / (tr Γ / d_out)) (Martens & Grosse's π-rule), by Newton–Schulz warm-started
 * from the previous inverses, λ_max by warm-started power iteration.
 */
function dampedInverses(lambda: Tensor, gamma: Tensor, old: LayerState, damping: Tensor, iterations: number, powerSteps: number) {
  const [dIn, dOut] = [lambda.shape[0], gamma.shape[0]];
  const meanEig = (f: Tensor, n: number) => maximum(div(trace(f), n), 1e-30);
  const pi = sqrt(div(meanEig(lambda, dIn), meanEig(gamma, dOut)));
  const root = sqrt(damping);
  const lambdaD = add(lambda, mul(mul(pi, root), eye(dIn)));
  const gammaD = add(gamma, mul(div(root, pi), eye(dOut)));
  const invert = (a: Tensor, x0: Tensor, v0: Tensor) => {
    const top = powerIteration(a, v0, powerSteps);
    return { ...guardedInverse(a, { lambdaMax: top.value, x0, iterations, extra: iterations, tolerance: 1e-3 }), vector: top.vector };
  };
  const l = invert(lambdaD, old.lambdaInv, old.lambdaVec);
  const g = invert(gammaD, old.gammaInv, old.gammaVec);
  return { lambdaInv: l.inverse, gammaInv: g.inverse, lambdaVec: l.vector, gammaVec: g.vector, fellBack: maximum(l.fellBack, g.fellBack) };
}
