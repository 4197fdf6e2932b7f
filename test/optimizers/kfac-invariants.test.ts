// K-FAC invariants of docs/algorithms.md §8.1 and §8.5 on a 2-layer tanh MLP, float64 interpreter:
// K7 (lazy inverses: the inverse factors change only on refresh steps, and between refreshes the
// preconditioned step is Γ⁻¹ G Λ⁻¹ with the stored inverses and the new gradient) and B4 (the KL
// clip: ν ≤ 1, and when it clips, ν²·η²Σ⟨V, G⟩ = κ, i.e. docs/algorithms.md's ν·η²Σ⟨V, G⟩ ≤ κ with
// V the clipped direction νV). Gradients for the references come from test/curvature/reference.ts's
// mlpBackprop (float64 chain rule), never from grng.
//
// Notation for bounds: u = 2^-53 (unit roundoff of float64).
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  array,
  compileTrainStep,
  createDevice,
  crossEntropy,
  kfac,
  nn,
  type DeviceArray,
} from '../../index.js';
import type { HostArray } from '../../core/host-array.js';
import { frobenius, mat, matmul, mlpBackprop, type Mat } from '../curvature/reference.js';
import { int, prng, range, seedArb, uniform } from '../support/random.js';

const cpu = await createDevice({ kind: 'cpu' });
const u = 2 ** -53;
/**
 * ‖G_grng − G_ref‖_F / ‖G‖_F: grng's autograd layer gradient against mlpBackprop. K8
 * (test/curvature/curvature.test.ts) asserts ≤ 1e-12 for tanh MLPs of this size (measured ~1e-15).
 */
const DELTA_G = 1e-12;

type LayerState = {
  lambda: DeviceArray;
  gamma: DeviceArray;
  lambdaInv: DeviceArray;
  gammaInv: DeviceArray;
};
type KfacState = { layers: LayerState[] };
type Params = { layers: { w: DeviceArray; b: DeviceArray }[] };
type HostParams = { layers: { w: HostArray; b: HostArray }[] };

interface Problem {
  sizes: number[];
  B: number;
  batches: { x: Float64Array; y: Int32Array }[];
}

function drawProblem(seed: number, steps: number): Problem {
  const rng = prng(seed);
  const sizes = [int(rng, 2, 4), int(rng, 2, 5), int(rng, 2, 4)];
  const B = int(rng, 3, 8);
  const batches = range(steps).map(() => ({
    x: uniform(rng, B * sizes[0], -2, 2),
    y: Int32Array.from({ length: B }, () => int(rng, 0, sizes[2] - 1)),
  }));
  return { sizes, B, batches };
}

const batchOf = (p: Problem, b: { x: Float64Array; y: Int32Array }) => ({
  x: array(b.x, [p.B, p.sizes[0]]),
  y: array(b.y, [p.B], 'i32'),
});

/** A layer's parameters as one float64 matrix [W | b] (d_out × (d_in + 1)). */
function asMat(w: ArrayLike<number>, b: ArrayLike<number>, dOut: number, dRaw: number): Mat {
  const m = mat(dOut, dRaw + 1);
  for (let o = 0; o < dOut; o++) {
    for (let i = 0; i < dRaw; i++) m.data[o * (dRaw + 1) + i] = w[o * dRaw + i];
    m.data[o * (dRaw + 1) + dRaw] = b[o];
  }
  return m;
}

const readParams = async (params: Params): Promise<Mat[]> =>
  Promise.all(
    params.layers.map(async (l) =>
      asMat(await l.w.read(), await l.b.read(), l.w.shape[0], l.w.shape[1]),
    ),
  );
const hostParams = (params: HostParams): Mat[] =>
  params.layers.map((l) => asMat(l.w.data, l.b.data, l.w.shape[0], l.w.shape[1]));

/**
 * The reference layer gradients G_i = [∂L/∂W | ∂L/∂b] at parameters θ ([W | b] per layer) on a
 * batch.
 */
function referenceGrads(
  theta: Mat[],
  x: Float64Array,
  y: Int32Array,
  sizes: number[],
  B: number,
): Mat[] {
  const layers = theta.map((m) => {
    const dRaw = m.cols - 1;
    const w = mat(m.rows, dRaw);
    const b = new Float64Array(m.rows);
    for (let o = 0; o < m.rows; o++) {
      for (let i = 0; i < dRaw; i++) w.data[o * dRaw + i] = m.data[o * m.cols + i];
      b[o] = m.data[o * m.cols + dRaw];
    }
    return { w, b };
  });
  const r = mlpBackprop(layers, mat(B, sizes[0], x), y);
  return r.gradW.map((gw, i) => {
    const G = mat(gw.rows, gw.cols + 1);
    for (let o = 0; o < gw.rows; o++) {
      for (let k = 0; k < gw.cols; k++) G.data[o * G.cols + k] = gw.data[o * gw.cols + k];
      G.data[o * G.cols + gw.cols] = (r.gradB[i] as Float64Array)[o];
    }
    return G;
  });
}

