// The JIT path's purity check (runtime/update-purity.ts): an update traced twice on the same inputs
// must give the same graph, so one that keeps a counter outside itself, reads Math.random or reads
// the clock is refused by compileOptimizer and compileTrainStep with a GrngError naming the leaf
// that differed, while pure optimizers (whose traces use grad's fresh placeholders, every() and
// taps) run as before.
import { describe, expect, test } from 'vitest';
import {
  adam,
  array,
  compileOptimizer,
  compileTrainStep,
  createDevice,
  crossEntropy,
  defineOptimizer,
  GrngError,
  kfac,
  mul,
  nn,
  ring,
  sub,
  type DeviceArray,
  type Optimizer,
  type Tensor,
} from '../../index.js';

/** Plain SGD whose step size is `scale()`, read while tracing. */
const scaledBy = (name: string, scale: () => number) =>
  defineOptimizer({
    name,
    hyper: { lr: 0.1 },
    init: () => ({}),
    update: ({ params, grads, state, hyper, map }) => ({
      params: map((p, g) => sub(p, mul(mul(hyper.lr, scale()), g)), params, grads),
      state,
    }),
  });

let calls = 0;
const IMPURE: readonly (readonly [string, Optimizer<{ lr: number }, object>])[] = [
  ['a counter kept outside update', scaledBy('counting', () => ++calls)()],
  ['Math.random', scaledBy('jittery', () => Math.random())()],
  ['Date.now', scaledBy('clocked', () => Date.now())()],
];
const REFUSED =
  /: update is not pure: traced twice on the same inputs it gave two different graphs \(the updated parameters at \.w differ\).*ctx\.key.*ctx\.t/;

const cpu = () => createDevice({ kind: 'cpu' });
const params = () => ({ w: array([1, 2, 3, 4], [2, 2]) });
const grads = () => ({ w: array([0.5, -1, 0.25, 2], [2, 2]) });
const model = nn.dense(2, 2, { bias: false });
const batch = () => ({ x: array([1, 0, 0.5, -1, 2, 1], [3, 2]), y: array([0, 1, 1], [3], 'i32') });

describe('impure updates are refused', () => {
  test.each(IMPURE)('%s: compileOptimizer', async (_, optimizer) => {
    const compiled = await compileOptimizer(optimizer, params(), { device: await cpu() });
    const step = compiled.step(grads());
    await expect(step).rejects.toThrow(GrngError);
    await expect(step).rejects.toThrow(new RegExp(`${optimizer.name}${REFUSED.source}`));
  });

  test.each(IMPURE)('%s: compileTrainStep', async (_, optimizer) => {
    const train = await compileTrainStep({
      model,
      loss: crossEntropy,
      optimizer,
      params: params(),
      device: await cpu(),
    });
    const run = train.run(batch());
    await expect(run).rejects.toThrow(GrngError);
    await expect(run).rejects.toThrow(REFUSED);
  });

  test('the differing leaf is named in the state too', async () => {
    let n = 0;
    const drifting = defineOptimizer({
      name: 'drifting',
      hyper: { lr: 0.1 },
      init: (p) => ({ m: { inner: [(p as { w: Tensor }).w] } }),
      update: ({ params, state }) => ({
        params,
        state: { m: { inner: [mul(state.m.inner[0], ++n)] } },
      }),
    });
    const compiled = await compileOptimizer(drifting(), params(), { device: await cpu() });
    await expect(compiled.step(grads())).rejects.toThrow(
      /the updated state at \.m\.inner\[0\] differ/,
    );
  });
});

describe('pure updates are accepted', () => {
  test('adam through compileOptimizer steps as Adam', async () => {
    const compiled = await compileOptimizer(adam({ lr: 0.1 }), params(), { device: await cpu() });
    await compiled.step(grads());
    // Adam's first step is lr·sign(g) (bias-corrected m̂/√v̂ = g/|g|, up to eps).
    const w = await (compiled.params() as { w: DeviceArray }).w.read();
    const want = [1 - 0.1, 2 + 0.1, 3 - 0.1, 4 - 0.1];
    Array.from(w).forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThan(1e-6));
  });

  // Optimizers of different hyperparameter and state types side by side: `any` for the table.
  test.each([
    ['adam', adam()],
    ['kfac', kfac({ inverseEvery: 2 })],
    ['ring', ring({ inverseEvery: 2 })],
  ] as const)('%s through compileTrainStep (two step patterns)', async (_, optimizer) => {
    const mlp = nn.mlp([2, 3, 2]);
    const train = await compileTrainStep({
      model: mlp,
      loss: crossEntropy,
      optimizer: optimizer as Optimizer<any, unknown>,
      params: mlp.init(1),
      device: await cpu(),
    });
    for (let t = 0; t < 2; t++) expect(Number.isFinite((await train.run(batch())).loss)).toBe(true);
  });
});
