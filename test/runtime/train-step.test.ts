// compileTrainStep: one compiled program per step (forward, loss, gradients, update), parameters
// and state resident on the device, metrics read back after the step is submitted.
import { describe, expect, test } from 'vitest';
import {
  adam,
  adamw,
  array,
  compileTrainStep,
  createDevice,
  crossEntropy,
  GrngError,
  kfac,
  mean,
  nn,
  sgd,
  type DeviceArray,
  type HostArray,
  type Tensor,
} from '../../index.js';
import { flattenTree } from '../../core/tree.js';
import { isArrayLeaf } from '../../runtime/jit.js';
import { gpuDevice } from '../support/gpu.js';
import { prng, uniform } from '../support/random.js';

/** 64 points in 4-D, 3 classes by a fixed rule: a small problem an MLP learns in tens of steps. */
function synthetic(seed: number, batch = 64) {
  const x = uniform(prng(seed), batch * 4);
  const y = Int32Array.from(
    { length: batch },
    (_, n) => (x[4 * n] + x[4 * n + 1] > 0 ? 1 : 0) + (x[4 * n + 2] > 0.3 ? 1 : 0),
  );
  return { x: array(x, [batch, 4]), y: array(y, [batch], 'i32') };
}

const readTree = async (tree: unknown) =>
  Promise.all(
    flattenTree('test', tree, isArrayLeaf, 'an array').leaves.map((a) => (a as DeviceArray).read()),
  );

