// nn.lora on whole models (docs/algorithms.md §10.6): which layers it adapts, that a model with
// B = 0 is its base model, that merging W + (α/r)·B·A gives the adapted model's outputs, and that
// the taps of A and B carry the statistics §10.6 derives from the adapted layer's own.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  array,
  createDevice,
  crossEntropy,
  jit,
  matmul,
  mT,
  nn,
  type DeviceArray,
  type Model,
  type Tensor,
} from '../../index.js';
import { HostArray } from '../../core/host-array.js';
import type { Tree } from '../../core/tree.js';
import { trainingExtras } from '../../runtime/training-context.js';
import type { ParamTree } from '../../dsl/optimizer.js';
import { prng, uniform } from '../support/random.js';

const cpu = await createDevice({ kind: 'cpu' });

/** The model's outputs on the float64 interpreter. */
async function outputs(model: Model<never>, params: Tree<HostArray>, x: HostArray) {
  const run = jit((p: ParamTree, input: Tensor) => (model as Model<ParamTree>).apply(p, input), {
    device: cpu,
  });
  return (await (run(params, x) as Promise<DeviceArray>)).read();
}

const tinyVit = () =>
  nn.vit({ image: [4, 4, 1], patch: 2, dim: 8, depth: 2, heads: 2, classes: 3 });

/** `tree` with every leaf replaced by seeded uniform values in [−3, 3] (rounded if asked). */
function randomized(tree: Tree<HostArray>, seed: number, integers: boolean): Tree<HostArray> {
  const rng = prng(seed);
  const fill = (node: unknown): unknown => {
    if (node instanceof HostArray) {
      const v = uniform(rng, node.data.length, -3, 3);
      return new HostArray(integers ? v.map(Math.round) : v, node.shape, node.dtype);
    }
    if (Array.isArray(node)) return node.map(fill);
    return Object.fromEntries(Object.entries(node as object).map(([k, c]) => [k, fill(c)]));
  };
  return fill(tree) as Tree<HostArray>;
}

/** LoRA parameters with random adapters (B ≠ 0). */
function randomAdapters(params: Tree<HostArray>, seed: number, integers = false): Tree<HostArray> {
  const p = params as { base: Tree<HostArray>; lora: Tree<HostArray> };
  return { base: p.base, lora: randomized(p.lora, seed, integers) };
}

describe('nn.lora: targets', () => {
  test('adapts q and v of every attention block by default, A random and B = 0', () => {
    const adapted = nn.lora(tinyVit(), { rank: 2, alpha: 4 });
    const params = adapted.init(1) as { base: unknown; lora: { blocks: unknown[] } };
    expect(adapted.targetsOf(tinyVit().init(1))).toEqual([
      'blocks.0.attention.q',
      'blocks.0.attention.v',
      'blocks.1.attention.q',
      'blocks.1.attention.v',
    ]);
    const q = (params.lora.blocks[1] as { attention: { q: { a: HostArray; b: HostArray } } })
      .attention.q;
    expect([q.a.shape, q.b.shape]).toEqual([
      [2, 8],
      [8, 2],
    ]);
    expect(q.a.data.some((v) => v !== 0)).toBe(true);
    expect(q.b.data.every((v) => v === 0)).toBe(true);
    expect(adapted.trainable).toEqual(['lora']);
    expect(adapted.scale).toBe(2);
    expect(nn.lora(tinyVit(), { rank: 2, train: ['head'] }).trainable).toEqual([
      'lora',
      'base.head',
    ]);
  });

  test('names path suffixes (mlp.fc1, head) and refuses what matches no dense layer', () => {
    const adapted = nn.lora(tinyVit(), { rank: 1, targets: ['mlp.fc1', 'head'] });
    expect(adapted.targetsOf(tinyVit().init(0))).toEqual([
      'blocks.0.mlp.fc1',
      'blocks.1.mlp.fc1',
      'head',
    ]);
    expect(() => nn.lora(tinyVit(), { rank: 1, targets: ['query'] }).init(0)).toThrow(
      /target 'query' matches no dense layer; the model's dense layers are .*blocks\.0\.attention\.q/,
    );
    expect(() => nn.lora(tinyVit(), { rank: 4, targets: ['head'] }).init(0)).toThrow(
      /rank 4 exceeds head's width min\(3, 8\)/,
    );
    expect(() => nn.lora(tinyVit(), { rank: 0 })).toThrow(/rank must be a positive integer/);
  });

  test('with B = 0 the adapted model is its base model, bit for bit (float64)', async () => {
    const adapted = nn.lora(tinyVit(), { rank: 2, alpha: 3 });
    const params = adapted.init(4) as { base: Tree<HostArray> };
    const x = array(uniform(prng(2), 3 * 16), [3, 16]);
    const [got, want] = await Promise.all([
      outputs(adapted as Model<never>, params, x),
      outputs(tinyVit() as Model<never>, params.base, x),
    ]);
    expect(Array.from(got)).toEqual(Array.from(want));
  });

  test('an adapter whose layer the model never applies is an error, not a silent no-op', async () => {
    // A model that multiplies by its weight itself instead of applying a dense layer.
    const raw: Model<never> = {
      init: (seed) => ({ layer: nn.dense(3, 2).init(seed) }),
      apply: (p, x) => matmul(x, mT((p as { layer: { w: Tensor } }).layer.w)),
    };
    const adapted = nn.lora(raw, { rank: 1, targets: ['layer'] });
    await expect(
      outputs(adapted as Model<never>, adapted.init(0), array(uniform(prng(1), 6), [2, 3])),
    ).rejects.toThrow(/the adapter at lora\.layer was never applied/);
  });
});

