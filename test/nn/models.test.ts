// nn's transformer and convolution models: output shapes, the taps each records (names, [B, T, ·]
// rows for layers over tokens or pixels), PyTorch-style initialisation, one-line errors for bad
// settings, and a text transformer that learns a token task under RING on the float64
// interpreter.
import { describe, expect, test } from 'vitest';
import {
  array,
  compileTrainStep,
  createDevice,
  crossEntropy,
  input,
  nn,
  recordTaps,
  ring,
  GrngError,
} from '../../index.js';
import type { HostArray } from '../../core/host-array.js';
import { flattenTree } from '../../core/tree.js';
import { int, prng } from '../support/random.js';

const cpu = await createDevice({ kind: 'cpu' });
const isHost = (x: unknown): x is HostArray =>
  typeof x === 'object' && x !== null && 'data' in x && 'shape' in x;
const paramsOf = (tree: unknown) => {
  const { leaves, rebuild } = flattenTree('test', tree, isHost, 'an array');
  return rebuild(leaves.map((l, i) => input(`p${i}`, l.shape)));
};

describe('nn.vit, nn.cnn, nn.textTransformer', () => {
  test('a ViT: logits [B, classes]; taps for the patch embedding, every projection, the head', () => {
    const vit = nn.vit({ image: [8, 8, 1], patch: 4, dim: 8, depth: 2, heads: 2, classes: 3 });
    const { result, taps } = recordTaps(() =>
      vit.apply(paramsOf(vit.init(0)) as never, input('x', [5, 64])),
    );
    expect(result.shape).toEqual([5, 3]);
    const perBlock = ['q', 'k', 'v', 'o'].map((p) => `attention.${p}`).concat(['fc1', 'fc2']);
    expect(taps.map((t) => t.name)).toEqual([
      'patch',
      ...perBlock.map((p) => `block0.${p}`),
      ...perBlock.map((p) => `block1.${p}`),
      'head',
    ]);
    // 4 patches per image; 5 tokens with [CLS] for the projections; the head sees one row each.
    expect(taps[0].a.shape).toEqual([5, 4, 17]);
    expect(taps[1].a.shape).toEqual([5, 5, 9]);
    expect(taps[5].s.shape).toEqual([5, 5, 32]);
    expect(taps.at(-1)?.a.shape).toEqual([5, 9]);
    const init = vit.init(0) as { position: HostArray; cls: HostArray };
    expect(init.cls.shape).toEqual([1, 1, 8]);
    expect(init.position.shape).toEqual([1, 5, 8]);
    // N(0, 0.02²): 40 draws within 5σ.
    for (const v of init.position.data) expect(Math.abs(v)).toBeLessThan(0.1);
  });

  test("a CNN: 'same' convolutions and 2×2 pooling per stage; conv taps over output pixels", () => {
    const cnn = nn.cnn({ image: [8, 8, 2], channels: [3, 4], kernel: 3, hidden: 6, classes: 5 });
    const { result, taps } = recordTaps(() =>
      cnn.apply(paramsOf(cnn.init(0)) as never, input('x', [2, 8, 8, 2])),
    );
    expect(result.shape).toEqual([2, 5]);
    expect(taps.map((t) => [t.name, t.a.shape])).toEqual([
      ['conv0', [2, 64, 2 * 9 + 1]],
      ['conv1', [2, 16, 3 * 9 + 1]],
      ['hidden', [2, 2 * 2 * 4 + 1]],
      ['head', [2, 7]],
    ]);
    const init = cnn.init(0) as { convs: { w: HostArray }[] };
    expect(init.convs[1].w.shape).toEqual([4, 3, 3, 3]); // PyTorch's [C_out, C_in, k_h, k_w]
    for (const v of init.convs[1].w.data)
      expect(Math.abs(v)).toBeLessThanOrEqual(1 / Math.sqrt(27));
  });

  test('a text transformer: mean-pooled or [CLS]; ids must be i32 [B, length]', () => {
    for (const pool of ['mean', 'cls'] as const) {
      const model = nn.textTransformer({
        vocab: 7,
        length: 4,
        dim: 4,
        depth: 1,
        heads: 2,
        classes: 2,
        pool,
        causal: pool === 'mean',
      });
      const out = model.apply(paramsOf(model.init(0)) as never, input('ids', [3, 4], 'i32'));
      expect(out.shape).toEqual([3, 2]);
      expect(() => model.apply(paramsOf(model.init(0)) as never, input('ids', [3, 4]))).toThrow(
        /i32 token ids \[batch, 4\]/,
      );
    }
  });

  test('bad settings are GrngErrors naming the model', () => {
    const vit = (o: object) => () =>
      nn.vit({ image: [8, 8, 1], patch: 4, dim: 8, depth: 1, heads: 2, classes: 3, ...o });
    expect(vit({ patch: 3 })).toThrow(/patch 3 must divide the image size 8×8/);
    expect(vit({ heads: 3 })).toThrow(/dim 8 must be a multiple of heads 3/);
    expect(vit({ depth: 0 })).toThrow(/depth must be a positive integer/);
    expect(() => nn.cnn({ image: [6, 6, 1], channels: [2, 2], classes: 2 })).toThrow(
      /divisible by 4/,
    );
    expect(() => nn.cnn({ image: [8, 8, 1], kernel: 4, classes: 2 })).toThrow(/odd/);
    expect(() =>
      nn.conv2d(1, 2, 5).apply(nn.conv2d(1, 2, 5).init(0) as never, input('x', [1, 3, 3, 1])),
    ).toThrow(/does not fit 3×3 images/);
    expect(() => nn.maxPool2d(input('x', [1, 5, 4, 1]), 2)).toThrow(/must tile 5×4 images/);
    expect(() =>
      nn.layerNorm(4).apply(nn.layerNorm(4).init(0) as never, input('x', [2, 3])),
    ).toThrow(GrngError);
  });

  test('RING trains a text transformer on a token task (class = is token 1 present?)', async () => {
    const rng = prng(3);
    const [vocab, length, batch] = [5, 6, 32];
    const model = nn.textTransformer({ vocab, length, dim: 8, depth: 1, heads: 2, classes: 2 });
    const train = await compileTrainStep({
      model,
      loss: crossEntropy,
      optimizer: ring({ lr: 0.01, inverseEvery: 5 }),
      params: model.init(0),
      device: cpu,
      metrics: ['loss', 'accuracy'],
    });
    const draw = () => {
      const ids = Int32Array.from({ length: batch * length }, () => int(rng, 0, vocab - 1));
      const y = Int32Array.from({ length: batch }, (_, n) =>
        ids.subarray(n * length, (n + 1) * length).includes(1) ? 1 : 0,
      );
      return { x: array(ids, [batch, length], 'i32'), y: array(y, [batch], 'i32') };
    };
    const losses: number[] = [];
    for (let step = 0; step < 40; step++) losses.push((await train.run(draw())).loss);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    // Random labels would keep the loss near log 2 ≈ 0.69 (or the base rate's entropy, ≈ 0.46 at
    // P(present) = 1 − 0.8⁶ ≈ 0.74); the task is learnable, so the last ten steps must be lower
    // than the first ten by a clear margin (measured: see the log).
    console.log(
      `text transformer + RING: mean loss ${mean(losses.slice(0, 10)).toFixed(3)} → ${mean(losses.slice(-10)).toFixed(3)}`,
    );
    expect(mean(losses.slice(-10))).toBeLessThan(0.6 * mean(losses.slice(0, 10)));
  });
});
