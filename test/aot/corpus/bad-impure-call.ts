// Parsed by test/aot/purity.test.ts, never run. Each /*!<rule>*/ marks where a violation starts.
import { defineOptimizer, mul, sub } from '../../../index.js';
import { Scaler, scale, scaleBy } from './helpers.js';
import * as h from './helpers.js';

const triple = scaleBy(3);

export const outsourced = defineOptimizer({
  name: 'outsourced',
  hyper: { lr: 0.1 },
  init: () => ({}),
  update: ({ params, grads, state, hyper, map }) => {
    const s = /*!impure-call*/new Scaler(2);
    return { params: map((p, g) => sub(p, mul(hyper.lr, /*!impure-call*/scale(/*!impure-call*/h.double(/*!impure-call*/triple(g)), s.factor))), params, grads), state };
  },
});
