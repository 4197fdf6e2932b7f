// Settings that choose code rather than numbers, on the float64 interpreter:
// - static settings (periods, iteration counts: an optimizer's `static` list, qualified inside
//   chain() and partition()) are compiled into the step, so setHyper of one must rebuild it: the
//   run continues exactly as a fresh optimizer made with the new value, resumed from the same
//   params, state and step;
// - Sophia's `estimator` picks Gauss–Newton–Bartlett or Hutchinson inside the update;
// - the boundaries and choices the validate functions accept and refuse.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  array,
  chain,
  clipByGlobalNorm,
  compileTrainStep,
  createDevice,
  crossEntropy,
  GrngError,
  kfac,
  nn,
  partition,
  reng,
  ring,
  sgd,
  sophia,
  type DeviceArray,
} from '../../index.js';
import { flattenTree } from '../../core/tree.js';
import { isArrayLeaf } from '../../runtime/jit.js';
import { int, prng, seedArb, uniform } from '../support/random.js';
import { rel } from '../curvature/reference.js';

const cpu = await createDevice({ kind: 'cpu' });

/** Host copies of device arrays (a step donates its inputs; a second run needs its own). */
async function hostCopy(tree: unknown): Promise<unknown> {
  const { leaves, rebuild } = flattenTree('test', tree, isArrayLeaf, 'an array');
  return rebuild(
    await Promise.all(
      leaves.map(async (a) =>
        array(await (a as DeviceArray).read(), (a as DeviceArray).shape, (a as DeviceArray).dtype),
      ),
    ),
  );
}
async function flat(tree: unknown): Promise<number[][]> {
  const { leaves } = flattenTree('test', tree, isArrayLeaf, 'an array');
  return Promise.all(leaves.map(async (a) => Array.from(await (a as DeviceArray).read())));
}

describe('static settings: setHyper rebuilds the step', () => {
  const model = nn.mlp([3, 4, 3], { activation: 'tanh' });
  const batches = (seed: number) => {
    const rng = prng(seed);
    return [0, 1, 2].map(() => ({
      x: array(uniform(rng, 5 * 3, -2, 2), [5, 3]),
      y: array(
        Int32Array.from({ length: 5 }, () => int(rng, 0, 2)),
        [5],
        'i32',
      ),
    }));
  };
  // Factories: the optimizers are made inside the test, so that their settings code counts as
  // covered by that test (not as module-load code every test would have to rerun under mutation).
  const cases: readonly (readonly [
    string,
    () => unknown,
    () => unknown,
    Record<string, number>,
  ])[] = [
    // inverseEvery 1 as well: every step then has the same pattern of active periods, so step 2
    // would reuse step 1's program if setHyper did not rebuild it (a new pattern is traced anew).
    [
      'kfac covEvery',
      () => kfac({ covEvery: 1, inverseEvery: 1 }),
      () => kfac({ covEvery: 2, inverseEvery: 1 }),
      { covEvery: 2 },
    ],
    [
      'kfac inverseEvery',
      () => kfac({ covEvery: 1, inverseEvery: 1 }),
      () => kfac({ covEvery: 1, inverseEvery: 2 }),
      { inverseEvery: 2 },
    ],
    [
      'kfac inverseIterations',
      () => kfac({ covEvery: 1, inverseEvery: 1 }),
      () => kfac({ covEvery: 1, inverseEvery: 1, inverseIterations: 1 }),
      { inverseIterations: 1 },
    ],
    [
      'kfac powerSteps',
      () => kfac({ covEvery: 1, inverseEvery: 1 }),
      () => kfac({ covEvery: 1, inverseEvery: 1, powerSteps: 2 }),
      { powerSteps: 2 },
    ],
    ['sophia every', () => sophia({ every: 1 }), () => sophia({ every: 2 }), { every: 2 }],
    [
      'reng newtonIters',
      () => reng({ inverseEvery: 1 }),
      () => reng({ inverseEvery: 1, newtonIters: 2 }),
      { newtonIters: 2 },
    ],
    [
      'chain(clipByGlobalNorm, kfac) inverseIterations',
      () => chain(clipByGlobalNorm(), kfac({ covEvery: 1, inverseEvery: 1 })),
      () => chain(clipByGlobalNorm(), kfac({ covEvery: 1, inverseEvery: 1, inverseIterations: 1 })),
      { inverseIterations: 1 },
    ],
    [
      'partition(kfac, sgd) first.inverseIterations',
      () =>
        partition((p) => (p.startsWith('layers.0') ? 'first' : 'rest'), {
          first: kfac({ covEvery: 1, inverseEvery: 1, fisher: 'empirical' }),
          rest: sgd(),
        }),
      () =>
        partition((p) => (p.startsWith('layers.0') ? 'first' : 'rest'), {
          first: kfac({ covEvery: 1, inverseEvery: 1, fisher: 'empirical', inverseIterations: 1 }),
          rest: sgd(),
        }),
      { 'first.inverseIterations': 1 },
    ],
  ];
  test.each(cases)(
    '%s: step 1, setHyper, steps 2–3 equal a fresh optimizer with the new ' +
      'value resumed after step 1',
    async (_, before, after, change) => {
      const seed = 11;
      const data = batches(seed);
      const start = (optimizer: unknown, extra: object = {}) =>
        compileTrainStep({
          model,
          loss: crossEntropy,
          optimizer: optimizer as never,
          params: model.init(seed),
          device: cpu,
          seed,
          ...extra,
        });
      const changed = await start(before());
      await changed.run(data[0]);
      const params = await hostCopy(await changed.params());
      const state = await hostCopy(await changed.state());
      changed.setHyper(change as never);
      const fresh = await start(after(), { params, state, step: 1 });
      const kept = await start(before(), { params, state, step: 1 });
      for (const batch of data.slice(1)) {
        await changed.run(batch);
        await fresh.run(batch);
        await kept.run(batch);
      }
      // The same program on the same numbers: identical float64 results; and the change matters
      // (the old value gives other numbers), so an ignored setHyper could not pass.
      expect(await flat(await changed.params())).toEqual(await flat(await fresh.params()));
      expect(await flat(await changed.state())).toEqual(await flat(await fresh.state()));
      expect(await flat(await kept.state())).not.toEqual(await flat(await fresh.state()));
    },
  );
});

