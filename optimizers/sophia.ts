// Sophia (Liu et al. 2023; docs/algorithms.md §6.5): momentum clipped by a diagonal Hessian
// estimate, θ ← θ − η·clip(m / max(γh, ε), 1) after decoupled weight decay; h is an EMA refreshed
// every k steps (t = 1, 1 + k, …) from Hutchinson's u ⊙ (∇²L u), u ~ N(0, I) (Sophia-H), or from
// the Gauss–Newton–Bartlett estimate B·∇L̂ ⊙ ∇L̂ with labels sampled from the model (Sophia-G).
import {
  add,
  categorical,
  div,
  foldIn,
  grad,
  maximum,
  minimum,
  mul,
  normal,
  stopGradient,
  sub,
  zerosLike,
  type Tensor,
  flattenTree,
} from '../dsl/index.js';
import { defineOptimizer, outside, treeMap, type ParamTree } from '../dsl/optimizer.js';
import { isTensor } from '../dsl/tensor.js';

export const sophia = defineOptimizer({
  name: 'sophia',
  // The official repository's defaults; the paper's ε.
  hyper: {
    lr: 1e-4,
    beta1: 0.965,
    beta2: 0.99,
    rho: 0.04,
    eps: 1e-12,
    weightDecay: 0.1,
    every: 10,
    estimator: 'hutchinson',
  },
  static: ['every'],
  validate: (h) =>
    outside('lr', h.lr, 0, Infinity) ??
    outside('beta1', h.beta1, 0, 1) ??
    outside('beta2', h.beta2, 0, 1) ??
    outside('rho', h.rho, Number.MIN_VALUE, Infinity) ??
    outside('eps', h.eps, Number.MIN_VALUE, Infinity) ??
    outside('weightDecay', h.weightDecay, 0, Infinity) ??
    (!Number.isInteger(h.every) || h.every < 1
      ? `every must be a positive integer, got ${h.every}`
      : undefined) ??
    (h.estimator !== 'hutchinson' && h.estimator !== 'gnb'
      ? `estimator must be 'hutchinson' or 'gnb', got '${h.estimator}'`
      : undefined),
  init: (params: ParamTree) => ({ m: treeMap(zerosLike, params), h: treeMap(zerosLike, params) }),
  update: (ctx) => {
    const { params, grads, state, hyper, settings, map, every } = ctx;
    const { lr, beta1, beta2, rho, eps, weightDecay } = hyper;
    const m = map((mi, g) => add(mul(beta1, mi), mul(sub(1, beta1), g)), state.m, grads);
    const h = every(
      settings.every,
      () =>
        map(
          (hi, e) => add(mul(beta2, hi), mul(sub(1, beta2), e)),
          state.h,
          settings.estimator === 'gnb' ? gaussNewtonBartlett(ctx) : hutchinson(ctx),
        ),
      () => state.h,
    );
    const step = (p: Tensor, mi: Tensor, hi: Tensor) => {
      const ratio = div(mi, maximum(mul(rho, hi), eps));
      return sub(mul(p, sub(1, mul(lr, weightDecay))), mul(lr, maximum(minimum(ratio, 1), -1)));
    };
    return { params: map(step, params, m, h), state: { m, h } };
  },
});

/** u ⊙ (∇²L u) with u ~ N(0, I), one key per parameter tensor. */
function hutchinson(ctx: {
  params: ParamTree;
  key: Tensor;
  hvp(v: ParamTree): ParamTree;
  map: (f: (...l: Tensor[]) => Tensor, ...t: ParamTree[]) => ParamTree;
}): ParamTree {
  const leaves = flattenTree('sophia', ctx.params, isTensor, 'a Tensor');
  const u = leaves.rebuild(
    leaves.leaves.map((p, i) => normal(foldIn(ctx.key, i + 2), p.shape)),
  ) as ParamTree;
  return ctx.map((ui, hu) => mul(ui, hu), u, ctx.hvp(u));
}

/** B·∇L̂ ⊙ ∇L̂, L̂ the loss at labels sampled from the model's own softmax. */
function gaussNewtonBartlett(ctx: {
  params: ParamTree;
  key: Tensor;
  labels: Tensor;
  output(p: ParamTree): Tensor;
  loss(p: ParamTree, labels?: Tensor): Tensor;
  map: (f: (...l: Tensor[]) => Tensor, ...t: ParamTree[]) => ParamTree;
}): ParamTree {
  const sampled = categorical(foldIn(ctx.key, 1), stopGradient(ctx.output(ctx.params)));
  const g = grad((p: ParamTree) => ctx.loss(p, sampled))(ctx.params) as ParamTree;
  const batch = ctx.labels.shape[0];
  return ctx.map((gi) => mul(batch, mul(gi, gi)), g);
}

/**
 * Sophia's two diagonal-Hessian estimators as the update uses them, exported for the B6 tests
 * (test/optimizers/sophia-estimators.test.ts): Hutchinson's u ⊙ (∇²L u) and the
 * Gauss–Newton–Bartlett B·∇L̂ ⊙ ∇L̂.
 */
export {
  hutchinson as sophiaHutchinsonEstimate,
  gaussNewtonBartlett as sophiaGaussNewtonBartlettEstimate,
};
