// SGD with momentum, PyTorch's convention (docs/algorithms.md §6.1): coupled L2 weight decay, the
// momentum buffer starts as the gradient of the first step with μ ≠ 0, optional dampening and
// Nesterov momentum; with μ = 0 there is no buffer and the direction is the gradient.
import { add, eq, mul, ne, sub, where, zeros, zerosLike, type Tensor } from '../dsl/index.js';
import { defineOptimizer, outside, treeMap } from '../dsl/optimizer.js';

export const sgd = defineOptimizer({
  name: 'sgd',
  hyper: { lr: 1e-2, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false },
  validate: (h) =>
    outside('lr', h.lr, 0, Infinity) ??
    outside('momentum', h.momentum, 0, Infinity) ??
    outside('dampening', h.dampening, 0, 1, true) ??
    outside('weightDecay', h.weightDecay, 0, Infinity) ??
    (h.nesterov && (h.momentum <= 0 || h.dampening !== 0)
      ? `nesterov needs momentum > 0 and dampening = 0 (as in PyTorch), got ` +
        `momentum ${h.momentum}, dampening ${h.dampening}`
      : undefined),
  // `started` is 1 once a step with μ ≠ 0 has created the buffer (μ is a runtime value, so this is
  // state).
  init: (params) => ({ momentum: treeMap(zerosLike, params), started: zeros([]) as Tensor }),
  update: ({ params, grads, state, hyper, map }) => {
    const { lr, momentum, dampening, weightDecay } = hyper;
    const active = ne(momentum, 0);
    const fresh = eq(state.started, 0);
    const g = map((gi, p) => add(gi, mul(weightDecay, p)), grads, params);
    // b ← g on the buffer's first step, else μ b + (1 − τ) g; untouched while μ = 0.
    const b = map(
      (bi, gi) =>
        where(active, where(fresh, gi, add(mul(momentum, bi), mul(sub(1, dampening), gi))), bi),
      state.momentum,
      g,
    );
    const direction = map(
      (gi, bi) => where(active, hyper.nesterov ? add(gi, mul(momentum, bi)) : bi, gi),
      g,
      b,
    );
    return {
      params: map((p, d) => sub(p, mul(lr, d)), params, direction),
      state: { momentum: b, started: where(active, 1, state.started) },
    };
  },
});
