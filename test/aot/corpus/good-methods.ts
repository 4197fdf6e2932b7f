// Parsed by test/aot/purity.test.ts, never run. Pure optimizers in other shapes: method syntax, a
// definition held in a const, `export { x as y }`, `export default`, a report object held in a
// const, helpers in an object, and locals that shadow global names.
import { defineOptimizer, mul, sub, treeMap, zeros, zerosLike, type OptimizerDefinition, type ParamTree, type Tensor } from '../../../index.js';

const helpers = {
  decay: (p: Tensor, rate: Tensor) => mul(p, sub(1, rate)),
};

const REPORT = { steps: (state: { readonly t: Tensor }) => state.t };

const heavy = defineOptimizer({
  name: 'heavy',
  hyper: { lr: 0.1, momentum: 0.9 },
  init(params: ParamTree) {
    return { v: treeMap(zerosLike, params), t: zeros([]) as Tensor };
  },
  update(ctx) {
    // Shadows the global: a local, so not a clock.
    const performance = mul(ctx.hyper.momentum, 1);
    const v = ctx.map((vi, g) => sub(mul(performance, vi), g), ctx.state.v, ctx.grads);
    return { params: ctx.map((p, vi) => helpers.decay(sub(p, mul(ctx.hyper.lr, vi)), ctx.hyper.lr), ctx.params, v), state: { v, t: ctx.t } };
  },
  report: REPORT,
});
export { heavy as heavyBall };

const DEFINITION: OptimizerDefinition<{ lr: number }, { readonly t: Tensor }> = {
  name: 'plain',
  hyper: { lr: 0.1 },
  init: () => ({ t: zeros([]) as Tensor }),
  update: function plain(ctx) {
    return { params: ctx.map((p, g) => sub(p, mul(ctx.hyper.lr, g)), ctx.params, ctx.grads), state: { t: ctx.t } };
  },
};
export default defineOptimizer(DEFINITION);
