// SGD with momentum, PyTorch's convention (grng-spec.md §6.1): coupled L2 weight decay, the
// momentum buffer starts as the first gradient, optional dampening and Nesterov momentum.
import { add, eq, mul, sub, where, zerosLike } from '../dsl/index.js';
import { defineOptimizer, outside, treeMap } from '../dsl/optimizer.js';

export const sgd = defineOptimizer({
  name: 'sgd',
  hyper: { lr: 1e-2, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false },
  validate: (h) =>
    outside('lr', h.lr, 0, Infinity) ??
    outside('momentum', h.momentum, 0, Infinity) ??
    outside('dampening', h.dampening, 0, 1, true) ??
    outside('weightDecay', h.weightDecay, 0, Infinity) ??
    (h.nesterov && (h.momentum <= 0 || h.dampening !== 0) ? `nesterov needs momentum > 0 and dampening = 0 (as in PyTorch), got momentum ${h.momentum}, dampening ${h.dampening}` : undefined),
  init: (params) => ({ momentum: treeMap(zerosLike, params) }),
  update: ({ params, grads, state, hyper, t, map }) => {
    const { lr, momentum, dampening, weightDecay } = hyper;
    const g = map((gi, p) => add(gi, mul(weightDecay, p)), grads, params);
    // b₁ = g₁, then b_t = μ b_{t−1} + (1 − τ) g_t.
    const b = map((bi, gi) => where(eq(t, 1), gi, add(mul(momentum, bi), mul(sub(1, dampening), gi))), state.momentum, g);
    // With μ = 0 PyTorch keeps no buffer: the direction is the gradient itself.
    const direction = map((gi, bi) => where(eq(momentum, 0), gi, hyper.nesterov ? add(gi, mul(momentum, bi)) : bi), g, b);
    return { params: map((p, d) => sub(p, mul(lr, d)), params, direction), state: { momentum: b } };
  },
});