describe('nn.lora: merge W + (α/r)·B·A', () => {
  test('is exact where float64 is: an MLP of small integers gives identical outputs', async () => {
    // Integer weights, inputs and adapters with s = α/r = 2: every product and sum below is an
    // integer under 2⁵³, so W₀x + s·B(Ax) and (W₀ + sBA)x are both exact, hence equal bit for bit.
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 1 << 20 }), async (seed) => {
        const base = nn.mlp([5, 4, 3]);
        const adapted = nn.lora(base, { rank: 2, alpha: 4, targets: ['layers.0', 'layers.1'] });
        const integerBase = randomized(base.init(seed), seed + 1, true);
        const params = randomAdapters(adapted.init(seed, integerBase), seed + 2, true);
        const x = array(uniform(prng(seed + 3), 6 * 5, -3, 3).map(Math.round), [6, 5]);
        const [got, want] = await Promise.all([
          outputs(adapted as Model<never>, params, x),
          outputs(base as Model<never>, adapted.merge(params), x),
        ]);
        expect(Array.from(got)).toEqual(Array.from(want));
      }),
      { numRuns: 10 },
    );
  });

  test('merged weights are W + (α/r)·B·A element by element, other parameters untouched', () => {
    const adapted = nn.lora(tinyVit(), { rank: 2, alpha: 6 });
    const params = randomAdapters(adapted.init(7), 8, false) as {
      base: { blocks: { attention: Record<string, { w: HostArray; b: HostArray }> }[] };
      lora: { blocks: { attention: Record<string, { a: HostArray; b: HostArray }> }[] };
    };
    const merged = adapted.merge(params as never) as typeof params.base;
    for (const which of ['q', 'k', 'v', 'o']) {
      const w = params.base.blocks[1].attention[which].w;
      const m = merged.blocks[1].attention[which].w;
      const adapter = params.lora.blocks[1].attention[which];
      for (let i = 0; i < 8; i++)
        for (let j = 0; j < 8; j++) {
          const ba =
            adapter === undefined
              ? 0
              : adapter.b.data[i * 2] * adapter.a.data[j] +
                adapter.b.data[i * 2 + 1] * adapter.a.data[8 + j];
          expect(m.data[i * 8 + j]).toBe(w.data[i * 8 + j] + 3 * ba);
        }
      expect(merged.blocks[1].attention[which].b).toBe(params.base.blocks[1].attention[which].b);
    }
  });

  test('a ViT with adapters on q and v matches its merged base within float64 rounding', async () => {
    const adapted = nn.lora(tinyVit(), { rank: 2, alpha: 4 });
    const params = randomAdapters(adapted.init(3), 9, false);
    const x = array(uniform(prng(4), 2 * 16), [2, 16]);
    const [got, want] = await Promise.all([
      outputs(adapted as Model<never>, params, x),
      outputs(tinyVit() as Model<never>, adapted.merge(params), x),
    ]);
    // The two orders (W₀ + sBA)x and W₀x + sB(Ax) round differently: each pre-activation by at
    // most ~(d + r)·2⁻⁵³ ≈ 1e-15 of |W₀||x| + s|B||A||x| (γₙ, n = d + r = 10). LayerNorm,
    // softmax and GELU over two blocks amplify that by far less than 1e5 at these magnitudes (|x|,
    // |W| ≤ 3), so 1e-9 of the logits' scale bounds it. A missing branch or a wrong scale moves
    // the logits by O(1) here (adapters of size ~3).
    const scale = Math.max(...Array.from(want, Math.abs));
    got.forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThanOrEqual(1e-9 * scale));
    const unmerged = await outputs(tinyVit() as Model<never>, (params as { base: never }).base, x);
    expect(Math.max(...Array.from(unmerged, (v, i) => Math.abs(v - want[i])))).toBeGreaterThan(
      1e-3 * scale,
    );
  });
});

