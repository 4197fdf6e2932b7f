// RING's (and K-FAC's) settings beyond the path ring.test.ts fixes (spectral damping, statDecay 0,
// factorInit 'first', the empirical Fisher, covEvery 1, the SGD fallback), on the float64
// interpreter through the optimizers' own code, against float64 references that never use the
// DSL (../curvature/reference.ts, ./ring-reference.ts, ./reference.ts):
// - damping 'grad_norm': λ = ρ‖G‖_F² split by the π-rule (docs/algorithms.md §9 O3);
// - factorInit 'identity' and the factor EMA, covEvery > 1 (factors kept between refreshes);
// - fisher 'mc': Γ from labels sampled from the model, not the batch's;
// - the power iteration's start vector 1/(1 + i) (optimizers/kronecker.ts powerStart);
// - fallback 'adamw': parameters outside dense layers take AdamW's step;
// - the reported metrics 'fallbacks', 'residual', 'damping';
// - warm-started Newton–Schulz by default (RING's warmStart, K-FAC's refreshes).
import { EXACT_RING } from './harness.js';
import { mlpProblem } from './mlp-problem.js';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  array,
  compileTrainStep,
  createDevice,
  crossEntropy,
  defineOptimizer,
  kfac,
  mul,
  nn,
  ring,
  type DeviceArray,
  type Model,
  type Tensor,
} from '../../index.js';
import { int, prng, seedArb, uniform } from '../support/random.js';
import {
  addMat,
  condition,
  EPS,
  eye,
  frobenius,
  lambdaMax,
  mat,
  matmul,
  rel,
  scaleMat,
  type Mat,
} from '../curvature/reference.js';
import { kroneckerSolve, withBias } from './ring-reference.js';
import { adamwReference } from './reference.js';

const cpu = await createDevice({ kind: 'cpu' });

/** One step exposes the direction: μ = 0, λ_wd = 0, statDecay 0, refreshes every step. */
const EXACT = EXACT_RING;

const mlpCase = fc.record({
  seed: seedArb,
  B: fc.integer({ min: 1, max: 12 }),
  dIn: fc.integer({ min: 1, max: 5 }),
  hidden: fc.integer({ min: 1, max: 5 }),
  classes: fc.integer({ min: 2, max: 5 }),
  bias: fc.boolean(),
});
type MlpCase = typeof mlpCase extends fc.Arbitrary<infer T> ? T : never;

type DeviceLayer = { w: DeviceArray; b?: DeviceArray };
type RingLayer = Record<
  'lambda' | 'gamma' | 'lambdaInv' | 'gammaInv' | 'lambdaVec' | 'gammaVec' | 'residual' | 'damping',
  DeviceArray
>;

const square = async (a: DeviceArray): Promise<Mat> => mat(a.shape[0], a.shape[0], await a.read());
const scalarOf = async (a: DeviceArray): Promise<number> => (await a.read())[0];
const traceOf = (m: Mat): number =>
  Array.from({ length: m.rows }, (_, k) => m.data[k * m.cols + k]).reduce((p, q) => p + q, 0);
// ---------------------------------------------------------------------------------------------

