// The non-finite guard of compileTrainStep: a step whose loss, gradients or update are not finite
// is skipped on the device (parameters and optimizer state bit for bit as before it), counted in
// the `skipped` metric, and named in TrainStep.lastSkip; isFinite itself is checked against
// Number.isFinite on the values that matter (NaN, ±∞, the largest finite, subnormals).
import { describe, expect, test } from 'vitest';
import {
  adamw,
  array,
  compileTrainStep,
  createDevice,
  crossEntropy,
  defineOptimizer,
  div,
  isFinite,
  jit,
  kfac,
  mean,
  mul,
  nn,
  sub,
  sqrt,
  abs,
  where,
  type Device,
  type HostArray,
  type DeviceArray,
  type Tensor,
} from '../../index.js';
import { flattenTree } from '../../core/tree.js';
import { isArrayLeaf } from '../../runtime/jit.js';
import { gpuDevice } from '../support/gpu.js';
import { prng, uniform } from '../support/random.js';

const readTree = async (tree: unknown): Promise<Float64Array[]> =>
  Promise.all(
    flattenTree('test', tree, isArrayLeaf, 'an array').leaves.map((a) => (a as DeviceArray).read()),
  );

function batchOf(seed: number, poison?: number) {
  const x = uniform(prng(seed), 16 * 4);
  if (poison !== undefined) x[5] = poison;
  const y = Int32Array.from({ length: 16 }, (_, n) => ((x[4 * n] > 0 ? 1 : 0) + n) % 2);
  return { x: array(x, [16, 4]), y: array(y, [16], 'i32') };
}

