// Curvature building blocks (dsl/curvature) on the float64 interpreter, checked against the dense
// float64 references of ./reference.ts (written from docs/algorithms.md §2, §3.4, §3.5, §8.1,
// §8.2): Kronecker factors and layer gradients (K4), their moving average (K6), the gradient
// scaling of a real training step (K8), the factored solve with Newton–Schulz inverses (K1, K2),
// Newton–Schulz convergence (R8), the guarded / warm-started inverse (R9) and power iteration
// (R10); then one compiled WebGPU (float32) check of guardedInverse and powerIteration.
//
// Notation for bounds: ε = 2^-52 (float64 machine epsilon, twice the unit roundoff u), ε32 = 2^-23.
// Every tolerance is derived next to its assertion; the measured worst values are logged.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  array,
  compileTrainStep,
  createDevice,
  crossEntropy,
  defineOptimizer,
  ema,
  guardedInverse,
  input,
  jit,
  kroneckerFactors,
  layerGradient,
  matmul,
  newtonSchulz,
  newtonSchulzIterations,
  nn,
  powerIteration,
  treeMap,
  zeros,
  zerosLike,
  type DeviceArray,
  type GuardedInverse,
  type Device,
  type Tensor,
} from '../../index.js';
import type { HostArray } from '../../core/host-array.js';
import { topoSort } from '../../core/ir/node.js';
import { gpuDevice } from '../support/gpu.js';
import { int, prng, seedArb, uniform } from '../support/random.js';
import {
  absMat,
  addMat,
  asymmetry,
  at,
  condition,
  EPS,
  EPS32,
  eigenvalues,
  eye,
  frobenius,
  guardedInverseReference,
  inverse,
  iterationsByCounting,
  kron,
  lambdaMax,
  mat,
  matmul as refMatmul,
  matVec,
  mlpBackprop,
  newtonSchulzSteps,
  orthonormalColumns,
  rel,
  residualMatrix,
  scaleMat,
  secondMoment,
  solve,
  spectralNorm,
  subMat,
  symmetricEigen,
  transpose,
  unvecCol,
  vecCol,
  withOnesColumn,
  withSpectrum,
  type Mat,
} from './reference.js';

const cpu = await createDevice({ kind: 'cpu' });

/** Runs `f` on `device` with matrices (and numbers) as inputs; every output read back. */
async function evaluate(
  f: (...xs: Tensor[]) => Tensor[],
  args: readonly (Mat | number)[],
  device: Device = cpu,
): Promise<Float64Array[]> {
  const inputs = args.map((m) => (typeof m === 'number' ? m : array(m.data, [m.rows, m.cols])));
  const out = (await (jit(f, { device }) as (...xs: unknown[]) => Promise<unknown>)(
    ...inputs,
  )) as DeviceArray[];
  return Promise.all(out.map((o) => o.read()));
}

const randMat = (rng: () => number, rows: number, cols: number, scale = 1): Mat =>
  mat(rows, cols, uniform(rng, rows * cols, -scale, scale));
const logUniform = (rng: () => number, lo: number, hi: number): number => lo * (hi / lo) ** rng();

/**
 * A = Λ + √ρ·λ_max(Λ)·I for Λ = aᵀa/B, a ∈ R^{B×d} (singular when B < d), entries of a scaled by
 * `scale` (docs/algorithms.md §3.3).
 */
function dampedFactor(
  rng: () => number,
  d: number,
  batch: number,
  sqrtRho: number,
  scale: number,
): { lambda: Mat; a: Mat } {
  const lambda = secondMoment(randMat(rng, batch, d, scale));
  return { lambda, a: addMat(lambda, eye(d), sqrtRho * lambdaMax(lambda)) };
}

/** Batch sizes that make Λ = aᵀa/B singular (B < d) or, almost surely, nonsingular (B ≥ d). */
const batchFor = (rng: () => number, d: number, singular: boolean): number =>
  singular && d >= 2 ? int(rng, 1, d - 1) : int(rng, d, 2 * d + 4);

/**
 * √ρ from docs/algorithms.md's table, or log-uniform over docs/algorithms.md's ρ ∈ [1e-4, 10]
 * widened to √ρ ≥ 1e-3 (the table's smallest).
 */
const sqrtRhoArb = fc.oneof(
  fc.constantFrom(0.3, 0.1, 0.03, 0.01, 0.001),
  fc.double({ min: Math.log(1e-3), max: Math.log(Math.sqrt(10)), noNaN: true }).map(Math.exp),
);

const worst = new Map<string, number>();
const track = (name: string, value: number): number => {
  worst.set(name, Math.max(worst.get(name) ?? 0, value));
  return value;
};
const report = (...names: string[]): void =>
  console.log(names.map((n) => `${n}: ${(worst.get(n) ?? 0).toExponential(2)}`).join('; '));

describe('K1 (reference self-check): (Λ⊗Γ)vec(X) = vec(ΓXΛ), column-major vec', () => {
  test('random symmetric Λ, any Γ and X', () => {
    fc.assert(
      fc.property(
        seedArb,
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 8 }),
        (seed, dIn, dOut) => {
          const rng = prng(seed);
          const s = randMat(rng, dIn, dIn);
          const lambda = addMat(s, transpose(s)); // symmetric
          const gamma = randMat(rng, dOut, dOut);
          const x = randMat(rng, dOut, dIn);
          const left = matVec(kron(lambda, gamma), vecCol(x));
          const right = vecCol(refMatmul(refMatmul(gamma, x), lambda));
          // Both sides are sums of the same d_in·d_out products in different groupings: |Δ| ≤
          // 2(d_in + d_out)ε·(|Γ||X||Λ|) entrywise; with O(1) random data and no systematic
          // cancellation, ≤ 32ε·√(d_in d_out)·‖·‖ ≈ 6e-14 relative. docs/algorithms.md: 1e-12.
          expect(track('K1 rel', rel(left, right))).toBeLessThanOrEqual(1e-12);
        },
      ),
    );
    report('K1 rel');
  });
});

