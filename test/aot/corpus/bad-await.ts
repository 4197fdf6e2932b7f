// Parsed by test/aot/purity.test.ts, never run. Each /*!<rule>*/ marks where a violation starts.
import { defineOptimizer, mul, sub, treeMap, zerosLike, type ParamTree } from '../../../index.js';

export const waiting = defineOptimizer({
  name: 'waiting',
  hyper: { lr: 0.1 },
  init: /*!await*/async (params) => {
    const m = /*!await*/await Promise.resolve(treeMap(zerosLike, params));
    /*!await*/for await (const x of [m]) void x;
    return { m };
  },
  update: ({ params, grads, state, hyper, map }) => {
    void pending(params);
    return { params: map((p, g) => sub(p, mul(hyper.lr, g)), params, grads), state };
  },
});

/*!await*/async function pending(tree: ParamTree): Promise<ParamTree> {
  return tree;
}
