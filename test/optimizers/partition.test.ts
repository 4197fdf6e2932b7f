// partition(): different optimizers for different parameters, as one compiled optimizer.
import fc from 'fast-check';
import { expect, test } from 'vitest';
import {
  adam,
  array,
  clipByGlobalNorm,
  compileOptimizer,
  compileTrainStep,
  createDevice,
  crossEntropy,
  defineOptimizer,
  GrngError,
  kfac,
  mul,
  nn,
  partition,
  sgd,
  sub,
  type DeviceArray,
} from '../../index.js';
import { flattenTree } from '../../core/tree.js';
import { isArrayLeaf } from '../../runtime/jit.js';
import { int, prng, seedArb, uniform } from '../support/random.js';

/** Every leaf of a tree of device arrays, in flattenTree order, read back. */
async function leaves(tree: unknown): Promise<number[][]> {
  const { leaves: ls } = flattenTree('test', tree, isArrayLeaf, 'an array');
  return Promise.all(ls.map(async (a) => Array.from(await (a as DeviceArray).read())));
}

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

test(
  'paths name the leaves whatever the tree: a root list (paths 0, 1) and ' +
    '{w, b} records built w first',
  async () => {
    const cpu = await createDevice({ kind: 'cpu' });
    // A root list: its paths are '0' and '1'.
    const listParams = () => [array([1, -2]), array([0.5])];
    const listGrads = [array([0.3, 0.1]), array([-1])];
    const byIndex = await compileOptimizer(
      partition((path) => (path === '0' ? 'a' : 'b'), {
        a: sgd({ lr: 0.1 }),
        b: adam({ lr: 0.01 }),
      }),
      listParams(),
      { device: cpu },
    );
    const a = await compileOptimizer(sgd({ lr: 0.1 }), listParams(), { device: cpu });
    const b = await compileOptimizer(adam({ lr: 0.01 }), listParams(), { device: cpu });
    await byIndex.step(listGrads);
    await a.step(listGrads);
    await b.step(listGrads);
    const [got, wantA, wantB] = [
      await leaves(byIndex.params()),
      await leaves(a.params()),
      await leaves(b.params()),
    ];
    expect(got).toEqual([wantA[0], wantB[1]]);
    // Twelve leaves: paths '0' … '11' by index (sorted as text, '10' would come before '2').
    const many = () => Array.from({ length: 12 }, (_, i) => array([i]));
    const manyGrads = Array.from({ length: 12 }, () => array([1]));
    const tenth = await compileOptimizer(
      partition((path) => (path === '10' ? 'a' : 'b'), { a: sgd({ lr: 1 }), b: sgd({ lr: 0 }) }),
      many(),
      { device: cpu },
    );
    await tenth.step(manyGrads);
    expect((await leaves(tenth.params())).map(([v]) => v)).toEqual(
      Array.from({ length: 12 }, (_, i) => (i === 10 ? 9 : i)),
    );

    // Records whose keys are not in sorted order (nn.dense builds { w, b }): biases by path.
    const params = () => ({
      layers: [
        { w: array([[1, 2]]), b: array([0.5]) },
        { w: array([[0.1], [-0.2]]), b: array([2, -1]) },
      ],
    });
    const grads = {
      layers: [
        { w: array([[0.1, 0.2]]), b: array([1]) },
        { w: array([[1], [1]]), b: array([-3, 0.5]) },
      ],
    };
    const mixed = await compileOptimizer(
      partition((path) => (path.endsWith('.b') ? 'bias' : 'weight'), {
        bias: sgd({ lr: 0.1 }),
        weight: adam({ lr: 0.01 }),
      }),
      params(),
      { device: cpu },
    );
    const biasAlone = await compileOptimizer(sgd({ lr: 0.1 }), params(), { device: cpu });
    const weightAlone = await compileOptimizer(adam({ lr: 0.01 }), params(), { device: cpu });
    await mixed.step(grads);
    await biasAlone.step(grads);
    await weightAlone.step(grads);
    // flattenTree's order: layers.0.b, layers.0.w, layers.1.b, layers.1.w.
    const [m, sb, aw] = [
      await leaves(mixed.params()),
      await leaves(biasAlone.params()),
      await leaves(weightAlone.params()),
    ];
    expect(m).toEqual([sb[0], aw[1], sb[2], aw[3]]);
  },
);

test(
  'K-FAC per labelled group equals K-FAC on the whole model (its layers ' +
    'are independent blocks)',
  async () => {
    const cpu = await createDevice({ kind: 'cpu' });
    await fc.assert(
      fc.asyncProperty(seedArb, fc.integer({ min: 1, max: 6 }), async (seed, B) => {
        const model = nn.mlp([3, 4, 3], { activation: 'tanh' });
        // ν = 1 (KL clip off: κ ≫ η²Σ⟨V, G⟩), so nothing couples the layers. The empirical Fisher:
        // the sampled one ('mc') cannot run inside partition yet (its ctx.output gets the group's
        // parameter list, not the model's tree: a TypeError in the model's apply).
        const settings = {
          lr: 0.1,
          klClip: 1e30,
          covEvery: 1,
          inverseEvery: 1,
          fisher: 'empirical',
        };
        const rng = prng(seed);
        const batches = [0, 1].map(() => ({
          x: array(uniform(rng, B * 3, -2, 2), [B, 3]),
          y: array(
            Int32Array.from({ length: B }, () => int(rng, 0, 2)),
            [B],
            'i32',
          ),
        }));
        const start = (optimizer: unknown) =>
          compileTrainStep({
            model,
            loss: crossEntropy,
            optimizer: optimizer as never,
            params: model.init(seed),
            device: cpu,
            seed,
          });
        const whole = await start(kfac(settings));
        const split = await start(
          partition((path) => (path.startsWith('layers.0') ? 'first' : 'rest'), {
            first: kfac(settings),
            rest: kfac(settings),
          }),
        );
        for (const batch of batches) {
          await whole.run(batch);
          await split.run(batch);
        }
        // The same per-layer operations on the same numbers: identical float64 results.
        expect(await leaves(await split.params())).toEqual(await leaves(await whole.params()));
      }),
      { numRuns: 6 },
    );
  },
);

test(
  "every part's settings are checked, parts without a validate compose, " +
    'and entries must be optimizers',
  () => {
    const two = partition(() => 'a', { a: sgd(), b: sgd() });
    expect(() => two.with({ 'b.lr': -1 })).toThrow(/lr must be/);
    expect(() => two.with({ 'a.lr': -1 })).toThrow(/lr must be/);
    expect(() => two.with({ 'a.lr': 0.5, 'b.lr': 0.2 })).not.toThrow();
    const plainSgd = defineOptimizer({
      name: 'plainSgd',
      hyper: { lr: 0.1 },
      init: () => ({}),
      update: ({ params, grads, hyper, map }) => ({
        params: map((p, g) => sub(p, mul(hyper.lr, g)), params, grads),
        state: {},
      }),
    });
    expect(() =>
      partition(() => 'a', { a: plainSgd(), b: sgd() }).with({ 'b.lr': 0.2 }),
    ).not.toThrow();
    for (const bad of [clipByGlobalNorm(), undefined, {}])
      expect(() => partition(() => 'a', { a: sgd(), b: bad as never })).toThrow(GrngError);
  },
);