describe('K4: Kronecker factors and the layer gradient', () => {
  test(
    'Λ̂ = aᵀa/B, Γ̂ = gᵀg/B symmetric PSD, Λ̂[-1,-1] = 1 with a bias ' +
      'column, G = gᵀa/B with the bias gradient last',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          seedArb,
          fc.integer({ min: 1, max: 20 }),
          fc.integer({ min: 1, max: 8 }),
          fc.integer({ min: 1, max: 8 }),
          fc.boolean(),
          fc.double({ min: -2, max: 2, noNaN: true }),
          async (seed, B, dRaw, dOut, bias, logScale) => {
            const rng = prng(seed);
            const raw = randMat(rng, B, dRaw, 10 ** logScale);
            const a = bias ? withOnesColumn(raw) : raw;
            const g = randMat(rng, B, dOut, 10 ** -logScale);
            const dIn = a.cols;
            const [lambda, gamma, G] = await evaluate(
              (aT, gT) => {
                const tap = { name: 'k4', a: aT, g: gT, w: zeros([dOut, dRaw]) as Tensor };
                const f = kroneckerFactors(tap);
                return [f.lambda, f.gamma, layerGradient(tap)];
              },
              [a, g],
            );
            const L = mat(dIn, dIn, lambda);
            const Gm = mat(dOut, dOut, gamma);
            // Entrywise: each side is a B-term dot product divided by B, so each is within
            // γ_{B+1}·(|x|ᵀ|y|)_ij/B of the exact value (γ_n = nu/(1−nu)); their difference is
            // within 2γ_{B+1} ≤ (B+1)ε·1.01 of that (ε = 2u).
            const entrywise = (got: ArrayLike<number>, x: Mat, y: Mat) => {
              const want = scaleMat(refMatmul(transpose(x), y), 1 / B);
              const scale = scaleMat(refMatmul(transpose(absMat(x)), absMat(y)), 1 / B);
              for (let k = 0; k < want.data.length; k++) {
                const err = Math.abs(got[k] - want.data[k]);
                track(
                  'K4 entry error / bound',
                  scale.data[k] === 0 ? err : err / ((B + 1) * EPS * 1.01 * scale.data[k]),
                );
                expect(err).toBeLessThanOrEqual((B + 1) * EPS * 1.01 * scale.data[k]);
              }
            };
            entrywise(lambda, a, a);
            entrywise(gamma, g, g);
            entrywise(G, g, a); // G = gᵀa/B, d_out × d_in
            for (const F of [L, Gm]) {
              // Exactly symmetric: entries (i, j) and (j, i) sum the same products a_ni·a_nj in the
              // same order.
              expect(asymmetry(F)).toBe(0);
              // PSD: the computed factor is within ‖E‖₂ ≤ (B+1)ε·‖|a|ᵀ|a|‖/B ≤ (B+1)ε·d·‖F‖₂ ≈
              // 4e-14‖F‖₂ of an exact PSD matrix, and Jacobi adds ~dε‖F‖₂: well inside
              // docs/algorithms.md's 1e-12.
              const ev = eigenvalues(F);
              const top = Math.max(Math.abs(ev[ev.length - 1]), Math.abs(ev[0]));
              track('K4 -λ_min/‖F‖', -ev[0] / top);
              expect(ev[0]).toBeGreaterThanOrEqual(-1e-12 * top);
            }
            if (bias) {
              // Σ_n 1·1 = B exactly, then B/B = 1 exactly.
              expect(lambda[dIn * dIn - 1]).toBe(1);
              // ∂L/∂b for L = (1/B)Σ_n ℓ_n with s_n = W a_n + b: (1/B)Σ_n ∂ℓ_n/∂s_n = (1/B)Σ_n g_n.
              for (let o = 0; o < dOut; o++) {
                let sum = 0;
                let abs = 0;
                for (let n = 0; n < B; n++) {
                  sum += at(g, n, o);
                  abs += Math.abs(at(g, n, o));
                }
                // Same B-term sum (the products g·1 are exact) in possibly another order:
                // (B+1)ε·Σ|g|/B.
                expect(Math.abs(G[o * dIn + dIn - 1] - sum / B)).toBeLessThanOrEqual(
                  (B + 1) * EPS * 1.01 * (abs / B),
                );
              }
            }
          },
        ),
      );
      report('K4 entry error / bound', 'K4 -λ_min/‖F‖');
    },
  );
});

describe('K6: exponential moving average of the factors', () => {
  test('after t updates with a constant Λ̂: Λ_t = β^t Λ₀ + (1 − β^t) Λ̂', async () => {
    await fc.assert(
      fc.asyncProperty(
        seedArb,
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 50 }),
        fc.double({ min: 0.5, max: 0.999, noNaN: true }),
        fc.boolean(),
        async (seed, d, t, beta, tensorDecay) => {
          const rng = prng(seed);
          const l0 = secondMoment(randMat(rng, int(rng, 1, 12), d, logUniform(rng, 0.1, 10)));
          const hat = secondMoment(randMat(rng, int(rng, 1, 12), d, logUniform(rng, 0.1, 10)));
          const [got] = await evaluate(
            (x0, fresh, decay) => {
              let x = x0;
              for (let s = 0; s < t; s++) x = ema(x, fresh, tensorDecay ? decay : beta);
              return [x];
            },
            [l0, hat, beta],
          );
          const bt = beta ** t;
          const want = addMat(scaleMat(l0, bt), hat, 1 - bt);
          // 1 − β is exact for β ∈ [0.5, 1] (Sterbenz). Step s adds ≤ 3u·(β|Λ_{s−1}| + (1−β)|Λ̂|)
          // entrywise, damped by β afterwards: in total ≤ 3u·(tβ^t|Λ₀| + (1−β^t)/(1−β)·|Λ̂|). Both
          // terms are PSD, so ‖Λ_t‖_F ≥ max(β^t‖Λ₀‖_F, (1−β^t)‖Λ̂‖_F), and with
          // 1/(1−β)·(1−β^t)/(1−β^t) ≤ t: rel ≤ 6tu + pow's few u ≤ 1.7e-14 for t ≤ 50.
          // docs/algorithms.md: 1e-12.
          expect(track('K6 rel', rel(got, want))).toBeLessThanOrEqual(1e-12);
        },
      ),
    );
    report('K6 rel');
  });
});

