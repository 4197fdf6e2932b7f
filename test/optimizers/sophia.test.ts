// Sophia (docs/algorithms.md §6.5) and K-FAC on a 2-layer MLP: B5's per-step bound, the Hessian
// EMA's refresh schedule, training, and compiled (WebGPU) steps against the float32 interpreter.
import { describe, expect, test } from 'vitest';
import {
  array,
  compileTrainStep,
  createDevice,
  crossEntropy,
  kfac,
  nn,
  sophia,
  type DeviceArray,
} from '../../index.js';
import { flattenTree } from '../../core/tree.js';
import { isArrayLeaf } from '../../runtime/jit.js';
import { gpuDevice } from '../support/gpu.js';
import { prng, uniform } from '../support/random.js';

function synthetic(seed: number, batch = 32) {
  const x = uniform(prng(seed), batch * 4);
  const y = Int32Array.from(
    { length: batch },
    (_, n) => (x[4 * n] + x[4 * n + 1] > 0 ? 1 : 0) + (x[4 * n + 2] > 0.3 ? 1 : 0),
  );
  return { x: array(x, [batch, 4]), y: array(y, [batch], 'i32') };
}
const read = async (tree: unknown) =>
  Promise.all(
    flattenTree('test', tree, isArrayLeaf, 'an array').leaves.map((a) => (a as DeviceArray).read()),
  );

describe('sophia', () => {
  for (const estimator of ['hutchinson', 'gnb'] as const) {
    test(
      `B5 (${estimator}): every step moves θ by at most η beyond the decay; ` +
        `h refreshes only on t ≡ 1 (mod k)`,
      async () => {
        const cpu = await createDevice({ kind: 'cpu' });
        const model = nn.mlp([4, 8, 3]);
        const lr = 0.05;
        const weightDecay = 0.1;
        const train = await compileTrainStep({
          model,
          loss: crossEntropy,
          optimizer: sophia({ lr, weightDecay, every: 3, estimator, rho: 0.04 }),
          params: model.init(1),
          device: cpu,
        });
        let before = await read(await train.params());
        let h: Float64Array[] = [];
        for (let t = 1; t <= 7; t++) {
          await train.run(synthetic(t));
          const after = await read(await train.params());
          const state = (await train.state()) as { h: unknown };
          const hNow = await read(state.h);
          // Δθ = −ηλθ − η·clip(·, 1): removing the decay leaves |·| ≤ η (float64: 1e-12 slack).
          after.forEach((p, k) =>
            p.forEach((v, i) =>
              expect(Math.abs(v - before[k][i] * (1 - lr * weightDecay))).toBeLessThanOrEqual(
                lr * (1 + 1e-12),
              ),
            ),
          );
          if (t > 1) {
            const changed = hNow.some((leaf, k) => leaf.some((v, i) => v !== h[k][i]));
            expect(changed).toBe((t - 1) % 3 === 0);
          }
          before = after;
          h = hNow;
        }
      },
    );
  }
});

describe('second-order optimizers on a 2-layer MLP', () => {
  const cases = {
    'sophia-h': () => sophia({ lr: 0.02, every: 2 }),
    'sophia-g': () => sophia({ lr: 0.02, every: 2, estimator: 'gnb' }),
    // One program per device (inverses every step) and short Newton–Schulz runs keep compiles
    // small.
    kfac: () =>
      kfac({ lr: 0.05, covEvery: 1, inverseEvery: 1, inverseIterations: 6, powerSteps: 4 }),
  };
  for (const name of Object.keys(cases) as (keyof typeof cases)[]) {
    test(`${name}: trains, and compiled WebGPU steps match the float32 interpreter`, async () => {
      const model = nn.mlp([4, 8, 3]);
      const batch = synthetic(11);
      const run = async (device: Awaited<ReturnType<typeof createDevice>>, steps: number) => {
        const common = { model, loss: crossEntropy, params: model.init(3), device };
        const train =
          name === 'kfac'
            ? await compileTrainStep({ ...common, optimizer: cases.kfac() })
            : await compileTrainStep({ ...common, optimizer: cases[name]() });
        const losses: number[] = [];
        for (let i = 0; i < steps; i++) losses.push((await train.run(batch)).loss);
        return { losses, params: await read(await train.params()) };
      };
      const gpu = await run(await gpuDevice(), 4);
      const ref = await run(await createDevice({ kind: 'cpu', precision: 'f32' }), 4);
      // The same f32 program; summation orders differ (matmuls, reductions, Newton–Schulz), ~1e-7
      // relative per op, and the steps are bounded (Sophia: ≤ η per coordinate; K-FAC: KL-clipped):
      // 1e-4 after 4 steps leaves a wide margin. Sampled labels and probes are bit-identical.
      gpu.params.forEach((p, k) =>
        p.forEach((v, i) => expect(Math.abs(v - ref.params[k][i])).toBeLessThanOrEqual(1e-4)),
      );
      expect(gpu.losses[3]).toBeLessThan(gpu.losses[0]);
    });
  }
});