/** Where two trees' leaves first differ bit for bit ('leaf i [j]: a vs b'), if anywhere. */
function firstDifference(x: Float64Array[], y: Float64Array[]): string | undefined {
  if (x.length !== y.length) return `${x.length} leaves vs ${y.length}`;
  for (let i = 0; i < x.length; i++) {
    const bytes = (a: Float64Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    if (bytes(x[i]).equals(bytes(y[i]))) continue;
    const j = x[i].findIndex((v, k) => !Object.is(v, y[i][k]));
    return `leaf ${i} [${j}]: ${x[i][j]} vs ${y[i][j]}`;
  }
  return undefined;
}

const devices: [string, () => Promise<Device>][] = [
  ['WebGPU', gpuDevice],
  ['the f64 interpreter', () => createDevice({ kind: 'cpu' })],
];

describe('isFinite', () => {
  test.each(devices)('agrees with Number.isFinite on %s', async (_, open) => {
    const device = await open();
    const f32 = 3.4028234663852886e38;
    const values = [0, -0, 1, -2.5, f32, -f32, 1e-45, -1e-45, 1.1754943508222875e-38];
    const bad = [Number.NaN, Infinity, -Infinity];
    // 257 elements: past one 256-wide workgroup, non-finite values at both ends and inside.
    const data = Float64Array.from({ length: 257 }, (_, i) =>
      i % 7 === 3 ? bad[i % 3] : values[i % values.length],
    );
    data[0] = Number.NaN;
    data[256] = -Infinity;
    const f = jit((x: Tensor) => isFinite(x), { device });
    const got = await ((await f(array(data, [257]))) as DeviceArray).read();
    expect(Array.from(got)).toEqual(Array.from(data, (v) => (Number.isFinite(v) ? 1 : 0)));
    // An f32 result of an elementwise kernel (one that could run on vec4s) keeps the finite ones.
    const kept = jit((x: Tensor) => where(isFinite(x), x, 0), { device });
    const values32 = await ((await kept(array(data, [257]))) as DeviceArray).read();
    expect(Array.from(values32)).toEqual(
      Array.from(data, (v) =>
        Number.isFinite(v) ? (device.kind === 'cpu' ? v : Math.fround(v)) : 0,
      ),
    );
  });
});

describe('compileTrainStep skips non-finite steps', () => {
  test.each(['AdamW', 'K-FAC'])(
    '%s: a NaN in batch k leaves parameters and state bit for bit, counts it, training goes on',
    async (name) => {
      const model = nn.mlp([4, 8, 2]);
      const common = {
        model,
        loss: crossEntropy,
        params: model.init(1),
        device: await gpuDevice(),
      };
      const train =
        name === 'AdamW'
          ? await compileTrainStep({ ...common, optimizer: adamw({ lr: 0.05 }) })
          : await compileTrainStep({ ...common, optimizer: kfac({ lr: 0.05 }) });
      for (let k = 0; k < 3; k++) expect((await train.run(batchOf(k))).skipped).toBe(0);
      const [paramsBefore, stateBefore] = [
        await readTree(await train.params()),
        await readTree(await train.state()),
      ];
      const poisoned = await train.run(batchOf(3, Number.NaN));
      expect(poisoned.skipped).toBe(1);
      expect(train.skipped).toBe(1);
      expect(train.lastSkip?.step).toBe(4);
      // The loss, unless relu dropped the NaN (WGSL's max(NaN, 0) may return 0): then the first
      // layer's weight gradient, xᵀδ, which reads x itself.
      expect(train.lastSkip?.quantity).toMatch(/^the (loss|gradient of layers\.0\.w)$/);
      // Bit for bit: the guard selects the old values, it does not recompute them.
      expect(await readTree(await train.params())).toEqual(paramsBefore);
      expect(await readTree(await train.state())).toEqual(stateBefore);
      // Clean batches after it train as usual: finite, and the parameters move.
      for (let k = 4; k < 7; k++) {
        const m = await train.run(batchOf(k));
        expect(m.skipped).toBe(0);
        expect(Number.isFinite(m.loss)).toBe(true);
      }
      const after = await readTree(await train.params());
      expect(after.every((leaf) => leaf.every(Number.isFinite))).toBe(true);
      expect(after).not.toEqual(paramsBefore);
      expect(train.skipped).toBe(1);
    },
  );

  test('an infinite gradient under a finite loss is named by its parameter path', async () => {
    // sqrt(|z|) has a finite value and an infinite slope at z = 0: zero weights give zero logits.
    const model = nn.mlp([4, 3, 2]);
    const zeros = model.init(0);
    const flat = flattenTree('test', zeros, isArrayLeaf, 'an array');
    const params = flat.rebuild(
      flat.leaves.map((leaf) => {
        const { shape } = leaf as HostArray;
        return array(new Float64Array(shape.reduce((a, b) => a * b, 1)), shape);
      }),
    );
    const train = await compileTrainStep({
      model,
      loss: (out: Tensor) => mean(sqrt(abs(out))),
      optimizer: adamw({ lr: 0.05 }),
      params,
      device: await gpuDevice(),
    });
    const m = await train.run(batchOf(0));
    expect(m.loss).toBe(0);
    expect(m.skipped).toBe(1);
    expect(train.lastSkip?.quantity).toMatch(/^the gradient of layers\.\d\.[wb]$/);
  });

  test.each(devices)(
    'an update that divides by zero is named as the updated parameter (%s)',
    async (_, open) => {
      const divideByZero = defineOptimizer({
        name: 'divide-by-zero',
        hyper: { lr: 0.1 },
        init: () => ({}),
        update: (ctx) => ({
          params: ctx.map((p, g) => p.sub(div(g, 0)), ctx.params, ctx.grads),
          state: {},
        }),
      });
      const model = nn.mlp([4, 2]);
      const train = await compileTrainStep({
        model,
        loss: crossEntropy,
        optimizer: divideByZero(),
        params: model.init(2),
        device: await open(),
      });
      const before = await readTree(await train.params());
      const m = await train.run(batchOf(1));
      expect(m.skipped).toBe(1);
      expect(train.lastSkip?.quantity).toMatch(/^the updated layers\.0\.[wb]$/);
      expect(train.lastSkip?.hyper).toEqual({ lr: 0.1 });
      expect(await readTree(await train.params())).toEqual(before);
    },
  );

  test('layers of 2^20 elements and more are checked one at a time, with the same outcome', async () => {
    // Their new values are stored and tested each on its own (compiler/kernels/checked-alone.ts):
    // a step is kept exactly as the unguarded program computes it, and skipped when only the
    // large weight's update divides by zero.
    const model = nn.mlp([1024, 1024, 2]);
    const x = uniform(prng(7), 4 * 1024);
    const batch = { x: array(x, [4, 1024]), y: array(Int32Array.from([0, 1, 1, 0]), [4], 'i32') };
    const options = { model, loss: crossEntropy, params: model.init(3), device: await gpuDevice() };
    const guarded = await compileTrainStep({ ...options, optimizer: adamw({ lr: 0.01 }) });
    const unguarded = await compileTrainStep({
      ...options,
      optimizer: adamw({ lr: 0.01 }),
      skipNonFinite: false,
    });
    for (let k = 0; k < 2; k++) {
      expect((await guarded.run(batch)).skipped).toBe(0);
      await unguarded.run(batch);
    }
    // Leaves of 2^20 elements: compared as bits (a deep toEqual of them takes seconds).
    expect(
      firstDifference(
        await readTree(await guarded.params()),
        await readTree(await unguarded.params()),
      ),
    ).toBeUndefined();
    expect(
      firstDifference(
        await readTree(await guarded.state()),
        await readTree(await unguarded.state()),
      ),
    ).toBeUndefined();

    const largeOnly = defineOptimizer({
      name: 'divide-large-by-zero',
      hyper: { lr: 0.1 },
      init: () => ({}),
      update: (ctx) => ({
        params: ctx.map(
          (p, g) => (p.size >= 2 ** 20 ? sub(p, div(g, 0)) : sub(p, mul(ctx.hyper.lr, g))),
          ctx.params,
          ctx.grads,
        ),
        state: {},
      }),
    });
    const train = await compileTrainStep({ ...options, optimizer: largeOnly() });
    const before = await readTree(await train.params());
    expect((await train.run(batch)).skipped).toBe(1);
    expect(train.lastSkip?.quantity).toBe('the updated layers.0.w');
    expect(firstDifference(await readTree(await train.params()), before)).toBeUndefined();
  });

  test('skipNonFinite: false applies the step whatever it holds (the unguarded program)', async () => {
    const model = nn.mlp([4, 8, 2]);
    const train = await compileTrainStep({
      model,
      loss: crossEntropy,
      optimizer: adamw({ lr: 0.05 }),
      params: model.init(1),
      device: await gpuDevice(),
      skipNonFinite: false,
    });
    const m = await train.run(batchOf(3, Number.NaN));
    expect(m.skipped).toBe(0);
    const params = await readTree(await train.params());
    expect(params.some((leaf) => leaf.some(Number.isNaN))).toBe(true);
  });

  test("skipNonFinite: 'gradients' skips bad data but not an update that overflows", async () => {
    const model = nn.mlp([4, 8, 2]);
    const options = { model, loss: crossEntropy, params: model.init(1), device: await gpuDevice() };
    const train = await compileTrainStep({
      ...options,
      optimizer: adamw({ lr: 0.05 }),
      skipNonFinite: 'gradients',
    });
    const before = await readTree(await train.params());
    expect((await train.run(batchOf(3, Number.NaN))).skipped).toBe(1);
    expect(train.lastSkip?.quantity).toMatch(/^the (loss|gradient of layers\.0\.w)$/);
    expect(await readTree(await train.params())).toEqual(before);
    // lr 1e39 is ∞ in f32: finite gradients, an infinite update, applied (only 'all' tests it).
    const overflow = await compileTrainStep({
      ...options,
      optimizer: adamw({ lr: 1e39 }),
      skipNonFinite: 'gradients',
    });
    expect((await overflow.run(batchOf(1))).skipped).toBe(0);
    const params = await readTree(await overflow.params());
    expect(params.some((leaf) => leaf.some((v) => !Number.isFinite(v)))).toBe(true);
    await expect(
      compileTrainStep({ ...options, optimizer: adamw(), skipNonFinite: 'yes' as never }),
    ).rejects.toThrow(/skipNonFinite must be true, false or 'gradients', got yes/);
  });
});