const absM = (m: Mat): Mat => mat(m.rows, m.cols, m.data.map(Math.abs));
const sameBits = (a: Float64Array, b: Float64Array) =>
  a.length === b.length && a.every((v, i) => Object.is(v, b[i]));

describe('K7: lazy inverses (inverseEvery S, covEvery 1)', () => {
  test(
    'inverses at step t are bitwise those of step S⌊(t−1)/S⌋+1; factors ' +
      'change every step; Δθ = −η·Γ_inv G Λ_inv with the stored inverses',
    async () => {
      let worst = 0;
      await fc.assert(
        fc.asyncProperty(
          seedArb,
          fc.integer({ min: 2, max: 3 }),
          fc.double({ min: 0.01, max: 0.5, noNaN: true }),
          async (seed, S, lr) => {
            // Steps are 1-based and every(S, …) is active on t ≡ 1 (mod S) (dsl/optimizer.ts,
            // runtime/step-variants.ts): refreshes at t = 1, 1 + S, 1 + 2S. That is
            // docs/algorithms.md's S⌊t′/S⌋ for the 0-based step t′ = t − 1.
            const steps = 2 * S + 1;
            const problem = drawProblem(seed, steps);
            // Run B sees other batches on the non-refresh steps 2..S of the first period.
            const rngB = prng(seed ^ 0x2545f491);
            const other = range(steps).map(() => ({
              x: uniform(rngB, problem.B * problem.sizes[0], -2, 2),
              y: Int32Array.from({ length: problem.B }, () => int(rngB, 0, problem.sizes[2] - 1)),
            }));
            const model = nn.mlp(problem.sizes, { activation: 'tanh' });
            const init = model.init(seed) as HostParams;
            const optimizer = kfac({
              lr,
              momentum: 0,
              weightDecay: 0,
              klClip: 1e30,
              covEvery: 1,
              inverseEvery: S,
              statDecay: 0.8,
            });
            const open = () =>
              compileTrainStep({
                model,
                loss: crossEntropy,
                optimizer,
                params: init as never,
                device: cpu,
                seed,
              });
            const [runA, runB] = [await open(), await open()];
            const history: {
              lambda: Float64Array;
              gamma: Float64Array;
              lambdaInv: Float64Array;
              gammaInv: Float64Array;
            }[][] = [];
            let theta = await readParams((await runA.params()) as unknown as Params);
            for (let t = 1; t <= steps; t++) {
              const batch = problem.batches[t - 1];
              await runA.run(batchOf(problem, batch));
              const state = (await runA.state()) as unknown as KfacState;
              const now = await Promise.all(
                state.layers.map(async (l) => ({
                  lambda: await l.lambda.read(),
                  gamma: await l.gamma.read(),
                  lambdaInv: await l.lambdaInv.read(),
                  gammaInv: await l.gammaInv.read(),
                })),
              );
              history.push(now);
              const refresh = S * Math.floor((t - 1) / S) + 1;
              now.forEach((layer, i) => {
                // Bitwise: the skipped-refresh variant passes the old inverses through untouched.
                expect(sameBits(layer.lambdaInv, history[refresh - 1][i].lambdaInv)).toBe(true);
                expect(sameBits(layer.gammaInv, history[refresh - 1][i].gammaInv)).toBe(true);
                if (t > 1) {
                  // covEvery 1: the statistics move every step (different batches and labels)...
                  expect(
                    sameBits(layer.lambda, history[t - 2][i].lambda) &&
                      sameBits(layer.gamma, history[t - 2][i].gamma),
                  ).toBe(false);
                  // ...and a refresh step really recomputes the inverses from them.
                  if (refresh === t)
                    expect(
                      sameBits(layer.lambdaInv, history[t - 2][i].lambdaInv) &&
                        sameBits(layer.gammaInv, history[t - 2][i].gammaInv),
                    ).toBe(false);
                }
              });

              // The step itself: Δθ_i = −η·V_i with V_i = Γ_inv,i · G_i · Λ_inv,i from the stored
              // inverses (stale between refreshes) and the reference gradient at θ_{t−1} on this
              // batch.
              const G = referenceGrads(theta, batch.x, batch.y, problem.sizes, problem.B);
              const next = await readParams((await runA.params()) as unknown as Params);
              next.forEach((th, i) => {
                const [dOut, dIn] = [th.rows, th.cols];
                const gInv = mat(dOut, dOut, now[i].gammaInv);
                const lInv = mat(dIn, dIn, now[i].lambdaInv);
                const want = matmul(matmul(gInv, G[i]), lInv);
                const got = mat(
                  dOut,
                  dIn,
                  th.data.map((v, k) => (theta[i].data[k] - v) / lr),
                );
                const err = frobenius(
                  mat(
                    dOut,
                    dIn,
                    got.data.map((v, k) => v - want.data[k]),
                  ),
                );
                // Bound on ‖V_measured − V_ref‖_F: • reading V back: θ_t = fl(θ_{t−1} − fl(η·V))
                // and the host's (θ_{t−1} − θ_t)/η each
                //    round once: ≤ 2u(‖θ_{t−1}‖ + ‖θ_t‖)/η + 4u‖V‖; • grng's two products
                //    Γ_inv·G·Λ_inv round with ≤ (d_in + d_out)u·‖|Γ_inv||G||Λ_inv|‖; • its gradient
                //    differs from mlpBackprop's by ≤ DELTA_G·‖G‖ (K8), which reaches V
                //    through ≤ ‖Γ_inv‖_F‖Λ_inv‖_F.
                const bound =
                  (2 * u * (frobenius(theta[i]) + frobenius(th))) / lr +
                  4 * u * frobenius(want) +
                  (dIn + dOut) * u * frobenius(matmul(matmul(absM(gInv), absM(G[i])), absM(lInv))) +
                  DELTA_G * frobenius(G[i]) * frobenius(gInv) * frobenius(lInv);
                worst = Math.max(worst, err / bound);
                expect(err).toBeLessThanOrEqual(bound);
              });
              theta = next;

              if (t <= S) {
                // Run B: other statistics on steps 2..S (different batches, hence gradients and
                // factors), yet the same inverses bitwise: U changes only through G.
                const bBatch = t === 1 ? batch : other[t - 1];
                await runB.run(batchOf(problem, bBatch));
                const bState = (await runB.state()) as unknown as KfacState;
                for (let i = 0; i < bState.layers.length; i++) {
                  expect(sameBits(await bState.layers[i].lambdaInv.read(), now[i].lambdaInv)).toBe(
                    true,
                  );
                  expect(sameBits(await bState.layers[i].gammaInv.read(), now[i].gammaInv)).toBe(
                    true,
                  );
                  if (t > 1)
                    expect(sameBits(await bState.layers[i].gamma.read(), now[i].gamma)).toBe(false);
                }
              }
            }
          },
        ),
        { numRuns: 12 },
      );
      console.log(`K7 worst ‖ΔV‖/bound: ${worst.toExponential(2)}`);
    },
  );
});

