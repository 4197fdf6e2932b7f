// Parsed by test/aot/purity.test.ts, never run. Each /*!<rule>*/ marks where a violation starts.
import { add, defineOptimizer, mul, sub, treeMap, zeros, zerosLike, type ParamTree, type Tensor } from '../../../index.js';

export const SEEN: Tensor[] = [];
const registry = new Map<string, Tensor>();
const names = new Set<string>();

interface State {
  m: ParamTree;
  history: Tensor[];
  extra?: Tensor;
  count: Tensor;
}

export const mutating = defineOptimizer({
  name: 'mutating',
  hyper: { lr: 0.1 },
  init: (params): State => ({ m: treeMap(zerosLike, params), history: [], count: zeros([]) as Tensor }),
  update: (ctx) => {
    const { params, grads, state, hyper, map } = ctx;
    /*!argument-mutation*/state.count = add(state.count, 1);
    /*!argument-mutation*/(params as Record<string, Tensor>).w = hyper.lr;
    /*!argument-mutation*/state.history.push(state.count);
    /*!argument-mutation*/delete state.extra;
    /*!argument-mutation*/Object.assign(state, { m: grads });
    const alias = state.history;
    /*!argument-mutation*/alias.sort();
    /*!argument-mutation*/SEEN.push(hyper.lr);
    /*!argument-mutation*/registry.set('lr', hyper.lr);
    /*!argument-mutation*/names.add('lr');
    // Built here, so changing them is fine.
    const fresh: Tensor[] = [];
    fresh.push(hyper.lr);
    const copy = [...state.history];
    copy.reverse();
    const next = map((p, g) => sub(p, mul(hyper.lr, g)), params, grads);
    return { params: next, state: { ...state, history: [...copy, ...fresh] } };
  },
});

export const lookup = (name: string) => (names.has(name) ? registry.get(name) : undefined);