describe('K8: gradient scaling through a real training step', () => {
  test(
    'autograd G = [∂L/∂W | ∂L/∂b] equals layerGradient = (1/B)gᵀa with g = ' +
      'B·∂L/∂s (tanh MLP, cross-entropy)',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          seedArb,
          fc.integer({ min: 1, max: 8 }),
          fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 2, maxLength: 3 }),
          fc.integer({ min: 2, max: 5 }),
          fc.boolean(),
          async (seed, B, widths, classes, bias) => {
            const rng = prng(seed);
            const sizes = [...widths, classes];
            const model = nn.mlp(sizes, { activation: 'tanh', bias });
            const p = model.init(seed) as { layers: { w: HostArray; b?: HostArray }[] };
            const x = randMat(rng, B, sizes[0], 2);
            const labels = Int32Array.from({ length: B }, () => int(rng, 0, classes - 1));
            const probe = defineOptimizer({
              name: 'k8-probe',
              hyper: { lr: 0 },
              init: (params, _h, layers) => ({
                G: layers.map(
                  (l) =>
                    zeros([l.w.shape[0], l.w.shape[1] + (l.b === undefined ? 0 : 1)]) as Tensor,
                ),
                g: layers.map((l) => zeros([B, l.w.shape[0]]) as Tensor),
                grads: treeMap(zerosLike, params),
              }),
              update: ({ params, grads, taps }) => ({
                params,
                state: { G: taps.map(layerGradient), g: taps.map((tap) => tap.g), grads },
              }),
            });
            const train = await compileTrainStep({
              model,
              loss: crossEntropy,
              optimizer: probe(),
              params: p,
              device: cpu,
            });
            await train.run({ x: array(x.data, [B, sizes[0]]), y: array(labels, [B], 'i32') });
            const state = (await train.state()) as {
              G: DeviceArray[];
              g: DeviceArray[];
              grads: { layers: { w: DeviceArray; b?: DeviceArray }[] };
            };
            const ref = mlpBackprop(
              p.layers.map((l) => ({ w: mat(l.w.shape[0], l.w.shape[1], l.w.data), b: l.b?.data })),
              x,
              labels,
            );
            for (let i = 0; i < p.layers.length; i++) {
              const [dOut, dRaw] = p.layers[i].w.shape;
              const dIn = dRaw + (bias ? 1 : 0);
              const G = await state.G[i].read();
              const g = await state.g[i].read();
              const gw = await state.grads.layers[i].w.read();
              const gb = bias
                ? await (state.grads.layers[i].b as DeviceArray).read()
                : new Float64Array(0);
              // Autograd's [∂L/∂W | ∂L/∂b], laid out d_out × d_in like G.
              const auto = mat(dOut, dIn);
              for (let o = 0; o < dOut; o++) {
                for (let k = 0; k < dRaw; k++) auto.data[o * dIn + k] = gw[o * dRaw + k];
                if (bias) auto.data[o * dIn + dRaw] = gb[o];
              }
              // Reference: per-sample g by the chain rule, G = (1/B)Σ g_n a_nᵀ with a carrying the
              // ones column.
              const refG = scaleMat(refMatmul(transpose(ref.g[i]), ref.a[i]), 1 / B);
              // Both sides in float64 through ≤ 3 layers of width ≤ 6: a few dozen roundings of
              // O(1) quantities (tanh, exp and log within an ulp or two in each library), and the
              // B-term sums of G: relative differences ~1e-15, well inside docs/algorithms.md's
              // 1e-12.
              expect(track('K8 rel(G autograd, layerGradient)', rel(auto, G))).toBeLessThanOrEqual(
                1e-12,
              );
              expect(track('K8 rel(G autograd, reference)', rel(auto, refG))).toBeLessThanOrEqual(
                1e-12,
              );
              expect(track('K8 rel(tap g, reference g)', rel(g, ref.g[i]))).toBeLessThanOrEqual(
                1e-12,
              );
            }
          },
        ),
        { numRuns: 25 },
      );
      report(
        'K8 rel(G autograd, layerGradient)',
        'K8 rel(G autograd, reference)',
        'K8 rel(tap g, reference g)',
      );
    },
  );
});

describe(
  'K2: the factored solve with Newton–Schulz inverses equals the dense ' + 'Kronecker solve',
  () => {
    test(
      'Γ_d⁻¹GΛ_d⁻¹ = vec⁻¹(solve(Λ_d⊗Γ_d, vec G)), within the Newton–Schulz ' + 'residuals',
      async () => {
        await fc.assert(
          fc.asyncProperty(
            seedArb,
            fc.integer({ min: 1, max: 20 }),
            fc.integer({ min: 1, max: 7 }),
            fc.integer({ min: 1, max: 8 }),
            fc.boolean(),
            fc.double({ min: Math.log(1e-4), max: Math.log(10), noNaN: true }),
            async (seed, B, dRaw, dOut, bias, logRho) => {
              const rng = prng(seed);
              const sqrtRho = Math.sqrt(Math.exp(logRho));
              const a = bias ? withOnesColumn(randMat(rng, B, dRaw)) : randMat(rng, B, dRaw);
              const g = randMat(rng, B, dOut);
              const dIn = a.cols;
              const G = scaleMat(refMatmul(transpose(g), a), 1 / B);
              const damp = (f: Mat) => addMat(f, eye(f.rows), sqrtRho * lambdaMax(f));
              const lambdaD = damp(secondMoment(a));
              const gammaD = damp(secondMoment(g));
              const tau = 1e-12;
              const k = newtonSchulzIterations(sqrtRho, tau);
              const start = (f: Mat) => scaleMat(eye(f.rows), 1 / lambdaMax(f));
              const [xl, xg, u] = await evaluate(
                (ld, gd, gm, x0l, x0g) => {
                  const il = newtonSchulz(ld, x0l, k);
                  const ig = newtonSchulz(gd, x0g, k);
                  return [il, ig, matmul(matmul(ig, gm), il)];
                },
                [lambdaD, gammaD, G, start(lambdaD), start(gammaD)],
              );
              const [Xl, Xg] = [mat(dIn, dIn, xl), mat(dOut, dOut, xg)];
              const [kl, kg] = [condition(lambdaD), condition(gammaD)];
              const rl = spectralNorm(residualMatrix(lambdaD, Xl));
              const rg = spectralNorm(residualMatrix(gammaD, Xg));
              // The inverses themselves converged (R8 c): a wrong iteration count or start shows
              // here.
              expect(rl).toBeLessThanOrEqual(Math.max(tau, 100 * kl * EPS));
              expect(rg).toBeLessThanOrEqual(Math.max(tau, 100 * kg * EPS));
              const want = unvecCol(solve(kron(lambdaD, gammaD), vecCol(G)), dOut, dIn);
              // Derivation: X_Λ = Λ_d⁻¹(I − R_Λ) with R_Λ = I − Λ_dX_Λ; X_Γ is exactly symmetric,
              // so X_Γ = X_Γᵀ = (I − R_Γᵀ)Γ_d⁻¹. Hence X_Γ G X_Λ = (I − R_Γᵀ)·U·(I − R_Λ) and ‖X_Γ
              // G X_Λ − U‖_F ≤ (r_Γ + r_Λ + r_Γ r_Λ)‖U‖_F with r = ‖R‖₂. Rounding on top: the two
              // products (≤ (d_in + d_out)ε·‖|X_Γ||G||X_Λ|‖ ≤ 2n·κ_Λκ_Γ·ε‖U‖ for n = d_in·d_out)
              // and the dense solve of a system with κ = κ_Λκ_Γ (Gaussian elimination with partial
              // pivoting: ≲ n·κ·ε relative): 4n·κ_Λκ_Γ·ε.
              const bound = rl + rg + rl * rg + 4 * dIn * dOut * kl * kg * EPS;
              const err = rel(u, want);
              track('K2 rel / derived bound', err / bound);
              track('K2 rel', err);
              expect(err).toBeLessThanOrEqual(bound);
              expect(err).toBeLessThanOrEqual(1e-9); // docs/algorithms.md K2
            },
          ),
        );
        report('K2 rel', 'K2 rel / derived bound');
      },
    );
  },
);

