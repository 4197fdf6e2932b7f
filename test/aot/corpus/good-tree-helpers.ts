// Parsed by test/aot/purity.test.ts, never run. Pure: reductions over whole parameter trees with
// grng's tree helpers instead of a recursive walk (which the check refuses), and a module-level
// alias of a pure Math function.
import { add, defineOptimizer, div, globalNorm, maximum, mul, sub, treeLeaves, treeMap, treeSum } from '../../../index.js';

const { sqrt } = Math;
const clipAt = 1;

export const clippedSgd = defineOptimizer({
  name: 'clipped-sgd',
  hyper: { lr: 0.1 },
  init: () => ({}),
  update: ({ params, grads, state, hyper, map }) => {
    const scale = div(clipAt, maximum(globalNorm(grads), clipAt));
    const drift = mul(treeSum(treeMap((g, p) => mul(g, p), grads, params)), sqrt(treeLeaves(params).length));
    return { params: map((p, g) => sub(p, mul(add(hyper.lr, mul(0, drift)), mul(scale, g))), params, grads), state };
  },
});
