// Parsed by test/aot/purity.test.ts, never run. Each /*!<rule>*/ marks where a violation starts.
import { add, defineOptimizer, mul, sub, type Tensor } from '../../../index.js';

function halve(x: Tensor, n: number): Tensor {
  return n === 0 ? x : /*!unbounded-loop*/halve(mul(x, 0.5), n - 1);
}
const ping = (x: Tensor, n: number): Tensor => (n <= 0 ? x : /*!unbounded-loop*/pong(x, n - 1));
const pong = (x: Tensor, n: number): Tensor => (n <= 0 ? x : /*!unbounded-loop*/ping(add(x, 1), n - 1));

export const looping = defineOptimizer({
  name: 'looping',
  hyper: { lr: 0.1, steps: 3 },
  static: ['steps'],
  init: () => ({}),
  update: ({ params, grads, state, hyper, settings, map }) => {
    let n = 0;
    /*!unbounded-loop*/while (n < settings.steps) n++;
    /*!unbounded-loop*/do n--;
    while (n > 0);
    /*!unbounded-loop*/for (;;) {
      if (n++ > 2) break;
    }
    let keys = 0;
    /*!unbounded-loop*/for (const k in hyper) keys += k.length;
    const walk = (t: Tensor, d: number): Tensor => (d === 0 ? t : /*!unbounded-loop*/walk(t, d - 1));
    for (let i = 0; i < settings.steps; i++) n += i;
    return { params: map((p, g) => sub(p, mul(hyper.lr, walk(halve(ping(g, n), keys), 2))), params, grads), state };
  },
});
