// Parsed by test/aot/purity.test.ts, never run. Each /*!<rule>*/ marks where a violation starts.
import { randomInt } from 'node:crypto';
import { add, defineOptimizer, mul, sub } from '../../../index.js';

export const noisy = defineOptimizer({
  name: 'noisy',
  hyper: { lr: 0.1 },
  init: () => ({}),
  update: ({ params, grads, state, hyper, map }) => {
    const jitter = /*!nondeterminism*/Math.random();
    const stamp = /*!nondeterminism*/Date.now() + /*!nondeterminism*/performance.now();
    const day = /*!nondeterminism*/new Date().getDay();
    const id = /*!nondeterminism*/crypto.randomUUID().length;
    const t0 = /*!nondeterminism*/process.hrtime()[0];
    const pick = /*!nondeterminism*/randomInt(10);
    const total = jitter + stamp + day + id + t0 + pick + Math.sqrt(2);
    return { params: map((p, g) => sub(p, mul(add(hyper.lr, total), g)), params, grads), state };
  },
});