describe('compileTrainStep', () => {
  test(
    'a 2-layer MLP: the loss falls on WebGPU, and compiled steps match the ' +
      'float32 interpreter',
    async () => {
      const batch = synthetic(3);
      const model = nn.mlp([4, 16, 3]);
      const run = async (device: Awaited<ReturnType<typeof createDevice>>, steps: number) => {
        const train = await compileTrainStep({
          model,
          loss: crossEntropy,
          optimizer: adamw({ lr: 0.02 }),
          params: model.init(0),
          device,
          metrics: ['loss', 'accuracy'],
        });
        const losses: number[] = [];
        for (let i = 0; i < steps; i++) losses.push((await train.run(batch)).loss);
        return { losses, params: await readTree(await train.params()) };
      };
      const gpu = await run(await gpuDevice(), 60);
      // A learnable rule and 60 AdamW steps: the loss drops well below its starting ~ln 3.
      expect(gpu.losses[59]).toBeLessThan(0.25 * gpu.losses[0]);
      const short = await run(await gpuDevice(), 5);
      const ref = await run(await createDevice({ kind: 'cpu', precision: 'f32' }), 5);
      // Five steps: the same f32 program but different summation orders in matmuls and reductions
      // (a few ULP each, ~1e-7 relative) moved by AdamW's normalized steps (≤ lr = 0.02 per step;
      // a perturbation δ of g changes m̂/√v̂ by ~δ/|g|); 1e-4 absolute bounds that with margin.
      short.params.forEach((p, k) =>
        p.forEach((v, i) => expect(Math.abs(v - ref.params[k][i])).toBeLessThanOrEqual(1e-4)),
      );
      short.losses.forEach((l, i) => expect(Math.abs(l - ref.losses[i])).toBeLessThanOrEqual(1e-5));
    },
  );

  test('setHyper changes the learning rate for the next steps without recompiling', async () => {
    const gpu = await gpuDevice();
    const model = nn.mlp([4, 8, 3]);
    const train = await compileTrainStep({
      model,
      loss: crossEntropy,
      optimizer: sgd({ lr: 0.1 }),
      params: model.init(1),
      device: gpu,
    });
    const batch = synthetic(4);
    await train.run(batch);
    const programs = gpu.programCount;
    train.setHyper({ lr: 0 });
    const before = await readTree(await train.params());
    await train.run(batch);
    await train.run(batch);
    // lr = 0: SGD leaves the parameters exactly as they were.
    expect(await readTree(await train.params())).toEqual(before);
    expect(gpu.programCount).toBe(programs);
    expect(() => train.setHyper({ lr: -1 })).toThrow(GrngError);
  });

  test(
    'every() variants compile once each: parameters and state stay where ' +
      'their program expects them',
    async () => {
      const gpu = await gpuDevice();
      const model = nn.mlp([4, 8, 3]);
      // Factors every step, inverses every 2: two patterns of due periods, and the step without
      // inverses does not read every state array (its results used to take other arguments'
      // regions, so each variant compiled again for the shuffled layout).
      const train = await compileTrainStep({
        model,
        loss: crossEntropy,
        optimizer: kfac({ lr: 0.01, covEvery: 1, inverseEvery: 2 }),
        params: model.init(1),
        device: gpu,
      });
      const batch = synthetic(4);
      const counts: number[] = [];
      for (let t = 0; t < 6; t++) {
        await train.run(batch);
        counts.push(gpu.programCount);
      }
      // Steps 1 and 2 meet both patterns; from then on nothing new compiles.
      expect(counts.slice(2)).toEqual(Array(4).fill(counts[1]));
    },
  );

  test(
    'steps queued without awaiting run in order and give the same results ' + 'as awaited ones',
    async () => {
      const gpu = await gpuDevice();
      const model = nn.mlp([4, 8, 3]);
      const batches = [synthetic(5), synthetic(6), synthetic(7)];
      const make = () =>
        compileTrainStep({
          model,
          loss: crossEntropy,
          optimizer: adam({ lr: 0.01 }),
          params: model.init(2),
          device: gpu,
        });
      const queued = await make();
      const pending = batches.map((b) => queued.run(b));
      const awaited = await make();
      const one: number[] = [];
      for (const b of batches) one.push((await awaited.run(b)).loss);
      expect((await Promise.all(pending)).map((m) => m.loss)).toEqual(one);
      expect(await readTree(await queued.params())).toEqual(await readTree(await awaited.params()));
    },
  );

  test('LoRA: the adapters train, the frozen base never changes', async () => {
    const gpu = await gpuDevice();
    const base = nn.dense(4, 3).init(7) as { w: HostArray; b: HostArray };
    const baseValues = Array.from(base.w.data);
    const model = nn.loraDense(base, 2);
    const train = await compileTrainStep({
      model,
      loss: crossEntropy,
      optimizer: adamw({ lr: 0.05 }),
      params: model.init(8),
      device: gpu,
    });
    const batch = synthetic(9);
    const first = await train.run(batch);
    let last = first;
    for (let i = 0; i < 30; i++) last = await train.run(batch);
    expect(last.loss).toBeLessThan(first.loss);
    expect(Array.from(base.w.data)).toEqual(baseValues);
    // The only trainable parameters are A and B; the base lives in the program as constants.
    const params = (await train.params()) as { a: DeviceArray; b: DeviceArray };
    expect(Object.keys(params).sort()).toEqual(['a', 'b']);
  });

  test('bad input: a non-scalar loss, a batch of the wrong shape, unknown metrics', async () => {
    const cpu = await createDevice({ kind: 'cpu' });
    const model = nn.mlp([4, 8, 3]);
    const perSample = (out: Tensor) => mean(out, -1); // [batch], not a scalar
    const train = await compileTrainStep({
      model,
      loss: perSample,
      optimizer: sgd(),
      params: model.init(0),
      device: cpu,
    });
    await expect(train.run(synthetic(1))).rejects.toThrow(
      /the loss must be a scalar tensor, got shape \[64\]/,
    );
    const ok = await compileTrainStep({
      model,
      loss: crossEntropy,
      optimizer: sgd(),
      params: model.init(0),
      device: cpu,
    });
    await expect(
      ok.run({ x: array(new Float64Array(10), [2, 5]), y: array([0, 1], [2], 'i32') }),
    ).rejects.toThrow(/expects inputs \[batch, 4\]/);
    await expect(
      compileTrainStep({
        model,
        loss: crossEntropy,
        optimizer: sgd(),
        params: model.init(0),
        device: cpu,
        metrics: ['f1' as 'loss'],
      }),
    ).rejects.toThrow(/unknown metric 'f1'/);
  });
});
