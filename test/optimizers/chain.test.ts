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
  defineOptimizer,
  defineTransform,
  GrngError,
  mul,
  sgd,
  sub,
  type DeviceArray,
} from '../../index.js';
import { gpuDevice } from '../support/gpu.js';

const cpu = await createDevice({ kind: 'cpu' });
const read = async (opt: { params(): unknown }) =>
  Promise.all((opt.params() as DeviceArray[]).map((a) => a.read()));

describe('chain', () => {
  test(
    'clipByGlobalNorm then SGD: the step is lr·g·maxNorm/‖g‖ when ‖g‖ > ' +
      'maxNorm, lr·g otherwise',
    async () => {
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
    },
  );

  test(
    'addWeightDecay then Adam equals Adam with its own (coupled) weight ' +
      'decay, compiled on WebGPU too',
    async () => {
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
    },
  );

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

  test(
    'addWeightDecay then Adam equals Adam with its own (coupled) weight ' +
      'decay on the float64 interpreter',
    async () => {
      const chained = await compileOptimizer(
        chain(addWeightDecay({ weightDecay: 0.1 }), adam({ lr: 0.05 })),
        [array([0.5, -1, 2])],
        { device: cpu },
      );
      const plain = await compileOptimizer(
        adam({ lr: 0.05, weightDecay: 0.1 }),
        [array([0.5, -1, 2])],
        {
          device: cpu,
        },
      );
      for (const g of [
        [0.1, 0.2, -0.3],
        [1, -1, 0.5],
      ]) {
        await chained.step([array(g)]);
        await plain.step([array(g)]);
      }
      // g + λθ, then the same Adam operations: identical float64 results (and they moved).
      expect(await read(chained)).toEqual(await read(plain));
      expect(Array.from((await read(chained))[0])).not.toEqual([0.5, -1, 2]);
      expect(() => addWeightDecay({ weightDecay: -1 })).toThrow(/weightDecay must be in/);
    },
  );

  test(
    'the last part must be an optimizer and the others transforms: ' + 'GrngErrors, not TypeErrors',
    () => {
      expect(() => chain()).toThrow(GrngError);
      expect(() => chain(clipByGlobalNorm())).toThrow(GrngError);
      expect(() => chain(sgd(), adam())).toThrow(GrngError);
      expect(() => chain({ name: 'x', hyper: {} }, sgd())).toThrow(GrngError);
      expect(() => chain(clipByGlobalNorm(), { name: 'x', hyper: {} }, sgd())).toThrow(GrngError);
    },
  );

  test(
    "every part's settings are checked (a later transform's too), and " +
      'parts without a validate compose',
    () => {
      const three = chain(clipByGlobalNorm(), addWeightDecay(), sgd());
      expect(() => three.with({ 'addWeightDecay.weightDecay': -1 })).toThrow(/weightDecay must be/);
      expect(() => three.with({ 'sgd.weightDecay': -1 })).toThrow(/weightDecay must be/);
      expect(() => three.with({ maxNorm: -1 })).toThrow(/maxNorm must be/);
      const scale = defineTransform({
        name: 'scale',
        hyper: { factor: 2 },
        init: () => ({}),
        update: ({ grads, hyper, map }) => ({
          grads: map((g) => mul(g, hyper.factor), grads),
          state: {},
        }),
      });
      const plainSgd = defineOptimizer({
        name: 'plainSgd',
        hyper: { lr: 0.1 },
        init: () => ({}),
        update: ({ params, grads, hyper, map }) => ({
          params: map((p, g) => sub(p, mul(hyper.lr, g)), params, grads),
          state: {},
        }),
      });
      expect(() => chain(scale(), plainSgd()).with({ factor: 3, lr: 0.2 })).not.toThrow();
      expect(() => chain(scale(), plainSgd()).with({ lr: -1 })).not.toThrow();
    },
  );
});
