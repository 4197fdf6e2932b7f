// The small tanh-MLP problem the RING suites share: a seeded model, batch and labels, and their
// float64 backprop (a, g per layer; Λ̂ = aᵀa/B, Γ̂ = gᵀg/B, G = gᵀa/B) from ../curvature/reference.
import { array, nn } from '../../index.js';
import type { HostArray } from '../../core/host-array.js';
import { int, prng, uniform } from '../support/random.js';
import {
  mat,
  matmul,
  mlpBackprop,
  scaleMat,
  secondMoment,
  transpose,
} from '../curvature/reference.js';

/** What a problem is drawn from: sizes, whether layers have a bias, and the seed. */
export type MlpShape = {
  seed: number;
  B: number;
  dIn: number;
  hidden: number;
  classes: number;
  bias: boolean;
};

export type LayerParams = { w: HostArray; b?: HostArray };

/** A tanh MLP [d_in, hidden, classes], a batch (`batch` shifts its seed), its backprop. */
export function mlpProblem(c: MlpShape, batch = 0) {
  const rng = prng(c.seed + 7919 * batch);
  const model = nn.mlp([c.dIn, c.hidden, c.classes], { activation: 'tanh', bias: c.bias });
  const params = model.init(c.seed) as { layers: LayerParams[] };
  const x = mat(c.B, c.dIn, uniform(rng, c.B * c.dIn, -2, 2));
  const labels = Int32Array.from({ length: c.B }, () => int(rng, 0, c.classes - 1));
  const layers = params.layers.map((l) => ({
    w: mat(l.w.shape[0], l.w.shape[1], l.w.data),
    b: l.b?.data,
  }));
  const ref = mlpBackprop(layers, x, labels);
  return {
    model,
    params,
    layers,
    batch: { x: array(x.data, [c.B, c.dIn]), y: array(labels, [c.B], 'i32') },
    lambda: ref.a.map(secondMoment),
    gamma: ref.g.map(secondMoment),
    G: ref.a.map((a, i) => scaleMat(matmul(transpose(ref.g[i]), a), 1 / c.B)),
  };
}
