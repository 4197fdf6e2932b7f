// partition(): different optimizers for different parameters, as one compiled optimizer.
import { expect, test } from 'vitest';
import {
  adam,
  array,
  compileOptimizer,
  createDevice,
  GrngError,
  partition,
  sgd,
  type DeviceArray,
} from '../../index.js';

test('each labelled group follows its own optimizer exactly (as if run alone)', async () => {
  const cpu = await createDevice({ kind: 'cpu' });
  const params = () => ({
    layers: [
      {
        w: array([
          [1, 2],
          [3, 4],
        ]),
        b: array([0.5, -0.5]),
      },
      { w: array([[0.1, -0.2]]), b: array([2]) },
    ],
  });
  const grads = [
    {
      layers: [
        {
          w: array([
            [0.1, 0.2],
            [0.3, 0.4],
          ]),
          b: array([1, -1]),
        },
        { w: array([[1, 1]]), b: array([-3]) },
      ],
    },
    {
      layers: [
        {
          w: array([
            [-0.5, 0],
            [0, 0.5],
          ]),
          b: array([0.2, 0.2]),
        },
        { w: array([[0.3, -2]]), b: array([1]) },
      ],
    },
  ];
  const mixed = await compileOptimizer(
    partition((path) => (path.startsWith('layers.0') ? 'first' : 'rest'), {
      first: sgd({ lr: 0.1, momentum: 0.9 }),
      rest: adam({ lr: 0.01 }),
    }),
    params(),
    { device: cpu },
  );
  const alone = {
    first: await compileOptimizer(sgd({ lr: 0.1, momentum: 0.9 }), params().layers[0], {
      device: cpu,
    }),
    rest: await compileOptimizer(adam({ lr: 0.01 }), params().layers[1], { device: cpu }),
  };
  for (const g of grads) {
    await mixed.step(g);
    await alone.first.step(g.layers[0]);
    await alone.rest.step(g.layers[1]);
  }
  const got = mixed.params() as { layers: { w: DeviceArray; b: DeviceArray }[] };
  const want = [alone.first.params(), alone.rest.params()] as { w: DeviceArray; b: DeviceArray }[];
  for (let i = 0; i < 2; i++) {
    // The same float64 arithmetic in the same order: identical.
    expect(Array.from(await got.layers[i].w.read())).toEqual(Array.from(await want[i].w.read()));
    expect(Array.from(await got.layers[i].b.read())).toEqual(Array.from(await want[i].b.read()));
  }
  expect(Object.keys(partition(() => 'a', { a: sgd() }).hyper)).toContain('a.lr');
});

test('a label without an optimizer is a GrngError naming the parameter', async () => {
  const cpu = await createDevice({ kind: 'cpu' });
  const opt = partition((path) => (path === 'w' ? 'dense' : 'other'), { dense: sgd() });
  await expect(
    compileOptimizer(opt, { w: array([1]), b: array([2]) }, { device: cpu }),
  ).rejects.toThrow(/label 'other' \(for b\) has no optimizer/);
  expect(() => partition(() => 'a', {})).toThrow(GrngError);
});
