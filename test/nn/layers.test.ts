// nn: dense/mlp/lora models, their seeded initialisation, and the curvature taps dense layers
// record.
import { describe, expect, test } from 'vitest';
import {
  array,
  constant,
  createDevice,
  crossEntropy,
  grad,
  jit,
  nn,
  recordTaps,
  zeros,
  type DeviceArray,
  type Tensor,
} from '../../index.js';
import type { HostArray } from '../../core/host-array.js';
import { prng, uniform } from '../support/random.js';

const cpu = await createDevice({ kind: 'cpu' });

/** Evaluates tensors built from no inputs (or constants) on the float64 interpreter. */
async function evaluate(f: () => Tensor | Tensor[]): Promise<Float64Array[]> {
  const out = (await jit(f, { device: cpu })()) as DeviceArray | DeviceArray[];
  return Promise.all((Array.isArray(out) ? out : [out]).map((a) => a.read()));
}

/** A host array as a constant tensor of the traced program. */
const constOf = (h: HostArray): Tensor => constant(h.data, h.shape, h.dtype);

describe('nn.dense and nn.mlp', () => {
  test('the same seed gives the same parameters; PyTorch-style bounds 1/√in', () => {
    const model = nn.mlp([5, 7, 3]);
    const a = model.init(42) as { layers: { w: HostArray; b: HostArray }[] };
    const b = model.init(42) as typeof a;
    const c = model.init(43) as typeof a;
    expect(Array.from(a.layers[1].w.data)).toEqual(Array.from(b.layers[1].w.data));
    expect(Array.from(a.layers[1].w.data)).not.toEqual(Array.from(c.layers[1].w.data));
    expect(a.layers[0].w.shape).toEqual([7, 5]); // PyTorch's [out, in]
    for (const v of a.layers[0].w.data) expect(Math.abs(v)).toBeLessThanOrEqual(1 / Math.sqrt(5));
    for (const v of a.layers[1].b.data) expect(Math.abs(v)).toBeLessThanOrEqual(1 / Math.sqrt(7));
  });

  test('dense computes x Wᵀ + b (checked against plain float64 loops)', async () => {
    const layer = nn.dense(3, 2);
    const p = layer.init(1) as { w: HostArray; b: HostArray };
    const xs = [
      [0.5, -1, 2],
      [1, 0.25, -0.5],
    ];
    const [got] = await evaluate(() =>
      layer.apply({ w: constOf(p.w), b: constOf(p.b) }, constOf(array(xs))),
    );
    const want = xs.flatMap((row) =>
      [0, 1].map((o) => row.reduce((s, v, i) => s + v * p.w.data[o * 3 + i], p.b.data[o])),
    );
    got.forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThanOrEqual(1e-12));
  });

  test('bad shapes and settings are GrngErrors', () => {
    expect(() => nn.dense(0, 3)).toThrow(/inFeatures must be a positive integer/);
    expect(() => nn.mlp([4])).toThrow(/at least an input and an output/);
    const layer = nn.dense(3, 2);
    expect(() => layer.apply({ w: zeros([2, 3]), b: zeros([2]) }, zeros([4, 5]))).toThrow(
      /expects inputs \[batch, 3\]/,
    );
  });
});

describe('curvature taps', () => {
  test(
    'dense records a (with a ones column for the bias) and the probe ' +
      'gradient is the per-sample g / B',
    async () => {
      // Softmax regression, B = 4, 3 features, 3 classes: g_n = softmax(s_n) − onehot(y_n)
      // (docs/algorithms.md §2), and ∂L/∂s_n = g_n / B for the mean loss. Reference in plain
      // float64 loops.
      const B = 4;
      const rng = prng(5);
      const x = uniform(rng, B * 3);
      const labels = Int32Array.of(0, 2, 1, 2);
      const layer = nn.dense(3, 3);
      const p = layer.init(9) as { w: HostArray; b: HostArray };
      const params = { w: constOf(p.w), b: constOf(p.b) };
      const xt = constOf(array(x, [B, 3]));
      const yt = constOf(array(labels, [B], 'i32'));
      const probes = [zeros([B, 3])];
      const lossOf = (probe: Tensor) =>
        recordTaps(() => crossEntropy(layer.apply(params, xt), yt), [probe]).result;
      const { taps } = recordTaps(() => layer.apply(params, xt));
      const [a, dProbe] = await evaluate(() => [taps[0].a, grad(lossOf)(probes[0])]);
      expect(taps).toHaveLength(1);
      for (let n = 0; n < B; n++) {
        expect(Array.from(a.slice(n * 4, n * 4 + 4))).toEqual([
          ...Array.from(x.slice(n * 3, n * 3 + 3)),
          1,
        ]);
        const s = [0, 1, 2].map((o) =>
          [0, 1, 2].reduce((acc, i) => acc + x[n * 3 + i] * p.w.data[o * 3 + i], p.b.data[o]),
        );
        const z = Math.max(...s);
        const e = s.map((v) => Math.exp(v - z));
        const total = e.reduce((u, v) => u + v, 0);
        for (let o = 0; o < 3; o++) {
          const g = e[o] / total - (labels[n] === o ? 1 : 0);
          // float64 throughout: agreement to rounding (1e-12).
          expect(Math.abs(dProbe[n * 3 + o] * B - g)).toBeLessThanOrEqual(1e-12);
        }
      }
    },
  );

  test('an mlp records one tap per dense layer, in order', () => {
    const model = nn.mlp([4, 6, 5, 2]);
    const { taps } = recordTaps(() =>
      model.apply(
        {
          layers: [0, 1, 2].map((i) => ({
            w: zeros([[6, 5, 2][i], [4, 6, 5][i]]),
            b: zeros([[6, 5, 2][i]]),
          })),
        },
        zeros([3, 4]),
      ),
    );
    expect(taps.map((t) => [t.name, t.a.shape, t.s.shape])).toEqual([
      ['layer0', [3, 5], [3, 6]],
      ['layer1', [3, 7], [3, 5]],
      ['layer2', [3, 6], [3, 2]],
    ]);
  });
});

describe('nn.loraDense', () => {
  test('starts as the frozen base (B = 0) and records the A and B layers as taps', async () => {
    const base = nn.dense(4, 3).init(2) as { w: HostArray; b: HostArray };
    const adapted = nn.loraDense(base, 2, { alpha: 4 });
    const p = adapted.init(3) as { a: HostArray; b: HostArray };
    expect(p.a.shape).toEqual([2, 4]);
    expect(Array.from(p.b.data)).toEqual(new Array(6).fill(0));
    const x = constOf(array(uniform(prng(1), 8), [2, 4]));
    const { result, taps } = recordTaps(() =>
      adapted.apply({ a: constOf(p.a), b: constOf(p.b) }, x),
    );
    const [got, want] = await evaluate(() => [
      result,
      nn.dense(4, 3).apply({ w: constOf(base.w), b: constOf(base.b) }, x),
    ]);
    got.forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThanOrEqual(1e-12));
    expect(taps.map((t) => t.name)).toEqual(['lora.a', 'lora.b']);
  });

  test('rank outside [1, min(in, out)] is a GrngError', () => {
    const base = nn.dense(4, 3).init(2) as { w: HostArray; b: HostArray };
    expect(() => nn.loraDense(base, 4)).toThrow(/rank must be an integer in \[1, 3\]/);
  });
});
