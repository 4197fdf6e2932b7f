// The Trainer on a tiny synthetic image dataset: epochs of seeded shuffles, per-step records in
// order, test evaluation, and a checkpoint written mid-epoch that resumes to bit-identical
// parameters, state and per-step metrics (float64 interpreter).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { adamw, createDevice, GrngError, nn, ring, sgd, type Optimizer } from '../../index.js';
import { flattenTree } from '../../core/tree.js';
import type { ImageDataset, ImageSplit } from '../../runtime/data/image-dataset.js';
import type { DeviceArray } from '../../runtime/device.js';
import { isArrayLeaf } from '../../runtime/jit.js';
import { holdOutValidation } from '../../runtime/data/validation.js';
import { createTrainer, shuffled, type StepRecord } from '../../runtime/trainer.js';
import type { WebGpuDevice } from '../../runtime/webgpu-device.js';
import { gpuDevice } from '../support/gpu.js';
import { prng } from '../support/random.js';

const cpu = await createDevice({ kind: 'cpu' });
const dir = mkdtempSync(join(tmpdir(), 'grng-trainer-'));

/** 4×4 "images" of three classes: a bright row at 0, 1 or 2 plus noise. */
function split(count: number, seed: number): ImageSplit {
  const rng = prng(seed);
  const x = new Float32Array(count * 16);
  const y = new Int32Array(count);
  for (let n = 0; n < count; n++) {
    y[n] = n % 3;
    for (let p = 0; p < 16; p++)
      x[n * 16 + p] = 0.3 * rng() + (Math.floor(p / 4) === y[n] ? 0.7 : 0);
  }
  return { x, y, count, features: 16 };
}
const data: ImageDataset = { train: split(96, 1), test: split(30, 2), classes: 3 };
const model = nn.mlp([16, 8, 3]);

const read = async (tree: unknown) =>
  Promise.all(
    flattenTree('test', tree, isArrayLeaf, 'an array').leaves.map((a) => (a as DeviceArray).read()),
  );

