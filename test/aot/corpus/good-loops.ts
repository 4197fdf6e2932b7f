// Parsed by test/aot/purity.test.ts, never run. Everything here is pure: loops with a trip count,
// locals that accumulate tensors, local helpers, for…of, Math.sqrt, Array.from, and arrays, Maps
// and objects the update builds itself.
import { add, defineOptimizer, grad, mul, normal, outside, sub, sum, treeMap, zeros, zerosLike, type Tensor } from '../../../index.js';

const SCALES = [1, 0.5, 0.25];

function scaled(x: Tensor, factor: number): Tensor {
  return mul(x, factor);
}

const shrink = (x: Tensor, n: number): Tensor => {
  let acc = x;
  for (let i = 0; i < n; i++) acc = scaled(acc, 0.5);
  return acc;
};

// Made at module level by a grng function from a local arrow, which is checked where it is called.
const halfNormGrad = grad((x: Tensor) => mul(0.5, sum(mul(x, x))));

export const copyLike = defineOptimizer({
  name: 'copy-like',
  hyper: { lr: 0.1, steps: 3, noise: 0 },
  static: ['steps'],
  validate: (h) => outside('lr', h.lr, 0, Infinity) ?? (Number.isInteger(h.steps) ? undefined : 'steps must be an integer'),
  init: (params) => ({ m: treeMap(zerosLike, params), count: zeros([]) as Tensor }),
  report: { count: (state) => state.count },
  update: ({ params, grads, state, hyper, settings, map, key }) => {
    const rows: Tensor[] = [];
    const table = new Map<number, Tensor>();
    const seen = new Set<number>();
    const named: Record<string, number> = {};
    let total = 0;
    for (const [i, s] of SCALES.entries()) {
      rows.push(mul(hyper.lr, s));
      table.set(i, mul(hyper.lr, Math.sqrt(s)));
      seen.add(i);
      named[`s${i}`] = s;
      total += s;
    }
    const weights = Array.from({ length: settings.steps }, (_, i) => 1 / (i + 1)).sort((a, b) => a - b);
    let step = rows[0] as Tensor;
    weights.forEach((w) => {
      step = add(step, w);
    });
    for (const k of Object.keys(named)) total += named[k] ?? 0;
    const m = map((mi, g) => mi.mul(0.9).add(g).sub(mul(0, halfNormGrad(g))), state.m, grads);
    const moved = map((p, mi) => sub(p, mul(step, shrink(mi, settings.steps))), params, m);
    const noisy = map((p) => add(p, mul(hyper.noise, normal(key, p.shape))), moved);
    return { params: noisy, state: { m, count: add(state.count, total + table.size + seen.size) } };
  },
});
