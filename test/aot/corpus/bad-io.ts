// Parsed by test/aot/purity.test.ts, never run. Each /*!<rule>*/ marks where a violation starts.
import { readFileSync } from 'node:fs';
import { defineOptimizer, mul, sub } from '../../../index.js';

export const chatty = defineOptimizer({
  name: 'chatty',
  hyper: { lr: 0.1 },
  validate: (h) => {
    /*!io*/console.log('validating', h.lr);
    return undefined;
  },
  init: () => ({}),
  update: ({ params, grads, state, hyper, map }) => {
    const scale = Number(/*!io*/process.env.SCALE ?? '1');
    const text = /*!io*/readFileSync('/dev/null', 'utf8');
    void /*!io*/fetch('http://127.0.0.1/');
    void /*!io*/import('node:path');
    const os = /*!io*/require('node:os') as unknown;
    const factor = scale + text.length + (os === undefined ? 0 : 1);
    return { params: map((p, g) => sub(p, mul(mul(hyper.lr, factor), g)), params, grads), state };
  },
});