describe('R8: Newton–Schulz from X₀ = I/λ_max(A), A = Λ + √ρ·λ_max(Λ)·I', () => {
  test('each step is two d×d products, also when the width is padded (guardedInverse)', () => {
    // The symmetrization must not transpose a product: (XS)ᵀ would be rebuilt as SᵀXᵀ, a third.
    const products = (outputs: readonly Tensor[]) =>
      topoSort(outputs.map((t) => t.node)).filter((n) => n.op === 'matmul').length;
    const [a, x0] = [input('a', [5, 5]), input('x0', [5, 5])];
    expect(products([newtonSchulz(a, x0, 3)])).toBe(6);
    const options = { lambdaMax: input('l', []), iterations: 3, extra: 2, tolerance: 1e-3 };
    const cold = guardedInverse(a, options);
    // 2·(3 + 2) steps, which also give every iterate's A·X for its residual ‖I − AX‖_F; the cold
    // start I/λ̂ and the restart I/‖A‖_F have theirs without a product (A scaled).
    expect(products([cold.inverse, cold.residual, cold.fellBack])).toBe(2 * 5);
    // a warm start X₀ costs one product, A·X₀, its residual's and then the first step's
    const warm = guardedInverse(a, { ...options, x0 });
    expect(products([warm.inverse, warm.residual, warm.fellBack])).toBe(2 * 5 + 1);
  });

  test('newtonSchulzIterations reproduces docs/algorithms.md §3.5 table exactly', () => {
    const table: [number, number, number][] = [
      [0.3, 6, 7],
      [0.1, 8, 9],
      [0.03, 9, 10],
      [0.01, 11, 12],
      [0.001, 14, 15],
    ];
    for (const [sqrtRho, k6, k12] of table) {
      expect(newtonSchulzIterations(sqrtRho, 1e-6)).toBe(k6);
      expect(newtonSchulzIterations(sqrtRho, 1e-12)).toBe(k12);
      // And the counting definition (smallest k with (1+√ρ)^(−2^k) ≤ τ) agrees with the table.
      expect(iterationsByCounting(sqrtRho, 1e-6)).toBe(k6);
      expect(iterationsByCounting(sqrtRho, 1e-12)).toBe(k12);
    }
  });

  test(
    'per-iteration residual bound, convergence after k_NS, accuracy, ' +
      'symmetry, commutation, monotone residual',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          seedArb,
          fc.integer({ min: 1, max: 20 }),
          fc.boolean(),
          sqrtRhoArb,
          fc.constantFrom(1e-6, 1e-12),
          fc.double({ min: -3, max: 3, noNaN: true }),
          async (seed, d, singular, sqrtRho, tau, logScale) => {
            const rng = prng(seed);
            const { a } = dampedFactor(rng, d, batchFor(rng, d, singular), sqrtRho, 10 ** logScale);
            const k = newtonSchulzIterations(sqrtRho, tau);
            expect(k).toBe(iterationsByCounting(sqrtRho, tau));
            const x0 = scaleMat(eye(d), 1 / lambdaMax(a));
            // X_j for every j ≤ k + 2 (two past k_NS, to see the floor), each from its own call.
            const steps = k + 2;
            const xs = await evaluate(
              (am, x0m) => Array.from({ length: steps + 1 }, (_, j) => newtonSchulz(am, x0m, j)),
              [a, x0],
            );
            const refs = newtonSchulzSteps(a, x0, steps);
            const kappa = condition(a);
            const floor = 100 * kappa * EPS; // docs/algorithms.md's rounding floor 100·κ(A)·ε
            const aInv = inverse(a);
            const aInvNorm = spectralNorm(aInv);
            const normA = frobenius(a);
            let previous = Infinity;
            xs.forEach((data, j) => {
              const x = mat(d, d, data);
              const r = spectralNorm(residualMatrix(a, x));
              // (b) R_j = R_0^(2^j) and ‖R_0‖₂ ≤ 1/(1+√ρ); the reference's R = I − AX costs ≤ dκε ≤
              // 20κε.
              expect(r).toBeLessThanOrEqual((1 + sqrtRho) ** -(2 ** j) + floor);
              track('R8 r_j / bound', r / ((1 + sqrtRho) ** -(2 ** j) + floor));
              // (d) exactly symmetric: (X + Xᵀ)/2 sums x_ij + x_ji in either order, and /2 is
              // exact.
              expect(asymmetry(x)).toBe(0);
              // (d) commutes with A (docs/algorithms.md: 1e-12 relative, here to ‖A‖_F‖X‖_F): in
              // exact arithmetic X_j is a polynomial in A, so AX − XA (= R_jᵀ − R_j for symmetric
              // A, X) is rounding only: the per-step rounding ~dε, carried along like the drift
              // below, ≲ 10dκε·‖A‖‖X‖ in the worst case (κ ≤ 1001: ≈ 4e-11) but ~dε in practice.
              const comm =
                frobenius(subMat(refMatmul(a, x), refMatmul(x, a))) / (normA * frobenius(x));
              track('R8 commutation rel', comm);
              expect(comm).toBeLessThanOrEqual(1e-12);
              // The iteration itself (catches a wrong count or update): the reference runs the same
              // steps in float64. Rounding differences are amplified by ≤ 2 per step only while AX
              // is far from I (≈ log₂κ steps), i.e. ≲ κ overall: rel ≤ 10·d·κ·ε.
              const drift = rel(x, refs[j]);
              track('R8 rel(X_j, reference X_j) / 10dκε', drift / (10 * d * kappa * EPS));
              expect(drift).toBeLessThanOrEqual(10 * d * kappa * EPS);
              // (c) X − A⁻¹ = −A⁻¹R, so ‖X − A⁻¹‖₂/‖A⁻¹‖₂ ≤ ‖R‖₂, at every j; the Gauss–Jordan
              // inverse and the measured R each carry ≲ dκε of rounding: slack = floor.
              expect(spectralNorm(subMat(x, aInv)) / aInvNorm).toBeLessThanOrEqual(r + floor);
              // (e) monotone until the floor: R_{j+1} = R_j² + O(dκε) ≤ R_j while ‖R_j‖ > floor.
              if (previous > floor) expect(r).toBeLessThanOrEqual(previous);
              // (c) after k_NS(τ) iterations (and beyond): ‖I − AX‖₂ ≤ max(τ, 100κε).
              if (j >= k) expect(r).toBeLessThanOrEqual(Math.max(tau, floor));
              previous = r;
            });
          },
        ),
      );
      report('R8 r_j / bound', 'R8 commutation rel', 'R8 rel(X_j, reference X_j) / 10dκε');
    },
  );
});

