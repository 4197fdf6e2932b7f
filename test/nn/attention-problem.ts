// A one-block attention classifier shared by the weight-sharing tests: multi-head self-attention
// on [B, T, d] tokens, the mean token, a linear head. Every parameter belongs to a dense layer
// applied over tokens (q, k, v, o) or samples (head), so curvature optimizers precondition all of
// them; ./shared-layer-reference.ts computes the same model in plain float64 loops.
import { mean, nn } from '../../index.js';
import { HostArray } from '../../core/host-array.js';
import type { Model } from '../../dsl/nn/layers.js';
import type { ParamTree } from '../../dsl/optimizer.js';
import { uniform } from '../support/random.js';
import type { AttentionClassifier, DenseRef } from './shared-layer-reference.js';

type Dense = { w: HostArray; b: HostArray };
export type AttentionClassifierParams = {
  attention: { q: Dense; k: Dense; v: Dense; o: Dense };
  head: Dense;
};

export function attentionClassifier(dim: number, heads: number, classes: number): Model<ParamTree> {
  const attention = nn.multiHeadAttention(dim, heads);
  const head = nn.dense(dim, classes, { name: 'head' });
  return {
    init: (s) => ({ attention: attention.init(s), head: head.init(s + 1) }),
    apply: (p, x) => {
      const tree = p as unknown as {
        attention: Parameters<typeof attention.apply>[0];
        head: Parameters<typeof head.apply>[0];
      };
      return head.apply(tree.head, mean(attention.apply(tree.attention, x), 1));
    },
  };
}

/** Initial parameters with random biases (zero at init, which would hide the ones column). */
export function attentionParams(
  model: Model<ParamTree>,
  seed: number,
  rng: () => number,
): AttentionClassifierParams {
  const params = model.init(seed) as unknown as AttentionClassifierParams;
  for (const p of [...Object.values(params.attention), params.head])
    p.b = new HostArray(uniform(rng, p.b.data.length), p.b.shape, 'f32');
  return params;
}

export const denseRef = (p: { w: HostArray; b: HostArray }): DenseRef => ({
  w: p.w.data,
  b: p.b.data,
  out: p.w.shape[0],
  in: p.w.data.length / p.w.shape[0],
});

export function referenceParams(p: AttentionClassifierParams, heads: number): AttentionClassifier {
  const { q, k, v, o } = p.attention;
  return {
    q: denseRef(q),
    k: denseRef(k),
    v: denseRef(v),
    o: denseRef(o),
    head: denseRef(p.head),
    heads,
  };
}
