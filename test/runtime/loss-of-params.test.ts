// ctx.loss passed straight to grad and valueAndGrad: this file is also a type test (npx tsc
// --noEmit -p . fails on it when ctx.loss has an optional `labels` parameter, which grad's
// tensor-tree arguments cannot take). At run time the gradient it gives is ctx.grads and the value
// is the step's loss.
import { describe, expect, expectTypeOf, test } from 'vitest';
import {
  array,
  compileTrainStep,
  createDevice,
  crossEntropy,
  defineOptimizer,
  grad,
  nn,
  reshape,
  sub,
  treeMap,
  valueAndGrad,
  zeros,
  zerosLike,
  type DeviceArray,
  type ParamTree,
  type Tensor,
} from '../../index.js';

const probe = defineOptimizer({
  name: 'loss-probe',
  hyper: { lr: 0 },
  init: (params) => ({
    diff: treeMap(zerosLike, params),
    value: zeros([1]) as Tensor,
    relabelled: zeros([1]) as Tensor,
  }),
  update: (ctx) => {
    const dLoss = grad(ctx.loss);
    expectTypeOf(dLoss).parameters.toEqualTypeOf<[ParamTree]>();
    expectTypeOf(dLoss).returns.toEqualTypeOf<ParamTree>();
    const [value] = valueAndGrad(ctx.loss)(ctx.params);
    // Given labels still type-check (and pick the two-argument signature).
    const relabelled: Tensor = ctx.loss(ctx.params, ctx.labels);
    return {
      params: ctx.params,
      state: {
        diff: ctx.map((g, h) => sub(g, h), dLoss(ctx.params), ctx.grads),
        value: reshape(value, [1]),
        relabelled: reshape(sub(relabelled, value), [1]),
      },
    };
  },
});

describe('ctx.loss as a function of the parameters', () => {
  test('grad(ctx.loss) is ctx.grads; valueAndGrad(ctx.loss) gives the loss', async () => {
    const model = nn.mlp([3, 4, 2]);
    const train = await compileTrainStep({
      model,
      loss: crossEntropy,
      optimizer: probe(),
      params: model.init(5),
      device: await createDevice({ kind: 'cpu' }),
    });
    const x = array([0.5, -1, 2, 1, 0, -0.5, 0.25, 1.5, -2, 1, 1, 1], [4, 3]);
    const { loss } = await train.run({ x, y: array([0, 1, 1, 0], [4], 'i32') });
    const state = (await train.state()) as {
      diff: { layers: { w: DeviceArray; b: DeviceArray }[] };
      value: DeviceArray;
      relabelled: DeviceArray;
    };
    const leaves = state.diff.layers.flatMap((l) => [l.w, l.b]);
    expect(leaves).toHaveLength(4);
    // Same float64 graph either way: exactly equal.
    for (const leaf of leaves) for (const d of await leaf.read()) expect(d).toBe(0);
    expect(Array.from(await state.value.read())).toEqual([loss]);
    expect(Array.from(await state.relabelled.read())).toEqual([0]);
  });
});
