// Adam (Kingma & Ba 2015; docs/algorithms.md §6.2): bias-corrected moments, weight decay as L2
// added to the gradient (PyTorch's Adam).
import { add, div, mul, pow, sqrt, square, sub, zerosLike, type Tensor } from '../dsl/index.js';
import { defineOptimizer, outside, treeMap, type ParamTree } from '../dsl/optimizer.js';

export const ADAM_DEFAULTS = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };

export function checkAdamHyper(h: typeof ADAM_DEFAULTS): string | undefined {
  return (
    outside('lr', h.lr, 0, Infinity) ??
    outside('beta1', h.beta1, 0, 1) ??
    outside('beta2', h.beta2, 0, 1) ??
    outside('eps', h.eps, 0, Infinity) ??
    outside('weightDecay', h.weightDecay, 0, Infinity)
  );
}

/** m_t, v_t and the bias-corrected step m̂/(√v̂ + ε) for one tensor. */
export function adamMoments(
  g: Tensor,
  m: Tensor,
  v: Tensor,
  hyper: { beta1: Tensor; beta2: Tensor; eps: Tensor },
  t: Tensor,
): { m: Tensor; v: Tensor; step: Tensor } {
  const { beta1, beta2, eps } = hyper;
  const m1 = add(mul(beta1, m), mul(sub(1, beta1), g));
  const v1 = add(mul(beta2, v), mul(sub(1, beta2), square(g)));
  const mHat = div(m1, sub(1, pow(beta1, t)));
  const vHat = div(v1, sub(1, pow(beta2, t)));
  return { m: m1, v: v1, step: div(mHat, add(sqrt(vHat), eps)) };
}

export const adam = defineOptimizer({
  name: 'adam',
  hyper: ADAM_DEFAULTS,
  validate: checkAdamHyper,
  init: (params: ParamTree) => ({ m: treeMap(zerosLike, params), v: treeMap(zerosLike, params) }),
  update: ({ params, grads, state, hyper, t, map }) => {
    const g = map((gi, p) => add(gi, mul(hyper.weightDecay, p)), grads, params);
    const moments = (gi: Tensor, m: Tensor, v: Tensor) => adamMoments(gi, m, v, hyper, t);
    return {
      params: map(
        (p, gi, m, v) => sub(p, mul(hyper.lr, moments(gi, m, v).step)),
        params,
        g,
        state.m,
        state.v,
      ),
      state: {
        m: map((gi, m, v) => moments(gi, m, v).m, g, state.m, state.v),
        v: map((gi, m, v) => moments(gi, m, v).v, g, state.m, state.v),
      },
    };
  },
});
