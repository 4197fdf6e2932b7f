// Training a part of a model: compileTrainStep's `trainable` (and nn.lora's default of it). The
// frozen parameters are read by every step and never change; the optimizer keeps state for the
// trainable ones only; the split by path round-trips any tree.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  adamw,
  array,
  compileTrainStep,
  createDevice,
  crossEntropy,
  nn,
  ring,
  type Device,
  type DeviceArray,
  type Model,
} from '../../index.js';
import { HostArray } from '../../core/host-array.js';
import { joinTrees, leafPaths, splitTree, underAny } from '../../core/tree-paths.js';
import { flattenTree, type Tree } from '../../core/tree.js';
import { isArrayLeaf } from '../../runtime/jit.js';
import { gpuDevice } from '../support/gpu.js';
import { prng, uniform } from '../support/random.js';

const cpu = await createDevice({ kind: 'cpu' });

const tinyVit = () =>
  nn.vit({ image: [4, 4, 1], patch: 2, dim: 8, depth: 1, heads: 2, classes: 3 });

function batchOf(seed: number, n = 6) {
  const rng = prng(seed);
  return {
    x: array(uniform(rng, n * 16), [n, 16]),
    y: array(
      Int32Array.from({ length: n }, (_, i) => i % 3),
      [n],
      'i32',
    ),
  };
}

/** Every leaf of a tree of host or device arrays, read, by path. */
async function readByPath(tree: Tree<unknown>): Promise<Map<string, number[]>> {
  const paths = leafPaths('test', tree, isArrayLeaf, 'an array');
  const { leaves } = flattenTree('test', tree, isArrayLeaf, 'an array');
  const values = await Promise.all(
    leaves.map(async (l) =>
      // The float64 interpreter keeps host values as they are: compare them unrounded.
      l instanceof HostArray ? Array.from(l.data) : Array.from(await (l as DeviceArray).read()),
    ),
  );
  return new Map(paths.map((p, i) => [p, values[i]]));
}

const sizeOf = (shape: readonly number[]) => shape.reduce((a, d) => a * d, 1);

/** AdamW (lr 0.05) training `model` from `params`, cross-entropy. */
const adamwStep = (
  model: Model<never>,
  params: Tree<HostArray>,
  device: Device,
  trainable?: readonly string[],
) =>
  compileTrainStep({
    model,
    loss: crossEntropy,
    optimizer: adamw({ lr: 0.05 }),
    params,
    device,
    trainable,
  });

