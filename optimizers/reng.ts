// RENG, Regularized Explicit Natural Gradient (docs/algorithms.md §4): RING's preconditioner
// applied to the gradient of the gradient-regularized loss L_G = L + (ρ/2)‖∇L‖², ∇L_G = ∇L + ρ·H∇L,
// by double backprop (a Hessian-vector product with v = ∇L over all trainable parameters) or, as
// options, by the finite differences of §4.2. The damping coefficient ε_R defaults to √ρ, so RING
// and RENG share the preconditioner and differ only in the gradient.
import { add, div, grad, mul, stopGradient, sub } from '../dsl/index.js';
import { defineOptimizer, outside, type ParamTree } from '../dsl/optimizer.js';
import {
  dampingCoefficient,
  initRing,
  RING_HYPER,
  RING_REPORT,
  RING_STATIC,
  ringStep,
  validateRing,
} from './ring.js';

export const reng = defineOptimizer({
  name: 'reng',
  hyper: {
    ...RING_HYPER,
    /**
     * How ∇L_G is computed: 'double_backprop' (exact), 'fd_forward' (Karakida's F-GR, O(ε)) or
     * 'fd_central' (O(ε²)).
     */
    gradient: 'double_backprop',
    /** The finite-difference step ε along ∇L. */
    fdEps: 1e-3,
  },
  static: [...RING_STATIC],
  validate: (h) =>
    validateRing(h) ??
    outside('fdEps', h.fdEps, Number.MIN_VALUE, Infinity) ??
    (!['double_backprop', 'fd_forward', 'fd_central'].includes(h.gradient)
      ? `gradient must be 'double_backprop', 'fd_forward' or 'fd_central', got '${h.gradient}'`
      : undefined),
  init: (params, h, layers) => initRing(params, h, layers),
  report: RING_REPORT,
  update: (ctx) => {
    const { params, grads, hyper, settings, map } = ctx;
    const { rho, fdEps } = hyper;
    const gradientAt = (shifted: ParamTree) =>
      grad((p: ParamTree) => ctx.loss(p))(shifted) as ParamTree;
    const along = (sign: number) =>
      map((p, g) => add(p, mul(mul(sign, fdEps), stopGradient(g))), params, grads);
    let regularized: ParamTree;
    if (settings.gradient === 'fd_forward') {
      // ∇L + (ρ/ε)(∇L(θ + ε∇L) − ∇L)
      regularized = map(
        (g, gp) => add(g, mul(div(rho, fdEps), sub(gp, g))),
        grads,
        gradientAt(along(1)),
      );
    } else if (settings.gradient === 'fd_central') {
      // ∇L + (ρ/2ε)(∇L(θ + ε∇L) − ∇L(θ − ε∇L))
      regularized = map(
        (g, gp, gm) => add(g, mul(div(rho, mul(2, fdEps)), sub(gp, gm))),
        grads,
        gradientAt(along(1)),
        gradientAt(along(-1)),
      );
    } else {
      // ∇L + ρ·H∇L: H∇L = ∇(½‖∇L‖²), global over every trainable parameter.
      regularized = map((g, hg) => add(g, mul(rho, hg)), grads, ctx.hvp(grads));
    }
    return ringStep(ctx, regularized, dampingCoefficient(hyper), 'reng');
  },
});
