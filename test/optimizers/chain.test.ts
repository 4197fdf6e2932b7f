// chain(): optax-style gradient transformations before an optimizer, as one compiled optimizer.
import { describe, expect, test } from 'vitest';
import {
  adam,
  adamw,
  addWeightDecay,
  array,
  chain,
  clipByGlobalNorm,
  compileOptimizer,
  createDevice,
  GrngError,
  sgd,
  type DeviceArray,
} from '../../index.js';
import { gpuDevice } from '../support/gpu.js';

const cpu = await createDevice({ kind: 'cpu' });
const read = async (opt: { params(): unknown }) =>
  Promise.all((opt.params() as DeviceArray[]).map((a) => a.read()));

describe('chain', () => {
  test('clipByGlobalNorm then SGD: the step is lr·g·maxNorm/‖g‖ when ‖g‖ > maxNorm, lr·g otherwise', async () => {
    const opt = await compileOptimizer(
      chain(clipByGlobalNorm({ maxNorm: 1 }), sgd({ lr: 0.1 })),
      [array([1, 2]), array([3])],
      { device: cpu },
    );
    await opt.step([array([3, 0]), array([4])]); // ‖g‖ = 5: clipped to norm 1
    let [a, b] = await read(opt);
    // float64 interpreter: exact up to rounding.
    [1 - 0.1 * 0.6, 2, 3 - 0.1 * 0.8].forEach((want, i) =>
      expect(Math.abs([...a, ...b][i] - want)).toBeLessThanOrEqual(1e-15),
    );
    opt.setHyper({ maxNorm: 10 }); // ‖g‖ = 5 ≤ 10 now: unclipped
    await opt.step([array([3, 0]), array([4])]);
    [a, b] = await read(opt);
    [0.94 - 0.3, 2, 2.92 - 0.4].forEach((want, i) =>
      expect(Math.abs([...a, ...b][i] - want)).toBeLessThanOrEqual(1e-15),
    );
  });

  test('addWeightDecay then Adam equals Adam with its own (coupled) weight decay, compiled on WebGPU too', async () => {
    for (const device of [cpu, await gpuDevice()]) {
      const chained = await compileOptimizer(
        chain(addWeightDecay({ weightDecay: 0.1 }), adam({ lr: 0.05 })),
        [array([0.5, -1, 2])],
        { device },
      );
      const plain = await compileOptimizer(
        adam({ lr: 0.05, weightDecay: 0.1 }),
        [array([0.5, -1, 2])],
        { device },
      );
      for (const g of [
        [0.1, 0.2, -0.3],
        [1, -1, 0.5],
        [0, 0.01, 2],
      ]) {
        await chained.step([array(g)]);
        await plain.step([array(g)]);
      }
      // The same arithmetic in the same order: identical results on either device.
      expect(await read(chained)).toEqual(await read(plain));
    }
  });

  test('a hyperparameter name two parts use is qualified by the part', () => {
    const opt = chain(addWeightDecay({ weightDecay: 0.1 }), adamw({ lr: 0.01 }));
    expect(opt.hyper).toMatchObject({
      'addWeightDecay.weightDecay': 0.1,
      'adamw.weightDecay': 0.01,
      lr: 0.01,
    });
    expect(opt.with({ 'adamw.weightDecay': 0.5 }).hyper).toMatchObject({
      'adamw.weightDecay': 0.5,
    });
  });

  test('bad compositions are GrngErrors', () => {
    expect(() => chain(clipByGlobalNorm(), clipByGlobalNorm(), sgd())).toThrow(GrngError);
    expect(() => clipByGlobalNorm({ maxNorm: -1 })).toThrow(/maxNorm must be in/);
    expect(() => chain(clipByGlobalNorm(), sgd()).with({ maxNorm: 0 })).toThrow(GrngError);
  });
});
