// What an optimizer's step context offers beyond gradients: every(S, …) variants, dense-layer taps,
// Hessian-vector products — each checked against plain float64 loops.
import { describe, expect, test } from 'vitest';
import {
  add,
  array,
  compileOptimizer,
  compileTrainStep,
  createDevice,
  crossEntropy,
  defineOptimizer,
  div,
  GrngError,
  matmul,
  mean,
  mT,
  nn,
  square,
  sub,
  treeMap,
  zeros,
  zerosLike,
  type DeviceArray,
  type Tensor,
} from '../../index.js';
import type { HostArray } from '../../core/host-array.js';
import { gpuDevice } from '../support/gpu.js';
import { prng, uniform } from '../support/random.js';

/** Keeps parameters; counts in state how often `every(3, …)` did its work. */
const counter = defineOptimizer({
  name: 'counter',
  hyper: { lr: 0 },
  init: (params) => ({ count: treeMap(zerosLike, params) }),
  update: ({ params, state, every, map }) => ({
    params,
    state: {
      count: every(
        3,
        () => map((c) => add(c, 1), state.count),
        () => state.count,
      ),
    },
  }),
});

describe('every(period, …)', () => {
  test('does its work on steps 1, 4, 7, … and compiles one program per pattern', async () => {
    const gpu = await gpuDevice();
    const opt = await compileOptimizer(counter(), [array([5, 6])], { device: gpu });
    const before = gpu.programCount;
    for (let t = 1; t <= 7; t++) await opt.step([array([0, 0])]);
    const [count] = (opt.state() as { count: DeviceArray[] }).count;
    expect(Array.from(await count.read())).toEqual([3, 3]);
    // Two patterns (period 3 active or not): two update programs, however many steps.
    expect(gpu.programCount - before).toBe(2);
  });
});

describe('curvature context of a training step', () => {
  test(
    "taps: the state's Λ̂ = aᵀa/B and Γ̂ = gᵀg/B match float64 loops " + '(softmax regression)',
    async () => {
      const B = 6;
      const rng = prng(17);
      const x = uniform(rng, B * 3);
      const labels = Int32Array.of(0, 1, 2, 2, 1, 0);
      const factors = defineOptimizer({
        name: 'factors',
        hyper: { lr: 0 },
        init: () => ({ lambda: zeros([4, 4]) as Tensor, gamma: zeros([3, 3]) as Tensor }),
        update: ({ params, taps }) => {
          const [{ a, g }] = taps;
          return {
            params,
            state: { lambda: div(matmul(mT(a), a), B), gamma: div(matmul(mT(g), g), B) },
          };
        },
      });
      const model = nn.dense(3, 3);
      const p = model.init(4) as { w: HostArray; b: HostArray };
      const train = await compileTrainStep({
        model,
        loss: crossEntropy,
        optimizer: factors(),
        params: p,
        device: await createDevice({ kind: 'cpu' }),
      });
      await train.run({ x: array(x, [B, 3]), y: array(labels, [B], 'i32') });
      const state = (await train.state()) as { lambda: DeviceArray; gamma: DeviceArray };
      const [lambda, gamma] = [await state.lambda.read(), await state.gamma.read()];
      const a = Array.from({ length: B }, (_, n) => [x[3 * n], x[3 * n + 1], x[3 * n + 2], 1]);
      const g = a.map((row, n) => {
        const s = [0, 1, 2].map((o) =>
          [0, 1, 2].reduce((acc, i) => acc + row[i] * p.w.data[o * 3 + i], p.b.data[o]),
        );
        const e = s.map((v) => Math.exp(v - Math.max(...s)));
        const z = e.reduce((u, v) => u + v, 0);
        // per sample, not divided by B (docs/algorithms.md §2)
        return e.map((v, o) => v / z - (labels[n] === o ? 1 : 0));
      });
      const second = (rows: number[][], d: number) =>
        Array.from(
          { length: d * d },
          (_, k) => rows.reduce((acc, r) => acc + r[Math.floor(k / d)] * r[k % d], 0) / B,
        );
      // float64 on both sides: agreement to rounding.
      second(a, 4).forEach((v, k) => expect(Math.abs(lambda[k] - v)).toBeLessThanOrEqual(1e-12));
      second(g, 3).forEach((v, k) => expect(Math.abs(gamma[k] - v)).toBeLessThanOrEqual(1e-12));
    },
  );

  test('hvp: ∇²L·g for least squares equals (2/B)·XᵀX·g', async () => {
    const B = 5;
    const rng = prng(23);
    const x = uniform(rng, B * 3);
    const y = uniform(rng, B);
    const newtonish = defineOptimizer({
      name: 'hvp-probe',
      hyper: { lr: 0 },
      init: (params) => ({ hg: treeMap(zerosLike, params) }),
      update: ({ params, grads, hvp }) => ({ params, state: { hg: hvp(grads) } }),
    });
    const model = nn.dense(3, 1, { bias: false });
    const p = model.init(2) as { w: HostArray };
    const mse = (out: Tensor, target: Tensor) => mean(square(sub(out, target)));
    const train = await compileTrainStep({
      model,
      loss: mse,
      optimizer: newtonish(),
      params: p,
      device: await createDevice({ kind: 'cpu' }),
    });
    await train.run({ x: array(x, [B, 3]), y: array(y, [B, 1]) });
    const hg = await ((await train.state()) as { hg: { w: DeviceArray } }).hg.w.read();
    const w = Array.from(p.w.data);
    const resid = Array.from(
      { length: B },
      (_, n) => [0, 1, 2].reduce((s, i) => s + x[3 * n + i] * w[i], 0) - y[n],
    );
    const gw = [0, 1, 2].map((i) => (2 / B) * resid.reduce((s, r, n) => s + r * x[3 * n + i], 0));
    const want = [0, 1, 2].map(
      (i) =>
        (2 / B) *
        Array.from(
          { length: B },
          (_, n) => x[3 * n + i] * [0, 1, 2].reduce((s, j) => s + x[3 * n + j] * gw[j], 0),
        ).reduce((s, v) => s + v, 0),
    );
    want.forEach((v, i) => expect(Math.abs(hg[i] - v)).toBeLessThanOrEqual(1e-12));
  });

  test(
    'compileOptimizer has no model: reading taps is a GrngError that says ' + 'what to use',
    async () => {
      const tapsReader = defineOptimizer({
        name: 'taps-reader',
        hyper: { lr: 0 },
        init: () => ({}),
        update: ({ params, taps }) => ({ params: taps.length > 0 ? params : params, state: {} }),
      });
      const opt = await compileOptimizer(tapsReader(), [array([1])], {
        device: await createDevice({ kind: 'cpu' }),
      });
      const err = await opt.step([array([0])]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GrngError);
      expect((err as GrngError).message).toContain('run taps-reader with compileTrainStep');
    },
  );
});