describe('Trainer', () => {
  test('two epochs: six steps each in order, records per epoch, learns the classes', async () => {
    const steps: StepRecord[] = [];
    const trainer = await createTrainer({
      model,
      optimizer: adamw({ lr: 0.05 }),
      data,
      device: cpu,
      batchSize: 16,
      onStep: (s) => steps.push(s),
    });
    const before = await trainer.evaluate();
    const epochs = await trainer.fit(2);
    expect(epochs.map((e) => [e.epoch, e.steps])).toEqual([
      [1, 6],
      [2, 6],
    ]);
    expect(steps.map((s) => [s.epoch, s.step, s.position])).toEqual(
      Array.from({ length: 12 }, (_, i) => [1 + Math.floor(i / 6), i + 1, (i % 6) + 1]),
    );
    // Three well-separated classes: 12 AdamW steps take the test loss from ≈ ln 3 down by half
    // and the accuracy to at least 90 % (measured: 100 %).
    expect(epochs[1].testLoss).toBeLessThan(0.5 * before.loss);
    expect(epochs[1].testAccuracy).toBeGreaterThanOrEqual(0.9);
    expect(trainer.epoch).toBe(3);
  });

  test('shuffles are seeded permutations, different per epoch', () => {
    const a = shuffled(50, 7);
    expect(Array.from(a).sort((p, q) => p - q)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(Array.from(shuffled(50, 7))).toEqual(Array.from(a));
    expect(Array.from(shuffled(50, 8))).not.toEqual(Array.from(a));
  });

  test.each(['adamw', 'ring'])(
    '%s: a checkpoint written mid-epoch resumes to bit-identical ' +
      'parameters, state and step metrics',
    async (name) => {
      const optimizer = () =>
        (name === 'ring'
          ? ring({ lr: 0.05, inverseEvery: 2, newtonIters: 6, powerSteps: 4 })
          : adamw({ lr: 0.05 })) as unknown as Optimizer;
      const options = { model, data, device: cpu, batchSize: 16, seed: 3 } as const;
      const wholeSteps: StepRecord[] = [];
      const whole = await createTrainer({
        ...options,
        optimizer: optimizer(),
        onStep: (s) => wholeSteps.push(s),
      });
      await whole.fit(2);

      const first = await createTrainer({ ...options, optimizer: optimizer() });
      await first.fit(2, 8); // epoch 2, position 2
      expect([first.epoch, first.position, first.steps]).toEqual([2, 2, 8]);
      const path = join(dir, `${name}.safetensors`);
      await first.save(path);
      const resumedSteps: StepRecord[] = [];
      const resumed = await createTrainer(
        { ...options, optimizer: optimizer(), onStep: (s) => resumedSteps.push(s) },
        path,
      );
      const records = await resumed.fit(2);
      expect(records.map((r) => r.epoch)).toEqual([2]);
      // Everything but the clock is identical; the clock continues from the saved run's.
      const timeless = (steps: StepRecord[]) => steps.map(({ elapsed: _, ...rest }) => rest);
      expect(timeless(resumedSteps)).toEqual(timeless(wholeSteps.slice(8)));
      expect(resumedSteps[0].elapsed).toBeGreaterThan(first.elapsed);
      expect(await read(await resumed.train.params())).toEqual(
        await read(await whole.train.params()),
      );
      expect(await read(await resumed.train.state())).toEqual(
        await read(await whole.train.state()),
      );
    },
  );

  test(
    'setHyper changes are saved and applied again on resume; elapsed time ' + 'only grows',
    async () => {
      const options = { model, data, device: cpu, batchSize: 16, seed: 4 } as const;
      const whole = await createTrainer({ ...options, optimizer: sgd({ lr: 0.1 }) });
      await whole.fit(1);
      whole.setHyper({ lr: 0.02 });
      await whole.fit(2);

      const first = await createTrainer({ ...options, optimizer: sgd({ lr: 0.1 }) });
      await first.fit(1);
      first.setHyper({ lr: 0.02 });
      expect(first.hyper.lr).toBe(0.02);
      await first.fit(2, 9);
      const path = join(dir, 'sgd-decayed.safetensors');
      await first.save(path);
      // Resumed with the original settings: the saved change wins, as an optimizer's state_dict
      // does.
      const resumed = await createTrainer({ ...options, optimizer: sgd({ lr: 0.1 }) }, path);
      expect(resumed.hyper.lr).toBe(0.02);
      const [record] = await resumed.fit(2);
      expect(await read(await resumed.train.params())).toEqual(
        await read(await whole.train.params()),
      );
      expect(record.elapsed).toBeGreaterThan(first.elapsed);
      expect(record.elapsed).toBeGreaterThanOrEqual(record.seconds);
    },
  );

  test(
    'a validation split is evaluated each epoch; epoch means cover every ' + 'step metric',
    async () => {
      const validated = holdOutValidation(data, 24, 1);
      const trainer = await createTrainer({
        model,
        optimizer: adamw({ lr: 0.05 }),
        data: validated,
        device: cpu,
        batchSize: 16,
        metrics: ['loss', 'gradNorm'],
      });
      const [record] = await trainer.fit(1);
      const direct = await trainer.evaluate(validated.validation);
      expect(record.steps).toBe(4); // 72 training images left, 4 full batches
      expect(record.validationLoss).toBe(direct.loss);
      expect(record.validationAccuracy).toBe(direct.accuracy);
      expect(record.trainAccuracy).toBeUndefined();
      expect(Object.keys(record.means).sort()).toEqual(['gradNorm', 'loss']);
      expect(record.means.gradNorm).toBeGreaterThan(0);
    },
  );

  test('bad settings and a checkpoint from another run are GrngErrors', async () => {
    await expect(
      createTrainer({ model, optimizer: sgd(), data, device: cpu, batchSize: 0 }),
    ).rejects.toThrow(/batchSize/);
    const trainer = await createTrainer({
      model,
      optimizer: sgd({ lr: 0.1 }),
      data,
      device: cpu,
      batchSize: 32,
    });
    await trainer.fit(1);
    const path = join(dir, 'sgd.safetensors');
    await trainer.save(path);
    await expect(
      createTrainer({ model, optimizer: adamw(), data, device: cpu, batchSize: 32 }, path),
    ).rejects.toThrow(GrngError);
    await expect(
      createTrainer({ model, optimizer: sgd(), data, device: cpu, batchSize: 32, seed: 9 }, path),
    ).rejects.toThrow(/seed/);
    // Another model (hidden width 6, not 8): refused, naming the checkpoint and a parameter path.
    const other = nn.mlp([16, 6, 3]);
    await expect(
      createTrainer({ model: other, optimizer: sgd(), data, device: cpu, batchSize: 32 }, path),
    ).rejects.toThrow(
      /sgd\.safetensors holds parameters of another model: the parameters do not fit the model: layers\.0\.b is f32\[8\], the model makes f32\[6\]/,
    );
  });

  test('a run whose steps keep failing stops after maxSkips, naming the first failure', async () => {
    // lr 1e30: the weights grow by ~1e30 a step until the loss or an update overflows f32; from
    // then on every step fails, and three skipped in a row stop the run.
    const steps: StepRecord[] = [];
    const trainer = await createTrainer({
      model,
      optimizer: sgd({ lr: 1e30 }),
      data,
      device: await gpuDevice(),
      batchSize: 16,
      maxSkips: 3,
      onStep: (s) => steps.push(s),
    });
    const error = await trainer.fit(2).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GrngError);
    const skipped = steps.map((s) => s.metrics.skipped);
    const first = skipped.indexOf(1) + 1;
    expect(first).toBeGreaterThan(1);
    expect(skipped).toEqual([...Array<number>(first - 1).fill(0), 1, 1, 1]);
    expect((error as Error).message).toMatch(
      new RegExp(
        `3 steps in a row \\(${first}–${first + 2}\\) were skipped .* At step ${first}, the ` +
          `(loss|gradient of \\S+|updated \\S+) was the first not finite \\(hyperparameters: ` +
          `.*lr 1e\\+30.*before step ${first}\\.`,
      ),
    );
    // The weights are those from before the first failure: finite.
    const params = await read(await trainer.train.params());
    expect(params.every((leaf) => leaf.every(Number.isFinite))).toBe(true);
    await expect(
      createTrainer({ model, optimizer: sgd(), data, device: cpu, maxSkips: 0 }),
    ).rejects.toThrow(/maxSkips/);
  });

  test('a curvature optimizer that blows up: the stop message carries its damping and residuals', async () => {
    // RING at lr 1e300 on the float64 interpreter: its first update leaves the weights near 1e300,
    // and every later loss overflows; the message reports RING's own figures at the first failure.
    const trainer = await createTrainer({
      model,
      optimizer: ring({ lr: 1e300 }),
      data,
      device: cpu,
      batchSize: 16,
      maxSkips: 2,
    });
    const error = (await trainer.fit(2).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(GrngError);
    expect(error.message).toMatch(/hyperparameters: .*dampingCoef -1.*lr 1e\+300.*rho 0\.01/);
    expect(error.message).toMatch(/its reports: fallbacks \S+, residual \S+, damping \S+\)/);
  });

  test(
    'a device destroyed mid-run: fit opens another, reloads the last checkpoint and ends ' +
      'where an uninterrupted run ends, bit for bit',
    async () => {
      const settings = { model, data, batchSize: 16, seed: 3 };
      const reference = await createTrainer({
        ...settings,
        optimizer: adamw({ lr: 0.05 }),
        device: await createDevice(),
      });
      await reference.fit(2);
      const want = await read(await reference.train.params());

      const first = (await createDevice()) as WebGpuDevice;
      const reopened: WebGpuDevice[] = [];
      const seen: number[] = [];
      const trainer = await createTrainer({
        ...settings,
        optimizer: adamw({ lr: 0.05 }),
        device: first,
        checkpoint: { path: join(dir, 'lost.safetensors'), every: 4 },
        reopenDevice: async () => {
          reopened.push((await createDevice()) as WebGpuDevice);
          return reopened[reopened.length - 1];
        },
        onStep: (s) => {
          seen.push(s.step);
          // Step 10 of 12: the last checkpoint is step 8's, so steps 9 and 10 run again.
          if (s.step === 10 && reopened.length === 0) first.gpu.destroy();
        },
      });
      const records = await trainer.fit(2);
      expect(first.lostReason()).toBeDefined();
      expect(reopened).toHaveLength(1);
      expect(await read(await trainer.train.params())).toEqual(want);
      expect(records.map((r) => r.epoch)).toEqual([1, 2]);
      expect(trainer.steps).toBe(12);
      // Reported in order, the replayed steps again after the loss (what was in flight may differ).
      expect(seen.slice(0, 10)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(seen.slice(-4)).toEqual([9, 10, 11, 12]);
    },
  );

  test('without reopenDevice a lost device ends fit with an error that says so', async () => {
    const device = (await createDevice()) as WebGpuDevice;
    const trainer = await createTrainer({
      model,
      optimizer: sgd({ lr: 0.1 }),
      data,
      device,
      batchSize: 16,
      onStep: (s) => {
        if (s.step === 2) device.gpu.destroy();
      },
    });
    await expect(trainer.fit(1)).rejects.toThrow(
      /Trainer: the device was lost at step \d+ \(.*\); give reopenDevice/,
    );
  });
});