describe("damping 'grad_norm': λ = ρ‖G‖_F² split by the π-rule", () => {
  test(
    'U = (Γ + (√λ/π)I)⁻¹ G (Λ + π√λ I)⁻¹ with π² = (tr Λ/d_in)/(tr ' +
      'Γ/d_out); the damping metric is π√λ',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          mlpCase,
          fc.integer({ min: 0, max: 1000 }).map((k) => 0.1 * 100 ** (k / 1000)),
          async (c, rho) => {
            const pr = mlpProblem(c);
            const train = await compileTrainStep({
              model: pr.model,
              loss: crossEntropy,
              optimizer: ring({ ...EXACT, damping: 'grad_norm', rho }),
              params: pr.params,
              device: cpu,
              metrics: ['damping'],
            });
            const { damping } = await train.run(pr.batch);
            const state = (await train.state()) as { velocity: { layers: DeviceLayer[] } };
            const shifts: number[] = [];
            for (let i = 0; i < 2; i++) {
              const [lam, gam, G] = [pr.lambda[i], pr.gamma[i], pr.G[i]];
              const lambda = rho * frobenius(G) ** 2;
              const pi = Math.sqrt(
                Math.max(traceOf(lam) / lam.rows, 1e-30) / Math.max(traceOf(gam) / gam.rows, 1e-30),
              );
              const lambdaD = addMat(lam, eye(lam.rows), pi * Math.sqrt(lambda));
              const gammaD = addMat(gam, eye(gam.rows), Math.sqrt(lambda) / pi);
              shifts.push(pi * Math.sqrt(lambda));
              const v = state.velocity.layers[i];
              const U = withBias(
                mat(v.w.shape[0], v.w.shape[1], await v.w.read()),
                v.b === undefined ? undefined : await v.b.read(),
              );
              const want = kroneckerSolve(lambdaD, gammaD, G);
              // Newton–Schulz (16 + 16 steps) ends at its floor ~n·κ·ε on each inverse; the dense
              // Kronecker solve of the reference errs by ~n²·κ(Λ_d)κ(Γ_d)·ε; the factors themselves
              // are 1e-13 apart (ring.test.ts). 100·(d_in·d_out)·κ_Λκ_Γ·ε + 1e-12 bounds all of it;
              // a wrong split (π ↔ 1/π, no √, ‖G‖ instead of ‖G‖²) moves U by O(1) relative.
              const bound =
                100 * lam.rows * gam.rows * condition(lambdaD) * condition(gammaD) * EPS + 1e-12;
              expect(rel(U, want), `layer ${i} U`).toBeLessThanOrEqual(bound);
            }
            // The metric is the Λ-side shift π√λ, the larger over the two layers; traces of factors
            // 1e-13 apart, then √ and ÷: 1e-12 relative.
            const top = Math.max(...shifts);
            expect(Math.abs((damping as number) - top) / top).toBeLessThanOrEqual(1e-12);
          },
        ),
        { numRuns: 12 },
      );
    },
  );
});

// ---------------------------------------------------------------------------------------------

