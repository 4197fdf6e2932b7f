// AdamW (Loshchilov & Hutter 2019, PyTorch form; docs/algorithms.md §6.3): θ ← θ(1 − η λ_wd), then
// the Adam step on the raw gradient; the decay never enters the moments.
import { mul, sub, zerosLike, type Tensor } from '../dsl/index.js';
import { defineOptimizer, treeMap, type ParamTree } from '../dsl/optimizer.js';
import { ADAM_DEFAULTS, adamMoments, checkAdamHyper } from './adam.js';

export const adamw = defineOptimizer({
  name: 'adamw',
  hyper: { ...ADAM_DEFAULTS, weightDecay: 1e-2 },
  validate: checkAdamHyper,
  init: (params: ParamTree) => ({ m: treeMap(zerosLike, params), v: treeMap(zerosLike, params) }),
  update: ({ params, grads, state, hyper, t, map }) => {
    const moments = (g: Tensor, m: Tensor, v: Tensor) => adamMoments(g, m, v, hyper, t);
    const decayed = (p: Tensor) => mul(p, sub(1, mul(hyper.lr, hyper.weightDecay)));
    return {
      params: map(
        (p, g, m, v) => sub(decayed(p), mul(hyper.lr, moments(g, m, v).step)),
        params,
        grads,
        state.m,
        state.v,
      ),
      state: {
        m: map((g, m, v) => moments(g, m, v).m, grads, state.m, state.v),
        v: map((g, m, v) => moments(g, m, v).v, grads, state.m, state.v),
      },
    };
  },
});