describe('compileTrainStep: frozen parameters', () => {
  test('nn.lora trains the adapters only: the base stays bit-identical, no state for it', async () => {
    const adapted = nn.lora(tinyVit(), { rank: 2, alpha: 4 });
    const init = adapted.init(1);
    const train = await adamwStep(adapted as Model<never>, init, cpu);
    for (let i = 0; i < 3; i++) await train.run(batchOf(i));
    const before = await readByPath(init);
    const after = await readByPath(await train.params());
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    for (const [path, values] of before) {
      if (path.startsWith('lora.') && path.endsWith('.b'))
        expect(after.get(path), path).not.toEqual(values); // B leaves zero at the first step
      if (path.startsWith('base.')) expect(after.get(path), path).toEqual(values);
    }
    // AdamW keeps m and v per trained element: 2 × the adapters' size, whatever the base's.
    const adapters = flattenTree('test', (init as { lora: unknown }).lora, isArrayLeaf, 'an array');
    const trained = adapters.leaves.reduce((n: number, l) => n + sizeOf((l as HostArray).shape), 0);
    const state = flattenTree('test', await train.state(), isArrayLeaf, 'an array');
    const kept = state.leaves.reduce((n: number, l) => n + sizeOf((l as DeviceArray).shape), 0);
    expect(kept - 2 * trained).toBeGreaterThanOrEqual(0);
    expect(kept - 2 * trained).toBeLessThanOrEqual(2); // a step count at most
  });

  test("train: ['head'] trains the classifier too; `trainable` overrides the model's", async () => {
    const adapted = nn.lora(tinyVit(), { rank: 1, train: ['head'] });
    const init = adapted.init(2);
    const run = async (trainable?: string[]) => {
      const train = await adamwStep(adapted as Model<never>, init, cpu, trainable);
      await train.run(batchOf(3));
      await train.run(batchOf(4));
      return readByPath(await train.params());
    };
    const before = await readByPath(init);
    const moved = (after: Map<string, number[]>) =>
      [...before]
        .filter(([p, v]) => JSON.stringify(after.get(p)) !== JSON.stringify(v))
        .map(([p]) => p);
    const withHead = moved(await run());
    expect(withHead).toContain('base.head.w');
    expect(withHead.every((p) => p.startsWith('lora.') || p.startsWith('base.head.'))).toBe(true);
    const normsOnly = moved(await run(['base.norm']));
    expect(normsOnly.sort()).toEqual(['base.norm.bias', 'base.norm.weight'].sort());
  });

  test('on WebGPU too: frozen arrays are inputs never written, the adapters learn', async () => {
    const gpu = await gpuDevice();
    const adapted = nn.lora(nn.mlp([16, 8, 3]), {
      rank: 2,
      targets: ['layers.0'],
      train: ['layers.1'],
    });
    const init = adapted.init(5);
    const train = await adamwStep(adapted as Model<never>, init, gpu);
    const batch = batchOf(6);
    const first = await train.run(batch);
    let last = first;
    for (let i = 0; i < 20; i++) last = await train.run(batch);
    expect(last.loss).toBeLessThan(first.loss);
    const before = await readByPath(init);
    const after = await readByPath(await train.params());
    // Uploaded as float32: the frozen layer reads back as its host values rounded once.
    const frozen = [...before.keys()].filter((p) => p.startsWith('base.layers.0.'));
    expect(frozen.length).toBe(2);
    for (const p of frozen) expect(after.get(p)).toEqual(before.get(p)?.map(Math.fround));
    expect(after.get('base.layers.1.w')).not.toEqual(
      before.get('base.layers.1.w')?.map(Math.fround),
    );
  });

  test('a trainable path that names no parameter is an error listing the paths', async () => {
    const model = nn.mlp([4, 3, 2]);
    await expect(
      compileTrainStep({
        model,
        loss: crossEntropy,
        optimizer: adamw(),
        params: model.init(0),
        device: cpu,
        trainable: ['layers.2'],
      }),
    ).rejects.toThrow(/trainable 'layers\.2' names no parameter; the paths are layers\.0\.b, /);
  });

  test('RING on adapters from B = 0: step 1 leaves A (Γ_A = 0, ∇A = 0), step 2 moves it', async () => {
    // §10.6: with B = 0 the output gradient of A is s·Bᵀg = 0, so RING's degenerate-factor rule
    // (§3.3) gives U_A = 0 at the first step, while B moves; by the second step B ≠ 0 and A trains.
    const adapted = nn.lora(nn.mlp([5, 4, 3]), { rank: 2, targets: ['layers.0'] });
    const init = adapted.init(3);
    const train = await compileTrainStep({
      model: adapted,
      loss: crossEntropy,
      // No weight decay: it alone would shrink A at step 1.
      optimizer: ring({ inverseEvery: 1, covEvery: 1, weightDecay: 0 }),
      params: init,
      device: cpu,
    });
    const rng = prng(8);
    const batch = {
      x: array(uniform(rng, 10 * 5, -2, 2), [10, 5]),
      y: array(
        Int32Array.from({ length: 10 }, (_, i) => i % 3),
        [10],
        'i32',
      ),
    };
    const before = await readByPath(init);
    await train.run(batch);
    const one = await readByPath(await train.params());
    expect(one.get('lora.layers.0.a')).toEqual(before.get('lora.layers.0.a'));
    expect(one.get('lora.layers.0.b')).not.toEqual(before.get('lora.layers.0.b'));
    await train.run(batch);
    const two = await readByPath(await train.params());
    expect(two.get('lora.layers.0.a')).not.toEqual(one.get('lora.layers.0.a'));
    for (const [path, values] of before)
      if (path.startsWith('base.')) expect(two.get(path), path).toEqual(values);
    for (const values of two.values()) expect(values.every(Number.isFinite)).toBe(true);
  });
});

describe('splitTree / joinTrees', () => {
  const leaf = fc.integer().map((n) => new HostArray(Float64Array.of(n), [1], 'f32'));
  const { tree } = fc.letrec<{ tree: unknown }>((t) => ({
    tree: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      leaf,
      fc.array(t('tree'), { maxLength: 3 }),
      // Plain objects, as parameter trees are (fast-check may give null-prototype ones).
      fc
        .dictionary(fc.constantFrom('a', 'b', 'w', 'q'), t('tree'), { maxKeys: 3 })
        .map((d) => ({ ...d })),
    ),
  }));
  test('split by any prefixes then joined gives the same leaves at the same paths', () => {
    fc.assert(
      fc.property(
        tree,
        fc.array(fc.constantFrom('a', 'b.0', '0', 'w', '1.q'), { maxLength: 3 }),
        (t, prefixes) => {
          const isLeaf = (x: unknown): x is HostArray => x instanceof HostArray;
          const paths = leafPaths('test', t, isLeaf, 'a leaf');
          const { kept, rest } = splitTree('test', t as Tree<HostArray>, isLeaf, (p) =>
            underAny(prefixes, p),
          );
          const keptPaths = leafPaths('test', kept, isLeaf, 'a leaf');
          expect(keptPaths.every((p) => underAny(prefixes, p))).toBe(true);
          expect(leafPaths('test', rest, isLeaf, 'a leaf').some((p) => underAny(prefixes, p))).toBe(
            false,
          );
          const joined = joinTrees('test', kept, rest, isLeaf);
          const flat = flattenTree('test', joined, isLeaf, 'a leaf');
          const original = flattenTree('test', t, isLeaf, 'a leaf');
          expect(leafPaths('test', joined, isLeaf, 'a leaf')).toEqual(paths);
          expect(flat.leaves).toEqual(original.leaves);
          flat.leaves.forEach((l, i) => expect(l).toBe(original.leaves[i]));
        },
      ),
    );
  });
});
