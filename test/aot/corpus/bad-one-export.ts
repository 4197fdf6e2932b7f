// Parsed by test/aot/purity.test.ts; imported only by test/cli/compile.test.ts, for its clean
// export. Each /*!<rule>*/ marks where a violation starts: an impure export beside a pure one,
// which checkPurity's `exports` (grng compile --export clean) checks alone.
import { defineOptimizer, mul, sub } from '../../../index.js';

let steps = 0;

export const clean = defineOptimizer({
  name: 'clean',
  hyper: { lr: 0.1 },
  init: () => ({}),
  update: ({ params, grads, state, hyper, map }) => ({
    params: map((p, g) => sub(p, mul(hyper.lr, g)), params, grads),
    state,
  }),
});

export const dirty = defineOptimizer({
  name: 'dirty',
  hyper: { lr: 0.1 },
  init: () => ({}),
  update: ({ params, grads, state, hyper, map }) => {
    /*!outer-assignment*/steps++;
    return { params: map((p, g) => sub(p, mul(mul(hyper.lr, steps), g)), params, grads), state };
  },
});