describe('factor EMA: factorInit, statDecay and covEvery', () => {
  test(
    "'identity' starts the EMA at I: Λ₁ = βI + (1 − β)Λ̂, then Λ₂ = βΛ₁ + " +
      "(1 − β)Λ̂ (RING and K-FAC); 'first' starts at Λ̂",
    async () => {
      await fc.assert(
        fc.asyncProperty(
          mlpCase,
          fc.double({ min: 0.05, max: 0.95, noNaN: true }),
          fc.constantFrom('identity' as const, 'first' as const),
          fc.constantFrom('ring' as const, 'kfac' as const),
          async (c, beta, factorInit, which) => {
            const pr = mlpProblem(c);
            const optimizer =
              which === 'ring'
                ? ring({ ...EXACT, lr: 0, statDecay: beta, factorInit })
                : kfac({
                    lr: 0,
                    statDecay: beta,
                    factorInit,
                    covEvery: 1,
                    inverseEvery: 1,
                    fisher: 'empirical',
                  });
            const train = await compileTrainStep({
              model: pr.model,
              loss: crossEntropy,
              optimizer: optimizer as never,
              params: pr.params,
              device: cpu,
            });
            const factors = async () => {
              const s = (await train.state()) as { layers: RingLayer[] };
              return Promise.all(
                s.layers.map(async (l) => ({
                  lambda: await square(l.lambda),
                  gamma: await square(l.gamma),
                })),
              );
            };
            // lr 0: the parameters, hence this batch's Λ̂ and Γ̂, stay the same at step 2.
            await train.run(pr.batch);
            const first = await factors();
            await train.run(pr.batch);
            const second = await factors();
            const ema = (old: Mat, fresh: Mat) => addMat(scaleMat(old, beta), fresh, 1 - beta);
            for (let i = 0; i < 2; i++) {
              for (const [f, stat] of [
                ['lambda', pr.lambda[i]],
                ['gamma', pr.gamma[i]],
              ] as const) {
                const start = factorInit === 'identity' ? ema(eye(stat.rows), stat) : stat;
                // O(1) entries, B-term sums apart from the reference by ~Bε, then two EMA
                // roundings: 1e-13 relative (ring.test.ts measures ≤ 1e-15 for the statistics).
                expect(rel(first[i][f], start), `${which} ${f}₁`).toBeLessThanOrEqual(1e-13);
                expect(rel(second[i][f], ema(start, stat)), `${which} ${f}₂`).toBeLessThanOrEqual(
                  1e-13,
                );
              }
            }
          },
        ),
        { numRuns: 12 },
      );
    },
  );

  test(
    'covEvery 2: the factors refresh on steps 1 and 3 only (step 2 keeps ' + 'step 1’s, bitwise)',
    async () => {
      await fc.assert(
        fc.asyncProperty(mlpCase, async (c) => {
          const [one, two, three] = [0, 1, 2].map((b) => mlpProblem(c, b));
          const train = await compileTrainStep({
            model: one.model,
            loss: crossEntropy,
            optimizer: ring({ ...EXACT, lr: 0, covEvery: 2, inverseEvery: 2 }),
            params: one.params,
            device: cpu,
          });
          const factors = async () => {
            const s = (await train.state()) as { layers: RingLayer[] };
            return Promise.all(
              s.layers.map(async (l) => [await l.lambda.read(), await l.gamma.read()]),
            );
          };
          await train.run(one.batch);
          const after1 = await factors();
          await train.run(two.batch);
          const after2 = await factors();
          await train.run(three.batch);
          const after3 = await factors();
          expect(after2).toEqual(after1);
          for (let i = 0; i < 2; i++) {
            // statDecay 0: step 3's factors are batch 3's statistics (1e-13, as above).
            expect(rel(after3[i][0], three.lambda[i].data), 'Λ₃').toBeLessThanOrEqual(1e-13);
            expect(rel(after3[i][1], three.gamma[i].data), 'Γ₃').toBeLessThanOrEqual(1e-13);
            expect(rel(after1[i][0], one.lambda[i].data), 'Λ₁').toBeLessThanOrEqual(1e-13);
          }
        }),
        { numRuns: 8 },
      );
    },
  );
});

// ---------------------------------------------------------------------------------------------

describe("fisher 'mc': Γ from labels sampled from the model", () => {
  test(
    'a model sure of class 0 (logit gap 40) with batch labels 1: Γ_mc ≈ 0, ' +
      'Γ_empirical = Γ̂(batch labels)',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          seedArb,
          fc.integer({ min: 1, max: 8 }),
          fc.integer({ min: 1, max: 4 }),
          fc.integer({ min: 2, max: 5 }),
          fc.constantFrom('ring' as const, 'kfac' as const),
          async (seed, B, d, C, which) => {
            const rng = prng(seed);
            const x = uniform(rng, B * d);
            // z = x·0 + b with b = (40, 0, …): p = softmax(b) for every sample.
            const params = {
              w: array(new Float64Array(C * d), [C, d]),
              b: array(confident(C, 40), [C]),
            };
            const batch = {
              x: array(x, [B, d]),
              y: array(new Int32Array(B).fill(1), [B], 'i32'),
            };
            const gammaWith = async (fisher: 'mc' | 'empirical') => {
              const optimizer =
                which === 'ring'
                  ? ring({ ...EXACT, fisher })
                  : kfac({
                      statDecay: 0,
                      factorInit: 'first',
                      covEvery: 1,
                      inverseEvery: 1,
                      fisher,
                    });
              const train = await compileTrainStep({
                model: nn.dense(d, C),
                loss: crossEntropy,
                optimizer: optimizer as never,
                params,
                device: cpu,
                seed,
              });
              await train.run(batch);
              const s = (await train.state()) as { layers: RingLayer[] };
              return square(s.layers[0].gamma);
            };
            // Γ̂ = (1/B)Σ g gᵀ with g = p − e_y; the Gumbel-max sampler adds noise in
            // [−log(16.6), −log(2^-24)] ⊂ [−2.9, 16.7] (dsl/random.ts categorical:
            // u ∈ [2^-24, 1)), so with a gap of 40 every sampled label is 0 and
            // g = p − e₀ = O(e^-40): Γ_mc = O(e^-80).
            const p = softmaxOf(confident(C, 40));
            const gEmp = p.map((v, k) => v - (k === 1 ? 1 : 0));
            const empirical = mat(
              C,
              C,
              Float64Array.from({ length: C * C }, (_, k) => gEmp[Math.floor(k / C)] * gEmp[k % C]),
            );
            const mc = await gammaWith('mc');
            expect(Math.max(...Array.from(mc.data, Math.abs)), 'Γ_mc ≈ 0').toBeLessThanOrEqual(
              1e-30,
            );
            // B identical terms: the mean of B equal O(1) products, ~Bε: 1e-14.
            expect(rel(await gammaWith('empirical'), empirical), 'Γ_empirical').toBeLessThanOrEqual(
              1e-14,
            );
          },
        ),
        { numRuns: 10 },
      );
    },
  );
});

