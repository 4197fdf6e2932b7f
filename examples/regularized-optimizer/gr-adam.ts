// GR-Adam: Adam on the gradient of the gradient-regularized loss L_G = L + (ρ/2)‖∇L‖², i.e. on
// ∇L_G = ∇L + ρ·H∇L (docs/algorithms.md §4.1). H∇L is one Hessian-vector product, ctx.hvp(grads),
// as RENG computes it; RENG preconditions ∇L_G with Kronecker factors, GR-Adam with Adam's moments.
// In your project, import from 'grng' instead of '../../index.js'.
import {
  add,
  defineOptimizer,
  div,
  mul,
  outside,
  pow,
  sqrt,
  square,
  sub,
  treeMap,
  zerosLike,
} from '../../index.js';

export const grAdam = defineOptimizer({
  name: 'gr-adam',
  // Adam's defaults (PyTorch); ρ 1e-2 is RING's and RENG's in the README's comparison.
  hyper: { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, rho: 1e-2 },
  validate: (h) =>
    outside('lr', h.lr, 0, Infinity) ??
    outside('beta1', h.beta1, 0, 1) ??
    outside('beta2', h.beta2, 0, 1) ??
    outside('eps', h.eps, 0, Infinity) ??
    outside('weightDecay', h.weightDecay, 0, Infinity) ??
    outside('rho', h.rho, 0, Infinity),
  init: (params) => ({ m: treeMap(zerosLike, params), v: treeMap(zerosLike, params) }),
  update: ({
    params,
    grads,
    state,
    hyper: { lr, beta1, beta2, eps, weightDecay, rho },
    t,
    map,
    hvp,
  }) => {
    // g = ∇L + ρ·H∇L + λθ: the regularized gradient, then L2 decay added as PyTorch's Adam does
    // (the penalty is on the data loss's gradient only, not on the decay term's).
    const hg = hvp(grads);
    const g = map(
      (gi, hi, p) => add(add(gi, mul(rho, hi)), mul(weightDecay, p)),
      grads,
      hg,
      params,
    );
    const m = map((gi, mi) => add(mul(beta1, mi), mul(sub(1, beta1), gi)), g, state.m);
    const v = map((gi, vi) => add(mul(beta2, vi), mul(sub(1, beta2), square(gi))), g, state.v);
    // θ ← θ − η·m̂/(√v̂ + ε), with m̂ = m/(1 − β₁ᵗ), v̂ = v/(1 − β₂ᵗ).
    const [c1, c2] = [sub(1, pow(beta1, t)), sub(1, pow(beta2, t))];
    const next = map(
      (p, mi, vi) => sub(p, mul(lr, div(div(mi, c1), add(sqrt(div(vi, c2)), eps)))),
      params,
      m,
      v,
    );
    return { params: next, state: { m, v } };
  },
});