describe("Sophia's estimator setting", () => {
  test(
    "'gnb': h₁ = B·∇ℓ(ŷ)⊙∇ℓ(ŷ) for a class ŷ (β₂ = 0, B = 1, " +
      "linear-softmax); 'hutchinson' (default): not of that form",
    async () => {
      await fc.assert(
        fc.asyncProperty(
          seedArb,
          fc.integer({ min: 1, max: 4 }),
          fc.integer({ min: 2, max: 4 }),
          async (seed, d, C) => {
            const rng = prng(seed);
            const x = uniform(rng, d);
            const w = uniform(rng, C * d);
            const b = uniform(rng, C);
            const estimateWith = async (estimator: 'gnb' | 'hutchinson') => {
              const train = await compileTrainStep({
                model: nn.dense(d, C),
                loss: crossEntropy,
                optimizer: sophia({ lr: 0, beta2: 0, every: 1, estimator }),
                params: { w: array(w, [C, d]), b: array(b, [C]) },
                device: cpu,
                seed,
              });
              await train.run({ x: array(x, [1, d]), y: array(Int32Array.of(0), [1], 'i32') });
              const h = ((await train.state()) as { h: { w: DeviceArray; b: DeviceArray } }).h;
              // flattenTree order: b, then W row-major.
              return [...(await h.b.read()), ...(await h.w.read())];
            };
            // ∇ℓ(c) of the linear-softmax layer: ∂/∂b = p − e_c, ∂/∂W = (p − e_c)xᵀ.
            const z = Array.from({ length: C }, (_, k) =>
              x.reduce((s, xv, j) => s + w[k * d + j] * xv, b[k]),
            );
            const top = Math.max(...z);
            const e = z.map((v) => Math.exp(v - top));
            const p = e.map((v) => v / e.reduce((s, q) => s + q, 0));
            const candidates = Array.from({ length: C }, (_, c) => {
              const r = p.map((v, k) => v - (k === c ? 1 : 0));
              return [
                ...r.map((v) => v * v),
                ...Array.from({ length: C * d }, (_, k) => (r[Math.floor(k / d)] * x[k % d]) ** 2),
              ];
            });
            const nearest = (h: number[]) => Math.min(...candidates.map((cand) => rel(h, cand)));
            // β₂ = 0: h₁ = 0·h₀ + 1·estimate, exactly the estimate. Products and a softmax of O(1)
            // values: 1e-13 relative. Hutchinson's u ⊙ (∇²L u) with Gaussian u matches none of the
            // C candidates (a probability-0 event): ≥ 1e-6 away.
            expect(nearest(await estimateWith('gnb')), 'GNB').toBeLessThanOrEqual(1e-13);
            expect(nearest(await estimateWith('hutchinson')), 'Hutchinson').toBeGreaterThan(1e-6);
          },
        ),
        { numRuns: 10 },
      );
    },
  );
});

describe('what the validate functions accept and refuse', () => {
  test('closed and open ends: SGD dampening ∈ [0, 1], Sophia every ≥ 1 (integer)', () => {
    expect(() => sgd({ momentum: 0.9, dampening: 1 })).not.toThrow();
    expect(() => sgd({ momentum: 0.9, dampening: 1.5 })).toThrow(/dampening must be in \[0, 1\]/);
    expect(() => sophia({ every: 1 })).not.toThrow();
    expect(() => sophia({ every: 0 })).toThrow(/every must be a positive integer/);
    expect(() => sophia({ every: 1.5 })).toThrow(/every must be a positive integer/);
  });

  test(
    "RING's choices: damping, factorInit and fallback take their two " + 'values and nothing else',
    () => {
      const valid = [
        { damping: 'spectral' },
        { damping: 'grad_norm' },
        { factorInit: 'first' },
        { factorInit: 'identity' },
        { fallback: 'sgd' },
        { fallback: 'adamw' },
      ];
      for (const settings of valid) {
        expect(() => ring(settings)).not.toThrow();
        expect(() => reng(settings)).not.toThrow();
      }
      for (const [key, message] of [
        ['damping', /damping must be 'spectral' or 'grad_norm'/],
        ['factorInit', /factorInit must be 'identity' or 'first'/],
        ['fallback', /fallback must be 'sgd' or 'adamw'/],
      ] as const) {
        expect(() => ring({ [key]: 'other' })).toThrow(GrngError);
        expect(() => ring({ [key]: 'other' })).toThrow(message);
      }
    },
  );
});