/** Logits (gap, 0, 0, …) of length C. */
function confident(C: number, gap: number): Float64Array {
  return Float64Array.from({ length: C }, (_, k) => (k === 0 ? gap : 0));
}
function softmaxOf(z: Float64Array): Float64Array {
  const top = Math.max(...z);
  const e = z.map((v) => Math.exp(v - top));
  const total = e.reduce((a, v) => a + v, 0);
  return e.map((v) => v / total);
}

// ---------------------------------------------------------------------------------------------

describe('power iteration starts from v₀ = (1/(1 + i))ᵢ', () => {
  test('one power step: the stored vector is Λ̂v₀/‖Λ̂v₀‖ (and Γ̂v₀/‖Γ̂v₀‖)', async () => {
    await fc.assert(
      fc.asyncProperty(mlpCase, async (c) => {
        const pr = mlpProblem(c);
        const train = await compileTrainStep({
          model: pr.model,
          loss: crossEntropy,
          optimizer: ring({ ...EXACT, powerSteps: 1 }),
          params: pr.params,
          device: cpu,
        });
        await train.run(pr.batch);
        const s = (await train.state()) as { layers: RingLayer[] };
        for (let i = 0; i < 2; i++) {
          for (const [f, vec] of [
            [pr.lambda[i], s.layers[i].lambdaVec],
            [pr.gamma[i], s.layers[i].gammaVec],
          ] as const) {
            const n = f.rows;
            const v0 = Float64Array.from({ length: n }, (_, k) => 1 / (1 + k));
            const w = matmul(f, mat(n, 1, v0)).data;
            const norm = frobenius(w);
            // A degenerate factor (all-zero g, e.g. saturated units) has Λ̂v₀ = 0: skipped.
            if (norm <= 1e-12 * frobenius(f)) continue;
            // Λ̂ 1e-13 apart (above), one product and a normalization: 1e-12.
            expect(
              rel(
                await vec.read(),
                w.map((v) => v / norm),
              ),
            ).toBeLessThanOrEqual(1e-12);
          }
        }
      }),
      { numRuns: 10 },
    );
  });
});

// ---------------------------------------------------------------------------------------------

