// Parsed by test/aot/purity.test.ts, never run. Each /*!<rule>*/ marks where a violation starts; the
// helper is reached from init and update but its violations are reported once.
import { defineOptimizer, grad, mul, sub, sum, treeMap, zerosLike, type ParamTree, type Tensor } from '../../../index.js';

export let calls = 0;

function logged(tree: ParamTree): ParamTree {
  /*!io*/console.log('tree');
  /*!outer-assignment*/calls++;
  return tree;
}

const noisyGrad = grad((x: Tensor) => mul(/*!nondeterminism*/Math.random(), sum(x)));

export const several = defineOptimizer({
  name: 'several',
  hyper: { lr: 0.1 },
  init: (params) => ({ m: logged(treeMap(zerosLike, params)) }),
  update: ({ params, grads, state, hyper, map }) => {
    const noise = /*!nondeterminism*/Math.random();
    /*!unbounded-loop*/while (calls < 0) /*!outer-assignment*/calls--;
    /*!argument-mutation*/state.m = logged(grads);
    return { params: map((p, g) => sub(p, mul(mul(hyper.lr, noise), noisyGrad(g))), params, grads), state };
  },
});