describe('nn.lora: the taps of A and B (§10.6, W4)', () => {
  test('A sees (x, s·Bᵀg) and B sees (Ax, s·g), against a float64 forward/backward by hand', async () => {
    // A 2-layer MLP 4 → 3 → 2 with layer 0 adapted; g = B·∂L/∂y₀ of the mean cross-entropy is
    // computed here from its definition: g_n = (W₁ᵀ(softmax(z_n) − e_{y_n})) ⊙ [y₀ > 0].
    const [din, dh, dout, r, n, s] = [4, 3, 2, 2, 5, 1.5];
    const base = nn.mlp([din, dh, dout]);
    const adapted = nn.lora(base, { rank: r, alpha: r * s, targets: ['layers.0'] });
    const params = randomAdapters(adapted.init(5), 6, false) as {
      base: { layers: { w: HostArray; b: HostArray }[] };
      lora: { layers: { a: HostArray; b: HostArray }[] };
    };
    const x = array(uniform(prng(7), n * din, -2, 2), [n, din]);
    const y = array(
      Int32Array.from({ length: n }, (_, i) => i % dout),
      [n],
      'i32',
    );
    const names: string[] = [];
    const always = <T>(_period: number, work: () => T): T => work();
    const run = jit(
      (p: ParamTree, xs: Tensor, ys: Tensor) => {
        const { taps } = trainingExtras(
          adapted as Model<ParamTree>,
          crossEntropy,
          p,
          xs,
          ys,
          always,
        );
        names.push(...taps.map((t) => t.name));
        return taps.flatMap((t) => [t.a, t.g]);
      },
      { device: cpu },
    );
    const got = await Promise.all(
      ((await run(params as never, x, y)) as DeviceArray[]).map((a) => a.read()),
    );
    expect(names).toEqual(['layer0', 'layer0.lora_a', 'layer0.lora_b', 'layer1']);
    // The reference, in plain float64.
    const W0 = params.base.layers[0];
    const W1 = params.base.layers[1];
    const { a: A, b: B } = params.lora.layers[0];
    const at = (h: HostArray, i: number, j: number) => h.data[i * h.shape[1] + j];
    const ax: number[][] = [];
    const gy: number[][] = [];
    for (let k = 0; k < n; k++) {
      const xk = Array.from({ length: din }, (_, j) => x.data[k * din + j]);
      const u = Array.from({ length: r }, (_, i) => xk.reduce((t, v, j) => t + at(A, i, j) * v, 0));
      const y0 = Array.from(
        { length: dh },
        (_, i) =>
          xk.reduce((t, v, j) => t + at(W0.w, i, j) * v, 0) +
          W0.b.data[i] +
          s * u.reduce((t, v, j) => t + at(B, i, j) * v, 0),
      );
      const h = y0.map((v) => Math.max(v, 0));
      const z = Array.from(
        { length: dout },
        (_, i) => h.reduce((t, v, j) => t + at(W1.w, i, j) * v, 0) + W1.b.data[i],
      );
      const m = Math.max(...z);
      const e = z.map((v) => Math.exp(v - m));
      const p = e.map((v) => v / e.reduce((a, b) => a + b, 0));
      const dz = p.map((v, i) => v - (i === y.data[k] ? 1 : 0));
      gy.push(
        Array.from(
          { length: dh },
          (_, j) => dz.reduce((t, v, i) => t + at(W1.w, i, j) * v, 0) * (y0[j] > 0 ? 1 : 0),
        ),
      );
      ax.push(u);
    }
    // Taps in order: layer0 (base), layer0.lora_a, layer0.lora_b, layer1.
    const [, , aA, gA, aB, gB] = got;
    const close = (v: number, want: number) =>
      // Sums of ≤ 4 products of values ≤ 3 in float64, both sides: ~1e-14 of the operands.
      expect(Math.abs(v - want)).toBeLessThanOrEqual(1e-12 * (1 + Math.abs(want)));
    for (let k = 0; k < n; k++) {
      for (let j = 0; j < din; j++) close(aA[k * din + j], x.data[k * din + j]);
      for (let i = 0; i < r; i++) {
        close(aB[k * r + i], ax[k][i]);
        close(gA[k * r + i], s * gy[k].reduce((t, v, j) => t + at(B, j, i) * v, 0));
      }
      for (let j = 0; j < dh; j++) close(gB[k * dh + j], s * gy[k][j]);
    }
  });
});