describe("fallback 'adamw': parameters outside dense layers take AdamW's step", () => {
  /** z = (x Wᵀ + b) ⊙ s: a dense layer (RING's) and a per-class gain s outside it. */
  const gainModel = (
    d: number,
    C: number,
  ): Model<{ head: { w: Tensor; b?: Tensor }; gain: Tensor }> => {
    const head = nn.dense(d, C, { name: 'head' });
    return {
      init: (seed) => ({
        head: head.init(seed),
        gain: array(uniform(prng(seed + 1), C, 0.5, 1.5), [C]),
      }),
      apply: (p, x) => mul(head.apply(p.head, x), p.gain),
    };
  };
  /** ∂L/∂s for the mean cross-entropy: (1/B)Σ_n (p_n − e_{y_n}) ⊙ (W x_n + b). */
  function gainGradient(
    w: Float64Array,
    b: Float64Array,
    s: Float64Array,
    x: Float64Array,
    y: Int32Array,
  ) {
    const C = s.length;
    const d = w.length / C;
    const B = y.length;
    const g = new Float64Array(C);
    for (let n = 0; n < B; n++) {
      const pre = Float64Array.from({ length: C }, (_, c) => {
        let v = b[c];
        for (let k = 0; k < d; k++) v += w[c * d + k] * x[n * d + k];
        return v;
      });
      const p = softmaxOf(pre.map((v, c) => v * s[c]));
      for (let c = 0; c < C; c++) g[c] += ((p[c] - (y[n] === c ? 1 : 0)) * pre[c]) / B;
    }
    return g;
  }

  test(
    'two steps: the gain follows the AdamW reference (bias correction at t ' +
      '= 1, 2); the dense layer’s first step equals the SGD fallback’s',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          seedArb,
          fc.integer({ min: 1, max: 8 }),
          fc.integer({ min: 1, max: 4 }),
          fc.integer({ min: 2, max: 4 }),
          async (seed, B, d, C) => {
            const model = gainModel(d, C);
            const rng = prng(seed + 3);
            const x = uniform(rng, B * d, -2, 2);
            const y = Int32Array.from({ length: B }, () => int(rng, 0, C - 1));
            const batch = { x: array(x, [B, d]), y: array(y, [B], 'i32') };
            const hyper = { ...EXACT, lr: 0.1, weightDecay: 0.01, momentum: 0.5 };
            const start = (fallback: 'sgd' | 'adamw') =>
              compileTrainStep({
                model,
                loss: crossEntropy,
                optimizer: ring({ ...hyper, fallback }),
                params: model.init(seed),
                device: cpu,
              });
            const [adamw, sgd] = [await start('adamw'), await start('sgd')];
            type P = { head: { w: DeviceArray; b: DeviceArray }; gain: DeviceArray };
            type S = { adam: { m: P; v: P } };
            const readP = async (p: P) => ({
              w: await p.head.w.read(),
              b: await p.head.b.read(),
              s: await p.gain.read(),
            });
            let before = await readP((await adamw.params()) as unknown as P);
            let ref = adamwReference.init([before.s]);
            const h = { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };
            for (let t = 1; t <= 2; t++) {
              await adamw.run(batch);
              await sgd.run(batch);
              const after = await readP((await adamw.params()) as unknown as P);
              const g = gainGradient(before.w, before.b, before.s, x, y);
              const step = adamwReference.step([before.s], [g], ref, h);
              ref = step.state;
              const state = (await adamw.state()) as unknown as S;
              // The gradient of s: B-term sums of O(1) products (~Bε relative), then the AdamW
              // arithmetic (a division by √v̂ + ε with v̂ ≥ g²): 1e-12 absolute on O(1) values.
              const close = (got: Float64Array, want: Float64Array, what: string) =>
                want.forEach((v, k) =>
                  expect(Math.abs(got[k] - v), `${what}[${k}] at t = ${t}`).toBeLessThanOrEqual(
                    1e-12 * Math.max(1, Math.abs(v)),
                  ),
                );
              close(after.s, step.params[0], 'gain');
              close(await state.adam.m.gain.read(), ref.m[0], 'm');
              close(await state.adam.v.gain.read(), ref.v[0], 'v');
              if (t === 1) {
                // Step 1 starts from the same parameters: the dense layer's RING step is the same
                // operations on the same numbers whatever the fallback.
                const plain = await readP((await sgd.params()) as unknown as P);
                expect(Array.from(after.w)).toEqual(Array.from(plain.w));
                expect(Array.from(after.b)).toEqual(Array.from(plain.b));
                expect(Array.from(after.s)).not.toEqual(Array.from(plain.s));
              }
              before = after;
            }
          },
        ),
        { numRuns: 10 },
      );
    },
  );
});

