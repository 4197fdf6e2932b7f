// Parsed by test/aot/purity.test.ts, never run. Each /*!<rule>*/ marks where a violation starts.
import { defineOptimizer, mul, sub, type Tensor } from '../../../index.js';

export let steps = 0;
export let last: Tensor | undefined;

function remember(x: Tensor): Tensor {
  /*!outer-assignment*/last = x;
  ({ value: /*!outer-assignment*/last } = { value: x });
  return x;
}

export const counting = defineOptimizer({
  name: 'counting',
  hyper: { lr: 0.1 },
  init: () => ({}),
  update: ({ params, grads, state, hyper, map }) => {
    /*!outer-assignment*/steps += 1;
    /*!outer-assignment*/steps++;
    let local = 0;
    local += 1;
    const scale = mul(hyper.lr, local);
    return { params: map((p, g) => sub(p, mul(scale, remember(g))), params, grads), state };
  },
});
