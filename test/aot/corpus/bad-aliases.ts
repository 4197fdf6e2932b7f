// Parsed by test/aot/purity.test.ts, never run. Each /*!<rule>*/ marks where a violation starts:
// module-level aliases are checked as what they name, and reported where update reads them.
import { randomInt } from 'node:crypto';
import { add, defineOptimizer, mul, sub, type Tensor } from '../../../index.js';
import * as h from './helpers.js';

const rand = Math.random;
const { now } = Date;
const jitter = rand;
const seed = Math.random();
const M = Math;
const log = console.log.bind(console);
const pick = randomInt;
const dbl = h.double;
const root2 = Math.sqrt;
const again = walk;

function walk(t: Tensor, d: number): Tensor {
  return d === 0 ? t : /*!unbounded-loop*/again(mul(t, 0.5), d - 1);
}

export const aliased = defineOptimizer({
  name: 'aliased',
  hyper: { lr: 0.1 },
  init: () => ({}),
  update: ({ params, grads, state, hyper, map }) => {
    const a = /*!nondeterminism*/rand() + /*!nondeterminism*/now() + /*!nondeterminism*/jitter() + /*!nondeterminism*/seed;
    const b = /*!nondeterminism*/M.random() + root2(2) + M.PI + /*!nondeterminism*/pick(3);
    /*!io*/log('step');
    return { params: map((p, g) => sub(p, mul(add(hyper.lr, a + b), /*!impure-call*/dbl(walk(g, 2)))), params, grads), state };
  },
});