describe('the fallback after setHyper, and a state made for another model', () => {
  test(
    "setHyper({ fallback: 'adamw' }) on a run begun with 'sgd': the state " +
      "has no AdamW moments, so the step stays SGD's (bitwise the run that " +
      "keeps 'sgd')",
    async () => {
      const d = 3;
      const C = 3;
      const head = nn.dense(d, C, { name: 'head' });
      const model: Model<{ head: { w: Tensor; b?: Tensor }; gain: Tensor }> = {
        init: (seed) => ({ head: head.init(seed), gain: array([1, 0.5, 2], [C]) }),
        apply: (p, x) => mul(head.apply(p.head, x), p.gain),
      };
      const rng = prng(5);
      const batches = [0, 1].map(() => ({
        x: array(uniform(rng, 4 * d, -2, 2), [4, d]),
        y: array(
          Int32Array.from({ length: 4 }, () => int(rng, 0, C - 1)),
          [4],
          'i32',
        ),
      }));
      const start = () =>
        compileTrainStep({
          model,
          loss: crossEntropy,
          optimizer: ring({ ...EXACT, lr: 0.1, fallback: 'sgd' }),
          params: model.init(3),
          device: cpu,
        });
      const [switched, kept] = [await start(), await start()];
      for (const [t, batch] of batches.entries()) {
        if (t === 1) switched.setHyper({ fallback: 'adamw' });
        await switched.run(batch);
        await kept.run(batch);
      }
      const gain = async (train: typeof kept) =>
        Array.from(await ((await train.params()) as unknown as { gain: DeviceArray }).gain.read());
      expect(await gain(switched)).toEqual(await gain(kept));
    },
  );

  test(
    "RING's and K-FAC's update refuse a state made for another number of " +
      'dense layers (GrngError)',
    async () => {
      for (const which of ['ring', 'kfac'] as const) {
        const inner = which === 'ring' ? ring(EXACT) : kfac();
        // A wrapper whose own state (checked by compileTrainStep) holds one layer's state too many.
        const wrapped = defineOptimizer({
          name: 'wrapped',
          hyper: inner.hyper,
          init: (params, h, layers) => {
            const s = inner.definition.init(params, h as never, layers) as { layers: unknown[] };
            return { ...s, layers: [...s.layers, s.layers[0]] };
          },
          update: (ctx) => inner.definition.update(ctx as never) as never,
        });
        const c = { seed: 1, B: 3, dIn: 2, hidden: 2, classes: 3, bias: true };
        const pr = mlpProblem(c);
        await expect(
          (async () => {
            const train = await compileTrainStep({
              model: pr.model,
              loss: crossEntropy,
              optimizer: wrapped(),
              params: pr.params,
              device: cpu,
            });
            await train.run(pr.batch);
          })(),
        ).rejects.toThrow(/the model has 2 dense layers but the state was made for 3/);
      }
    },
  );
});

// ---------------------------------------------------------------------------------------------

describe("RING's reported metrics", () => {
  test(
    "'fallbacks', 'residual' and 'damping' are the state's counter and the " +
      'largest per-layer residual and shift',
    async () => {
      await fc.assert(
        fc.asyncProperty(mlpCase, async (c) => {
          const pr = mlpProblem(c);
          const rho = 0.01;
          const train = await compileTrainStep({
            model: pr.model,
            loss: crossEntropy,
            // Newton–Schulz starved (2 + 2 steps): residuals far from 0 and different per layer.
            optimizer: ring({ ...EXACT, rho, newtonIters: 2 }),
            params: pr.params,
            device: cpu,
            metrics: ['fallbacks', 'residual', 'damping'],
          });
          const metrics = await train.run(pr.batch);
          const s = (await train.state()) as { layers: RingLayer[]; fallbacks: DeviceArray };
          const residuals = await Promise.all(s.layers.map((l) => scalarOf(l.residual)));
          const shifts = await Promise.all(s.layers.map((l) => scalarOf(l.damping)));
          expect(metrics.fallbacks).toBe(await scalarOf(s.fallbacks));
          expect(metrics.residual).toBe(Math.max(...residuals));
          expect(metrics.damping).toBe(Math.max(...shifts));
          // The shift is √ρ·λ̂ with λ̂ ≤ λ_max (the Rayleigh quotient, CURVATURE R10): ≤ 1e-12
          // over.
          const top = Math.max(...[...pr.lambda, ...pr.gamma].map(lambdaMax));
          expect(metrics.damping as number).toBeLessThanOrEqual(Math.sqrt(rho) * top * (1 + 1e-12));
          expect(metrics.damping as number).toBeGreaterThan(0);
        }),
        { numRuns: 8 },
      );
    },
  );
});