/** guardedInverse on the interpreter: [inverse, residual, fellBack]. */
async function guarded(
  a: Mat,
  options: { lambdaMax: number; x0?: Mat; iterations: number; extra: number; tolerance: number },
): Promise<{ inverse: Mat; residual: number; fellBack: number }> {
  const { iterations, extra, tolerance } = options;
  const outputs = (out: GuardedInverse) => [out.inverse, out.residual, out.fellBack];
  const [x, r, f] =
    options.x0 === undefined
      ? await evaluate(
          (am, lm) => outputs(guardedInverse(am, { lambdaMax: lm, iterations, extra, tolerance })),
          [a, options.lambdaMax],
        )
      : await evaluate(
          (am, lm, x0) =>
            outputs(guardedInverse(am, { lambdaMax: lm, x0, iterations, extra, tolerance })),
          [a, options.lambdaMax, options.x0],
        );
  return { inverse: mat(a.rows, a.rows, x), residual: r[0], fellBack: f[0] };
}

/** Steps from a start with ‖I − AX₀‖₂ = r₀ < 1 until ‖R‖₂ ≤ τ: the smallest k with r₀^(2^k) ≤ τ. */
const stepsFrom = (r0: number, tau: number): number =>
  Math.max(1, Math.ceil(Math.log2(Math.log(tau) / Math.log(r0))));

/** A random A (as in R8) with d ∈ [2, 16] and what the guarded-inverse checks need. */
const guardedCase = fc
  .record({
    seed: seedArb,
    d: fc.integer({ min: 2, max: 16 }),
    singular: fc.boolean(),
    sqrtRho: sqrtRhoArb,
    logScale: fc.double({ min: -3, max: 3, noNaN: true }),
  })
  .map(({ seed, d, singular, sqrtRho, logScale }) => {
    const rng = prng(seed);
    const { a } = dampedFactor(rng, d, batchFor(rng, d, singular), sqrtRho, 10 ** logScale);
    const kappa = condition(a);
    return {
      seed,
      d,
      sqrtRho,
      a,
      kappa,
      top: lambdaMax(a),
      floor: 100 * kappa * EPS,
      k: newtonSchulzIterations(sqrtRho, 1e-12),
    };
  });

/**
 * The guarded inverse converged: ‖I − AX‖₂ ≤ 1e-12 + floor, and it matches the reference's
 * decisions and result.
 */
function expectConverged(
  a: Mat,
  got: { inverse: Mat; residual: number; fellBack: number },
  want: ReturnType<typeof guardedInverseReference>,
  kappa: number,
  label: string,
): void {
  const d = a.rows;
  const r = spectralNorm(residualMatrix(a, got.inverse));
  expect(r).toBeLessThanOrEqual(1e-12 + 100 * kappa * EPS);
  // The reported residual is ‖I − AX‖_F of the returned X: the reference's value up to the
  // rounding of I − AX (≤ d·dκε in Frobenius norm).
  expect(Math.abs(got.residual - frobenius(residualMatrix(a, got.inverse)))).toBeLessThanOrEqual(
    d * d * kappa * EPS,
  );
  expect(got.fellBack).toBe(want.fellBack);
  // Same iteration as the reference (see R8): rel ≤ 10·d·κ·ε.
  const drift = rel(got.inverse, want.inverse);
  track(`R9 ${label} rel / 10dκε`, drift / (10 * d * kappa * EPS));
  expect(drift).toBeLessThanOrEqual(10 * d * kappa * EPS);
}

