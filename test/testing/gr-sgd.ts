// Gradient-regularized SGD, θ ← θ − η (g + ρ·H g), and its float64 reference: the smallest
// optimizer that needs Hessian-vector products, used to test checkTrainingOptimizer itself.
import { add, defineOptimizer, mul, sub } from '../../index.js';
import type { TrainingReferenceContext } from '../../testing.js';

export const grSgd = defineOptimizer({
  name: 'gr-sgd',
  hyper: { lr: 0.1, rho: 0.5 },
  init: () => ({}),
  update: ({ params, grads, hyper: { lr, rho }, map, hvp }) => {
    const hg = hvp(grads);
    return {
      params: map((p, g, h) => sub(p, mul(lr, add(g, mul(rho, h)))), params, grads, hg),
      state: {},
    };
  },
});

/** The reference step; `rhoScale` ≠ 1 is the deliberately wrong one. */
export const grSgdReference =
  (rhoScale = 1) =>
  (ctx: TrainingReferenceContext<{ lr: number; rho: number }>) => {
    const hg = ctx.hvp(ctx.grads);
    const rho = rhoScale * ctx.hyper.rho;
    return {
      params: ctx.params.map((p, k) =>
        p.map((e, i) => e - ctx.hyper.lr * (ctx.grads[k][i] + rho * hg[k][i])),
      ),
      state: undefined,
    };
  };