// ---------------------------------------------------------------------------------------------

describe('Newton–Schulz is warm-started by default', () => {
  /** A batch 1e-6 away from `batch`: its factors differ by ~1e-6 relative. */
  const nearby = (pr: ReturnType<typeof mlpProblem>, c: MlpCase) => {
    const noise = uniform(prng(c.seed + 1), c.B * c.dIn, -1e-6, 1e-6);
    return {
      x: array(
        pr.batch.x.data.map((v, k) => v + noise[k]),
        [c.B, c.dIn],
      ),
      y: pr.batch.y,
    };
  };

  test(
    'RING (warmStart left at its default): 2 + 2 steps from the previous ' +
      'inverse reach the floor on a nearby batch',
    async () => {
      await fc.assert(
        fc.asyncProperty(mlpCase, async (c) => {
          const pr = mlpProblem(c);
          const { warmStart: _, ...settings } = EXACT;
          const train = await compileTrainStep({
            model: pr.model,
            loss: crossEntropy,
            optimizer: ring({ ...settings, lr: 0, rho: 1e-4, powerSteps: 100 }),
            params: pr.params,
            device: cpu,
          });
          await train.run(pr.batch);
          train.setHyper({ newtonIters: 2 });
          await train.run(nearby(pr, c));
          const s = (await train.state()) as { layers: RingLayer[] };
          // ring.test.ts R9 (a): warm, ‖I − A₂X₁‖ ≈ 1e-4 squared twice twice: the floor (≤
          // 100·√n·κ·ε ≈ 1e-11 at κ ≤ 101); cold, Γ (softmax, singular) keeps ≥ 0.5 after 4 steps.
          for (const l of s.layers) expect(await scalarOf(l.residual)).toBeLessThanOrEqual(1e-9);
        }),
        { numRuns: 4 },
      );
    },
  );

  test(
    'K-FAC: after converged inverses, 2 steps from them on a nearby batch ' + 'need no fallback',
    async () => {
      await fc.assert(
        fc.asyncProperty(mlpCase, async (c) => {
          const pr = mlpProblem(c);
          const train = await compileTrainStep({
            model: pr.model,
            loss: crossEntropy,
            optimizer: kfac({
              lr: 0,
              statDecay: 0,
              factorInit: 'first',
              covEvery: 1,
              inverseEvery: 1,
              fisher: 'empirical',
              damping: 1e-3,
              inverseIterations: 40,
              powerSteps: 100,
            }),
            params: pr.params,
            device: cpu,
            metrics: ['fallbacks'],
          });
          const first = (await train.run(pr.batch)).fallbacks as number;
          train.setHyper({ inverseIterations: 2 });
          const second = (await train.run(nearby(pr, c))).fallbacks as number;
          // Warm: ‖I − A₂X₁‖ ≲ 1e-6·κ(A) with κ ≤ 1 + λ_max/(damping share) ≲ 1e4 here, so two
          // steps square it twice, far below the 1e-3 fallback tolerance. Cold, from I/λ_max, two
          // steps leave (1 − 1/κ)⁴ ≈ 1 on Γ's (softmax) null space: both factors would fall back.
          expect(second).toBe(first);
        }),
        { numRuns: 4 },
      );
    },
  );
});