describe('R9: guardedInverse (warm start, cold start, fallback)', () => {
  test(
    'a good warm start (the inverse of a drifted factor) is used: it ' +
      'converges in few steps even with a λ̂ whose cold start would diverge',
    async () => {
      await fc.assert(
        fc.asyncProperty(guardedCase, async ({ seed, d, a, kappa, top }) => {
          // a fresh stream (generated values must stay immutable for replay)
          const rng = prng(seed ^ 0x5bd1e995);
          // A' = A + E with ‖E‖₂ = 0.1·λ_min(A): X₀ = A'⁻¹ has ‖I − AX₀‖₂ = ‖E A'⁻¹‖₂ ≤ 0.1/0.9,
          // so ‖·‖_F ≤ √16·0.112 < 1: the warm start must be taken.
          const s = randMat(rng, d, d);
          const e = addMat(s, transpose(s));
          const drifted = addMat(a, e, (0.1 * eigenvalues(a)[0]) / spectralNorm(e));
          const x0 = inverse(drifted);
          const r0 = spectralNorm(residualMatrix(a, x0));
          expect(frobenius(residualMatrix(a, x0))).toBeLessThan(1);
          const iterations = stepsFrom(r0, 1e-13);
          // λ̂ = λ_max/100: a cold start I/λ̂ has R₀ with eigenvalue −99 and would diverge.
          const options = { lambdaMax: top / 100, x0, iterations, extra: 0, tolerance: 1e-9 };
          const want = guardedInverseReference(a, options);
          expect(want.warm).toBe(true);
          const got = await guarded(a, options);
          // ‖R‖_F ≤ √d(r₀^(2^k) + floor) ≤ 4(1e-13 + 100·1001·ε) ≈ 1e-10 < tolerance: no fallback.
          expect(got.fellBack).toBe(0);
          expectConverged(a, got, want, kappa, 'warm');
        }),
        { numRuns: 25 },
      );
      report('R9 warm rel / 10dκε');
    },
  );

  test(
    'X₀ = 3·A⁻¹ (‖I − AX₀‖ = 2√d ≥ 1) cold-starts from I/λ̂: the result is ' +
      'bitwise the cold one and converged',
    async () => {
      await fc.assert(
        fc.asyncProperty(guardedCase, async ({ a, kappa, top, k }) => {
          const x0 = scaleMat(inverse(a), 3);
          const options = { lambdaMax: top, iterations: k, extra: 0, tolerance: 1e-9 };
          const want = guardedInverseReference(a, { ...options, x0 });
          expect(want.warm).toBe(false);
          const got = await guarded(a, { ...options, x0 });
          const cold = await guarded(a, options);
          expect(Array.from(got.inverse.data)).toEqual(Array.from(cold.inverse.data));
          // k_NS(√ρ, 1e-12) from I/λ_max: ‖R‖₂ ≤ 1e-12 + floor, so ‖R‖_F ≤ 4(1e-12 + 2.2e-11) <
          // 1e-9.
          expect(got.fellBack).toBe(0);
          expect(cold.fellBack).toBe(0);
          expectConverged(a, got, want, kappa, 'cold');
        }),
        { numRuns: 25 },
      );
      report('R9 cold rel / 10dκε');
    },
  );

  test(
    'too few iterations for a tiny tolerance: fellBack = 1, and the extra ' +
      'steps continue to a converged inverse',
    async () => {
      await fc.assert(
        fc.asyncProperty(guardedCase, async ({ a, kappa, top, k, sqrtRho, d }) => {
          // j steps from I/λ_max leave ‖R‖₂ = (1 − λ_min/λ_max)^(2^j) ≤ (1+√ρ)^(−2^j) (equality for
          // singular Λ). Take the fewest j with √d·(1+√ρ)^(−2^j) ≤ 1/2, so ‖R‖_F ≤ 1/2 (not
          // diverged: the guard judges divergence by ‖R‖_F ≥ 1), and a tolerance 10× below ‖R‖₂.
          const iterations = stepsFrom(1 / (1 + sqrtRho), 0.5 / Math.sqrt(d));
          const lower = (1 - eigenvalues(a)[0] / top) ** (2 ** iterations);
          fc.pre(lower >= 1e-8); // far above rounding (not A ≈ cI)
          const options = { lambdaMax: top, iterations, extra: k, tolerance: lower / 10 };
          const want = guardedInverseReference(a, options);
          expect(want.fellBack).toBe(1);
          expect(want.diverged).toBe(false);
          const got = await guarded(a, options);
          expect(got.fellBack).toBe(1);
          expectConverged(a, got, want, kappa, 'continued');
        }),
        { numRuns: 25 },
      );
      report('R9 continued rel / 10dκε');
    },
  );

  test(
    'a first attempt within tolerance but above the floor is polished to the floor (no ' +
      'fallback), stopping once a step no longer halves the residual',
    async () => {
      await fc.assert(
        fc.asyncProperty(guardedCase, async ({ a, kappa, top, k, sqrtRho }) => {
          // j steps from I/λ_max leave ‖R‖₂ ≤ (1+√ρ)^(−2^j): the fewest with that ≤ 1e-5, so
          // ‖R‖_F ≤ √16·1e-5 < 1e-3 = tolerance. `reached` is that ‖R‖₂ exactly (R₀'s largest
          // eigenvalue is 1 − λ_min/λ_max); 10× above what expectConverged allows (fc.pre), the
          // first attempt alone fails it: polishing steps must be kept.
          const iterations = stepsFrom(1 / (1 + sqrtRho), 1e-5);
          const reached = (1 - eigenvalues(a)[0] / top) ** (2 ** iterations);
          fc.pre(reached >= 10 * (1e-12 + 100 * kappa * EPS));
          const options = { lambdaMax: top, iterations, extra: k, tolerance: 1e-3 };
          const want = guardedInverseReference(a, options);
          expect(want.fellBack).toBe(0);
          const got = await guarded(a, options);
          expect(got.fellBack).toBe(0);
          // The reference takes all `extra` steps; the polish stops at the floor: both there.
          expectConverged(a, got, want, kappa, 'polished');
        }),
        { numRuns: 25 },
      );
      report('R9 polished rel / 10dκε');
    },
  );

  test(
    'λ̂ = λ_max/10: the first attempt diverges (finite), fellBack = 1, and ' +
      'the restart from I/‖A‖_F converges after `extra` steps',
    async () => {
      await fc.assert(
        fc.asyncProperty(guardedCase, async ({ a, kappa, top }) => {
          // R₀ = I − 10A/λ_max has eigenvalue −9: after 3 steps ‖R‖ ≈ 9^8 ≈ 4e7 (finite, ≥ 1).
          // From I/‖A‖_F: ‖R₀‖₂ = 1 − λ_min/‖A‖_F < 1, so extra = stepsFrom(that, 1e-13) suffices.
          const extra = stepsFrom(1 - eigenvalues(a)[0] / frobenius(a), 1e-13);
          const options = { lambdaMax: top / 10, iterations: 3, extra, tolerance: 1e-9 };
          const want = guardedInverseReference(a, options);
          expect(want.diverged).toBe(true);
          expect(want.fellBack).toBe(1);
          const got = await guarded(a, options);
          expect(got.fellBack).toBe(1);
          expectConverged(a, got, want, kappa, 'restarted');
        }),
        { numRuns: 25 },
      );
      report('R9 restarted rel / 10dκε');
    },
  );

  test(
    'a divergence that overflows (λ̂ = λ_max/10, 12 steps: 9^4096) still ' +
      'restarts, converges and counts as a fallback',
    async () => {
      await fc.assert(
        fc.asyncProperty(guardedCase, async ({ a, kappa, top }) => {
          const extra = stepsFrom(1 - eigenvalues(a)[0] / frobenius(a), 1e-13);
          const options = { lambdaMax: top / 10, iterations: 12, extra, tolerance: 1e-9 };
          const want = guardedInverseReference(a, options);
          expect(want.diverged).toBe(true);
          const got = await guarded(a, options);
          // The first attempt missed the tolerance (its residual overflowed to NaN/∞): the
          // documented contract of fellBack ("1 when the first attempt missed `tolerance` …, if it
          // diverged, restarted") and docs/algorithms.md's "count the event" (§3.5) both say 1.
          expect(got.fellBack).toBe(1);
          expectConverged(a, got, want, kappa, 'overflowed');
        }),
        { numRuns: 10 },
      );
    },
  );
});

