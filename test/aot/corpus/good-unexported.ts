// Parsed by test/aot/purity.test.ts, never run. No exported optimizer, so nothing is checked: the
// one below would break every rule, but grng compile never sees it.
import { defineOptimizer } from '../../../index.js';

let calls = 0;

export function callCount(): number {
  return calls;
}

export const factories = [
  defineOptimizer({
    name: 'hidden',
    hyper: {},
    init: () => ({}),
    update: (ctx) => {
      calls = Math.random();
      return { params: ctx.params, state: ctx.state };
    },
  }),
];