describe('B4: K-FAC KL clip', () => {
  test(
    'ν ≤ 1; no clip when η²Σ⟨V, G⟩ ≤ κ (bitwise the unclipped step); ' +
      'otherwise Δθ = ν·Δθ_unclipped with ν²η²Σ⟨V, G⟩ = κ',
    async () => {
      let worst = 0;
      const regimes = { clipped: 0, unclipped: 0 };
      await fc.assert(
        fc.asyncProperty(seedArb, async (seed) => {
          const problem = drawProblem(seed, 1);
          // η and the budget ratio κ/q from the seed's stream (fast-check's doubles cluster at the
          // range ends and at 0, which would put κ/q ≈ 1 in most runs): η ∈ [0.05, 1], κ/q
          // log-uniform in [1e-3, 1e3], so both regimes occur.
          const rng = prng(seed ^ 0x68e31da4);
          const lr = 0.05 + 0.95 * rng();
          const logRatio = Math.log(1e-3) + Math.log(1e6) * rng();
          const model = nn.mlp(problem.sizes, { activation: 'tanh' });
          const init = model.init(seed) as HostParams;
          const batch = problem.batches[0];
          // Momentum 0 and no decay: Δθ = −η·ν·V exactly as the code composes it. Inverses every
          // step.
          const step = async (klClip: number) => {
            const optimizer = kfac({
              lr,
              momentum: 0,
              weightDecay: 0,
              klClip,
              covEvery: 1,
              inverseEvery: 1,
            });
            const train = await compileTrainStep({
              model,
              loss: crossEntropy,
              optimizer,
              params: init as never,
              device: cpu,
              seed,
            });
            await train.run(batchOf(problem, batch));
            return readParams((await train.params()) as unknown as Params);
          };
          const theta0 = hostParams(init);
          const flat = (ms: Mat[]) => ms.flatMap((m) => [...m.data]);
          const th0 = flat(theta0);
          // The unclipped step (κ = 1e30 ⇒ ν = min(1, √(κ/q)) = 1 exactly): Δ_u = −η·V.
          const thU = flat(await step(1e30));
          const dU = thU.map((v, k) => v - th0[k]);
          // q = η²Σ_i⟨V_i, G_i⟩ = −η·Σ⟨Δ_u, G⟩ with the reference gradient.
          const G = flat(referenceGrads(theta0, batch.x, batch.y, problem.sizes, problem.B));
          const dot = (a: number[], b: number[]) => a.reduce((s, v, k) => s + v * b[k], 0);
          const norm = (a: number[]) => Math.sqrt(dot(a, a));
          const q = -lr * dot(dU, G);
          // the damped factors are SPD, so ⟨V, G⟩ = vec(G)ᵀ(Λ_d⊗Γ_d)⁻¹vec(G) > 0
          expect(q).toBeGreaterThan(0);
          // Measurement errors (relative): Δ_x = θ_x − θ_0 read back carries
          // ‖e_x‖ ≤ u‖θ_x‖ + 3u‖Δ_x‖ (θ_x = fl(θ_0 − fl(η·fl(ν·V))), then the host's subtraction).
          const eps = (theta: number[], d: number[]) =>
            (u * norm(theta) + 3 * u * norm(d)) / norm(d);
          const epsU = eps(thU, dU);
          // q's error: ‖e_u‖‖G‖η from the read-back, DELTA_G‖G‖‖Δ_u‖η from the reference gradient,
          // and grng's own P-term sum for q: P·u·η‖Δ_u‖‖G‖ (Cauchy–Schwarz); relative to q.
          const deltaQ = (lr * norm(G) * norm(dU) * (epsU + DELTA_G + G.length * u)) / q;

          const kappa = q * Math.exp(logRatio);
          const thC = flat(await step(kappa));
          const dC = thC.map((v, k) => v - th0[k]);
          const nu = dot(dC, dU) / dot(dU, dU);
          // ν̂'s relative error ≤ 2(ε_c + ε_u) (first order in the two read-back errors).
          const deltaNu = 2 * (eps(thC, dC) + epsU);
          expect(nu).toBeLessThanOrEqual(1 + deltaNu);
          if (kappa >= q * (1 + deltaQ)) {
            // No clip: ν = 1 exactly, the step is the unclipped one bit for bit.
            regimes.unclipped++;
            expect(thC.every((v, k) => Object.is(v, thU[k]))).toBe(true);
          } else if (kappa <= q * (1 - deltaQ)) {
            regimes.clipped++;
            expect(nu).toBeLessThan(1);
            // ν·η²Σ⟨νV, G⟩ = ν²q hits the budget κ: docs/algorithms.md's ≤ κ(1 + 1e-12), and from
            // below the same (the clip is not over-eager): |ν²q/κ − 1| ≤ 1e-12 + 2δ_ν + δ_q, the
            // last two the measurement errors derived above (≈1e-14 here, logged).
            const slack = 1e-12 + 2 * deltaNu + deltaQ;
            const ratio = (nu * nu * q) / kappa;
            worst = Math.max(worst, Math.abs(ratio - 1) / slack);
            expect(ratio).toBeLessThanOrEqual(1 + slack);
            expect(ratio).toBeGreaterThanOrEqual(1 - slack);
            // One ν for every coordinate of every layer: Δ_c = ν̂Δ_u to the read-back error.
            const resid = norm(dC.map((v, k) => v - nu * dU[k]));
            expect(resid).toBeLessThanOrEqual(deltaNu * norm(dC) + 2 * eps(thC, dC) * norm(dC));
          }
        }),
        { numRuns: 30 },
      );
      console.log(
        `B4 worst |ν²q/κ − 1| / slack: ${worst.toExponential(2)}; cases ` +
          `clipped ${regimes.clipped}, unclipped ${regimes.unclipped}`,
      );
      // Both regimes must have been exercised (κ/q is log-uniform in [1e-3, 1e3]).
      expect(regimes.clipped).toBeGreaterThan(3);
      expect(regimes.unclipped).toBeGreaterThan(3);
    },
  );
});