describe('R10: power iteration', () => {
  /**
   * powerIteration(A, v0, j) for each j in `counts`, each from its own call: [value, vector] pairs.
   */
  async function powerSteps(
    a: Mat,
    v0: Float64Array,
    counts: readonly number[],
  ): Promise<{ value: number; vector: Float64Array }[]> {
    const out = await evaluate(
      (am, v) =>
        counts.flatMap((j) => {
          const r = powerIteration(am, v, j);
          return [r.value, r.vector];
        }),
      [a, mat(1, v0.length, v0)],
    );
    return counts.map((_, i) => ({ value: out[2 * i][0], vector: out[2 * i + 1] }));
  }
  const upTo = (n: number): number[] => Array.from({ length: n + 1 }, (_, j) => j);

  /** The same iteration in float64 loops: v ← Av/‖Av‖ from v0/‖v0‖, Rayleigh quotient vᵀAv. */
  function powerReference(a: Mat, v0: Float64Array, steps: number): number[] {
    let v = v0.map((x) => x / frobenius(v0));
    const values = [];
    for (let j = 0; j <= steps; j++) {
      if (j > 0) {
        const w = matVec(a, v);
        v = w.map((x) => x / frobenius(w));
      }
      const av = matVec(a, v);
      values.push(v.reduce((s, x, i) => s + x * av[i], 0));
    }
    return values;
  }

  test(
    'the Rayleigh quotient never exceeds λ_max(1 + 1e-12), at every step ' +
      'count, and follows the float64 reference iteration',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          seedArb,
          fc.integer({ min: 1, max: 20 }),
          fc.boolean(),
          fc.double({ min: -3, max: 3, noNaN: true }),
          async (seed, d, singular, logScale) => {
            const rng = prng(seed);
            const a = secondMoment(randMat(rng, batchFor(rng, d, singular), d, 10 ** logScale));
            const v0 = uniform(rng, d, -3, 3); // not unit: the first normalization matters
            const top = lambdaMax(a);
            // v0 not (nearly) orthogonal to A's range, so one step's rounding is amplified by at
            // most ‖A‖‖v0‖/‖Av0‖ ≤ 1e3 in the comparison with the reference iteration below.
            fc.pre(frobenius(matVec(a, v0)) >= 1e-3 * top * frobenius(v0));
            const steps = 25;
            const got = await powerSteps(a, v0, upTo(steps));
            const want = powerReference(a, v0, steps);
            got.forEach(({ value, vector }, j) => {
              // v is unit up to (d+2)u, vᵀAv carries ≤ d^{3/2}u·λ_max of rounding, Jacobi ≤ ~dε:
              // ≤ 1e-13·λ_max in total; docs/algorithms.md's 1e-12 has margin.
              track('R10 (λ̂ − λ_max)/λ_max', (value - top) / top);
              expect(value).toBeLessThanOrEqual(top * (1 + 1e-12));
              expect(Math.abs(frobenius(vector) - 1)).toBeLessThanOrEqual(1e-14);
              // Same iteration: differences of ≤ 1e3·d·ε in v (see the precondition), second order
              // in λ̂ near convergence but first order early: ≤ 1e3·d·ε·λ_max ≈ 4.4e-12·λ_max; use
              // 1e-10.
              track('R10 |λ̂ − reference| / λ_max', Math.abs(value - want[j]) / top);
              expect(Math.abs(value - want[j])).toBeLessThanOrEqual(1e-10 * top);
            });
          },
        ),
      );
      report('R10 (λ̂ − λ_max)/λ_max', 'R10 |λ̂ − reference| / λ_max');
    },
  );

  test(
    'with a spectral gap λ₁/λ₂ ≥ 1.5, 60 steps give rel(λ̂, λ_max) ≤ 1e-8 ' +
      'and the top eigenvector',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          seedArb,
          fc.integer({ min: 2, max: 20 }),
          fc.double({ min: -3, max: 3, noNaN: true }),
          async (seed, d, logScale) => {
            const rng = prng(seed);
            const l1 = 10 ** logScale;
            const l2 = l1 * (2 / 3) * rng();
            const values = [
              l1,
              l2,
              ...Array.from({ length: d - 2 }, () => (rng() < 0.3 ? 0 : l2 * rng())),
            ];
            const q = orthonormalColumns(randMat(rng, d, d));
            const a = withSpectrum(q, values);
            const v0 = uniform(rng, d);
            const q1 = Float64Array.from({ length: d }, (_, i) => at(q, i, 0));
            const cos = Math.abs(q1.reduce((s, x, i) => s + x * v0[i], 0)) / frobenius(v0);
            // The start must see the top eigenvector (|cos θ₀| ≥ 1e-3, so tan²θ₀ ≤ 1e6).
            fc.pre(cos >= 1e-3);
            const [last] = await powerSteps(a, v0, [60]);
            // λ₁ − λ̂ ≤ λ₁·tan²θ₀·(λ₂/λ₁)^(2·60) ≤ 1e6·(2/3)^120·λ₁ ≈ 8e-16·λ₁, plus rounding
            // ~1e-14: docs/algorithms.md's 1e-8 holds with a wide margin (a missed normalization or
            // a wrong step count fails it; see the mutations in the report).
            const top = symmetricEigen(a).values[d - 1];
            const err = Math.abs(last.value - top) / top;
            track('R10 gap rel(λ̂, λ_max)', err);
            expect(err).toBeLessThanOrEqual(1e-8);
            // The vector: sin θ_60 ≤ tan θ₀·(2/3)^60 ≤ 1e3·2.7e-11, so 1 − |cos| ≤ 1e-12.
            const align = Math.abs(q1.reduce((s, x, i) => s + x * last.vector[i], 0));
            expect(1 - align).toBeLessThanOrEqual(1e-12);
          },
        ),
      );
      report('R10 gap rel(λ̂, λ_max)');
    },
  );

  test('A = 0 gives λ̂ = 0 (the normalization is guarded)', async () => {
    const [last] = await powerSteps(mat(3, 3), Float64Array.of(1, 2, 3), [3]);
    expect(last.value).toBe(0);
    expect(Array.from(last.vector).every(Number.isFinite)).toBe(true);
  });
});

