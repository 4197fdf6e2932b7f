// AdaBelief (Zhuang et al. 2020, "AdaBelief Optimizer: Adapting Stepsizes by the Belief in
// Observed Gradients"), written by a user as pure tensor expressions: Adam whose second moment
// tracks the gradient's deviation from its running mean, s = EMA((g − m)²) + ε, instead of g².
// Steps are large where the gradient agrees with its trend and small where it is noisy.
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
  type Tensor,
} from '../../index.js';

export const adabelief = defineOptimizer({
  name: 'adabelief',
  hyper: { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-16, weightDecay: 0 },
  validate: (h) =>
    outside('lr', h.lr, 0, Infinity) ??
    outside('beta1', h.beta1, 0, 1) ??
    outside('beta2', h.beta2, 0, 1) ??
    outside('eps', h.eps, 0, Infinity) ??
    outside('weightDecay', h.weightDecay, 0, Infinity),
  init: (params) => ({ m: treeMap(zerosLike, params), s: treeMap(zerosLike, params) }),
  update: ({ params, grads, state, hyper: { lr, beta1, beta2, eps, weightDecay }, t, map }) => {
    // m ← β₁m + (1 − β₁)g; s ← β₂s + (1 − β₂)(g − m)² + ε (the paper's Algorithm 2, with the new
    // m).
    const m = map((g, mi) => add(mul(beta1, mi), mul(sub(1, beta1), g)), grads, state.m);
    const s = map(
      (g, mi, si) => add(add(mul(beta2, si), mul(sub(1, beta2), square(sub(g, mi)))), eps),
      grads,
      m,
      state.s,
    );
    // θ ← θ − η (m̂ / (√ŝ + ε) + λθ), with m̂ = m/(1 − β₁ᵗ), ŝ = s/(1 − β₂ᵗ) (decoupled decay).
    const step = (mi: Tensor, si: Tensor) =>
      div(div(mi, sub(1, pow(beta1, t))), add(sqrt(div(si, sub(1, pow(beta2, t)))), eps));
    return {
      params: map(
        (p, mi, si) => sub(p, mul(lr, add(step(mi, si), mul(weightDecay, p)))),
        params,
        m,
        s,
      ),
      state: { m, s },
    };
  },
});