describe(
  'compiled: powerIteration and guardedInverse on WebGPU (float32) vs ' + 'the float64 reference',
  () => {
    test('well-conditioned SPD A (d ∈ {8, 17}, κ ≤ 10, gap λ₁/λ₂ ≥ 2)', async () => {
      const gpu = await gpuDevice();
      const powerSteps = 25;
      await fc.assert(
        // Two sizes only: every kernel of a new program is compiled anew (≈ 100 per program here),
        // which takes seconds on a software adapter; runs of the same size reuse them.
        fc.asyncProperty(seedArb, fc.constantFrom(8, 17), async (seed, d) => {
          const rng = prng(seed);
          // Spectrum: λ₁ ∈ [0.5, 2], λ₂ ∈ [0.1λ₁, λ₁/2], the rest in [0.1λ₁, λ₂]: κ ≤ 10, gap ≥ 2.
          const l1 = 0.5 + 1.5 * rng();
          const l2 = l1 * (0.1 + 0.4 * rng());
          const spectrum = [
            l1,
            l2,
            ...Array.from({ length: d - 2 }, () => l1 * 0.1 + (l2 - l1 * 0.1) * rng()),
          ];
          const q = orthonormalColumns(randMat(rng, d, d));
          // Round A to float32 first: the reference then works on exactly the matrix the GPU sees.
          const a = mat(d, d, withSpectrum(q, spectrum).data.map(Math.fround));
          const v0 = uniform(rng, d).map(Math.fround);
          const { values, vectors } = symmetricEigen(a);
          const top = values[d - 1];
          const kappa = top / values[0];
          const gap = values[d - 1] / values[d - 2];
          const q1 = Float64Array.from({ length: d }, (_, i) => at(vectors, i, d - 1));
          // tan θ₀ ≤ 10
          fc.pre(Math.abs(q1.reduce((s, x, i) => s + x * v0[i], 0)) >= 0.1 * frobenius(v0));
          const [value, vector, inv, residual, fellBack] = await evaluate(
            (am, v) => {
              const power = powerIteration(am, v, powerSteps);
              // From I/λ̂ with λ̂ ≈ λ_max: ‖R₀‖₂ ≤ 1 − 1/κ ≤ 0.9, and 0.9^(2^8) ≈ 2e-12 is far
              // below the float32 floor; one extra step.
              const g = guardedInverse(am, {
                lambdaMax: power.value,
                iterations: 8,
                extra: 1,
                tolerance: 1e-3,
              });
              return [power.value, power.vector, g.inverse, g.residual, g.fellBack];
            },
            [a, mat(1, d, v0)],
            gpu,
          );
          // λ̂: the Rayleigh quotient's float32 rounding, ≤ (d^{3/2} + 2d)·u·λ₁ (a d-term dot with
          // |v|ᵀ|A||v| ≤ ‖A‖_F ≤ √d·λ₁, and the normalization), plus ≤ 8 ULP for WGSL's division
          // and sqrt (not correctly rounded); convergence λ₁tan²θ₀·gap^(−2·25) ≤ 1e-13·λ₁ is
          // negligible. With ε32 = 2u: (d^{3/2} + 2d + 8)·ε32 (≈ 1.0e-5 at d = 17).
          const valueBound = (d ** 1.5 + 2 * d + 8) * EPS32;
          const valueErr = Math.abs(value[0] - top) / top;
          track('GPU rel(λ̂, λ_max) / bound', valueErr / valueBound);
          expect(valueErr).toBeLessThanOrEqual(valueBound);
          // The vector: each step adds ≤ (d^{3/2} + 2d)·u of rounding and contracts older errors by
          // 1/gap ≤ 1/2, so the stationary error is ≤ 2(d^{3/2} + 2d)u = (d^{3/2} + 2d)·ε32; not
          // yet converged: tan θ₀·gap^(−25) ≤ 10·2^-25 ≈ 3e-7.
          const sign = Math.sign(q1.reduce((s, x, i) => s + x * vector[i], 0)) || 1;
          const vecErr = rel(
            vector,
            q1.map((x) => sign * x),
          );
          const vecBound = (d ** 1.5 + 2 * d) * EPS32 + 10 * gap ** -powerSteps;
          track('GPU ‖v − q₁‖ / bound', vecErr / vecBound);
          expect(vecErr).toBeLessThanOrEqual(vecBound);
          // The inverse: each Newton–Schulz step leaves X with a relative rounding error of about
          // d·u from its d-term products, which the next step's residual I − AX carries times κ;
          // the iteration's float32 fixed point is A⁻¹(1 + O(d·κ·u)). With ε32 = 2u and a factor 2
          // for the two products and the symmetrization: 2·d·κ·ε32 (≈ 4e-5 at d = 17, κ = 10).
          const aInv = inverse(a);
          const invBound = 2 * d * kappa * EPS32;
          const invErr = rel(inv, aInv);
          track('GPU rel(X, A⁻¹) / bound', invErr / invBound);
          expect(invErr).toBeLessThanOrEqual(invBound);
          // ‖I − AX‖_F at that floor is ≲ d·κ·ε32·√d ≈ 1e-4 < 1e-3: no fallback.
          expect(fellBack[0]).toBe(0);
          expect(residual[0]).toBeLessThanOrEqual(1e-3);
        }),
        { numRuns: 6 },
      );
      report('GPU rel(λ̂, λ_max) / bound', 'GPU ‖v − q₁‖ / bound', 'GPU rel(X, A⁻¹) / bound');
    });

    test('the iteration stops at the float32 floor: the device skips the steps after it', async () => {
      const gpu = await gpuDevice();
      const [iterations, extra, tolerance] = [12, 4, 1e-3];
      await fc.assert(
        fc.asyncProperty(seedArb, fc.constantFrom(8, 16), async (seed, d) => {
          const rng = prng(seed);
          // Spectrum in [1, 2] (κ ≤ 2) and λ̂ = λ_max: R₀ = I − A/λ_max has ‖R₀‖₂ ≤ 1/2, so
          // ‖R_j‖_F ≤ √d·2^(−2^j) is within the tolerance after 4 steps (4·2^-16 ≈ 6e-5 at
          // d = 16) and at the float32 floor (≲ d·κ·ε32·√d ≈ 1.5e-5) after at most one more. The
          // step after that no longer halves the residual and is discarded; everything later is
          // skipped. Noise at the floor may let a step or two more pass for halving: at most 8 of
          // the 16 steps run, where running the first attempt in full would be 12 and more.
          const spectrum = Array.from({ length: d }, () => 1 + rng());
          const q = orthonormalColumns(randMat(rng, d, d));
          const a = mat(d, d, withSpectrum(q, spectrum).data.map(Math.fround));
          const top = Math.fround(eigenvalues(a)[d - 1]);
          const before = gpu.stats.matmulFlops;
          const [inv, residual, fellBack] = await evaluate(
            (am, lm) => {
              const g = guardedInverse(am, { lambdaMax: lm, iterations, extra, tolerance });
              return [g.inverse, g.residual, g.fellBack];
            },
            [a, top],
            gpu,
          );
          const ran =
            (gpu.stats.matmulFlops - before + (await gpu.gatedWork()).matmulFlops) / (2 * d ** 3);
          // two products per step: the step itself and the next residual's A·X
          expect(ran % 2).toBe(0);
          expect(ran / 2).toBeLessThanOrEqual(8);
          expect(fellBack[0]).toBe(0);
          expect(residual[0]).toBeLessThanOrEqual(tolerance);
          // converged as in the test above: rel(X, A⁻¹) ≤ 2·d·κ·ε32
          const kappa = condition(a);
          expect(rel(inv, inverse(a))).toBeLessThanOrEqual(2 * d * kappa * EPS32);
        }),
        { numRuns: 6 },
      );
    });
  },
);
