// B6 (docs/algorithms.md §6.5, §8.5): Sophia's two diagonal-Hessian estimators, the functions the
// optimizer itself calls (exported from optimizers/sophia.ts), on the float64 interpreter,
// against dense float64 references written here.
// (a) Gauss–Newton–Bartlett, B = 1: the expectation over the sampled label, enumerated exactly
//     over the C classes, Σ_c p_c (∇ℓ(c))², equals diag(J_zᵀ(diag p − ppᵀ)J_z), J_z the Jacobian
//     of the logits of a linear-softmax layer with respect to its parameters.
// (b) Hutchinson: the mean of u ⊙ (∇²L u) over N = 20,000 Gaussian probes is within 5 standard
//     errors of diag(∇²L) for every coordinate, ∇²L by central differences of an analytic gradient
//     (mlpBackprop). The 20,000 probes run vectorised (K copies of θ in one jitted call): the
//     interpreter's cost is per op, ~1.5–7 ms per estimate unvectorised (≈ 2 min for N = 20,000),
//     and llvmpipe WebGPU was slower still. A second test runs the estimator inside a real
//     training step (ctx.hvp) and checks each estimate is u ⊙ (H u) for the u it drew.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  add,
  array,
  broadcastTo,
  compileTrainStep,
  constant,
  createDevice,
  crossEntropy,
  defineOptimizer,
  div,
  expandDims,
  foldIn,
  hvp,
  jit,
  logSoftmax,
  matmul,
  mT,
  mul,
  neg,
  nn,
  oneHot,
  prngKey,
  softmax,
  sum,
  tanh,
  treeMap,
  zeros,
  zerosLike,
  type DeviceArray,
  type ParamTree,
  type Tensor,
} from '../../index.js';
import {
  sophiaGaussNewtonBartlettEstimate,
  sophiaHutchinsonEstimate,
} from '../../optimizers/sophia.js';
import type { HostArray } from '../../core/host-array.js';
import { mat, mlpBackprop, rel } from '../curvature/reference.js';
import { prng, range, seedArb, uniform } from '../support/random.js';

const cpu = await createDevice({ kind: 'cpu' });

describe('B6 (a): Gauss–Newton–Bartlett by exact enumeration of the sampled label (B = 1)', () => {
  /**
   * Stores, per class c, Sophia-G's estimate B·∇L̂ ⊙ ∇L̂ with the sampled label forced to c: the
   * estimator samples ŷ ~ categorical(output), so it is handed logits that are 0 at c and −1e30
   * elsewhere (the Gumbel noise is at most −log(2^-26) ≈ 18, so the argmax is c for every key).
   * The estimator's loss, gradient and B factor are its own.
   */
  const gnbProbe = (C: number) =>
    defineOptimizer({
      name: 'b6-gnb-probe',
      hyper: { lr: 0 },
      init: (params) => ({
        p: zeros([1, C]) as Tensor,
        est: range(C).map(() => treeMap(zerosLike, params)),
      }),
      update: (ctx) => {
        const est = range(C).map((c) => {
          const forced = constant(
            range(C).map((k) => (k === c ? 0 : -1e30)),
            [1, C],
          );
          return sophiaGaussNewtonBartlettEstimate({
            params: ctx.params,
            key: ctx.key,
            labels: ctx.labels,
            loss: ctx.loss,
            map: ctx.map,
            output: () => forced,
          });
        });
        return { params: ctx.params, state: { p: softmax(ctx.output(ctx.params)), est } };
      },
    });

  test(
    'Σ_c p_c (∇ℓ(c))² = diag(J_zᵀ (diag p − ppᵀ) J_z), and each term is ' + '(J_zᵀ(p − e_c))²',
    async () => {
      let worst = 0;
      await fc.assert(
        fc.asyncProperty(
          seedArb,
          fc.integer({ min: 1, max: 6 }),
          fc.integer({ min: 2, max: 6 }),
          fc.double({ min: 0.1, max: 2, noNaN: true }),
          async (seed, dIn, C, wScale) => {
            const rng = prng(seed);
            const x = uniform(rng, dIn);
            const w = uniform(rng, C * dIn, -wScale, wScale);
            const b = uniform(rng, C, -wScale, wScale);
            const model = nn.dense(dIn, C);
            const train = await compileTrainStep({
              model,
              loss: crossEntropy,
              optimizer: gnbProbe(C)(),
              params: { w: array(w, [C, dIn]), b: array(b, [C]) },
              device: cpu,
              seed,
            });
            await train.run({ x: array(x, [1, dIn]), y: array(new Int32Array(1), [1], 'i32') });
            const state = (await train.state()) as {
              p: DeviceArray;
              est: { w: DeviceArray; b: DeviceArray }[];
            };
            const pGrng = await state.p.read();
            // Parameters in the tree's leaf order: W row-major (C × dIn), then b.
            const est = await Promise.all(
              state.est.map(async (e) => [...(await e.w.read()), ...(await e.b.read())]),
            );

            // Reference: z = W x + b, p = softmax(z); J_z (C × P) has ∂z_k/∂W_oi = δ_ko x_i and
            // ∂z_k/∂b_o = δ_ko. M = diag p − ppᵀ with the diagonal p_k·Σ_{c≠k} p_c (no
            // cancellation).
            const P = C * dIn + C;
            const z = range(C).map((o) => x.reduce((acc, v, i) => acc + w[o * dIn + i] * v, b[o]));
            const top = Math.max(...z);
            const e = z.map((v) => Math.exp(v - top));
            const sum = e.reduce((u, v) => u + v, 0);
            const p = e.map((v) => v / sum);
            const J = mat(C, P);
            for (let o = 0; o < C; o++) {
              for (let i = 0; i < dIn; i++) J.data[o * P + o * dIn + i] = x[i];
              J.data[o * P + C * dIn + o] = 1;
            }
            const M = (k: number, l: number) =>
              k === l ? p[k] * p.reduce((acc, v, c) => (c === k ? acc : acc + v), 0) : -p[k] * p[l];
            const want = range(P).map((j) => {
              let s = 0;
              for (let k = 0; k < C; k++)
                for (let l = 0; l < C; l++) s += J.data[k * P + j] * M(k, l) * J.data[l * P + j];
              return s;
            });
            const expectation = range(P).map((j) =>
              est.reduce((acc, ec, c) => acc + pGrng[c] * ec[j], 0),
            );
            // Tolerance (docs/algorithms.md: 1e-12; measured ≈1e-16). grng's ∇ℓ(c) = J_zᵀ(p − e_c)
            // carries the softmax's ≤ 2(dIn + 1 + C)·Σ|W||x|·ε ≲ 5e-14 relative error in p (|W|,
            // |b| ≤ 2, |x| ≤ 1, dIn, C ≤ 6) and an absolute ε|p| in p − e_c; squared and weighted
            // by p_c (degree 3 in p) that is ≤ 1.5e-13 relative per coordinate, the reference's own
            // softmax as much again, and the C-term sums Cε: ≤ 4e-13 < 1e-12 in the worst case (p_c
            // ≈ 1 costs nothing extra: the c-th term (1 − p_c)² p_c is then one of two comparable
            // parts of p_c(1 − p_c)).
            const err = rel(expectation, want);
            worst = Math.max(worst, err);
            expect(err).toBeLessThanOrEqual(1e-12);
            // Each forced-label estimate is (J_zᵀ(p − e_c))² (B = 1): the label really was c. Same
            // bound.
            for (let c = 0; c < C; c++) {
              const g = range(P).map((j) =>
                range(C).reduce(
                  (acc, k) => acc + J.data[k * P + j] * (p[k] - (k === c ? 1 : 0)),
                  0,
                ),
              );
              expect(
                rel(
                  est[c],
                  g.map((v) => v * v),
                ),
              ).toBeLessThanOrEqual(1e-12);
            }
          },
        ),
        { numRuns: 30 },
      );
      console.log(`B6 GNB worst rel: ${worst.toExponential(2)}`);
    },
  );
});

describe('B6 (b): Hutchinson u ⊙ (∇²L u), u ~ N(0, I), is unbiased for diag(∇²L)', () => {
  // A tanh MLP 3 → 4 → 3 (31 parameters), B = 4, fixed data: a Hessian with off-diagonal mass.
  const sizes = [3, 4, 3] as const;
  const B = 4;
  const C = sizes[2];
  const x = uniform(prng(20261128), B * sizes[0], -1.5, 1.5);
  const labels = Int32Array.from([0, 2, 1, 2]);
  const model = nn.mlp([...sizes], { activation: 'tanh' });
  const init = model.init(7) as { layers: { w: HostArray; b: HostArray }[] };
  /** Parameters in the order w1 (row-major), b1, w2, b2. */
  const theta = init.layers.flatMap((l) => [...l.w.data, ...l.b.data]);
  const P = theta.length;

  /**
   * Reference Hessian: central differences (h = 1e-5) of mlpBackprop's analytic gradient,
   * symmetrised.
   */
  const hessian = (() => {
    const gradAt = (t: number[]): number[] => {
      let k = 0;
      const layers = sizes.slice(1).map((out, i) => {
        const w = mat(out, sizes[i], t.slice(k, k + out * sizes[i]));
        k += out * sizes[i];
        const b = Float64Array.from(t.slice(k, k + out));
        k += out;
        return { w, b };
      });
      const r = mlpBackprop(layers, mat(B, sizes[0], x), labels);
      return r.gradW.flatMap((gw, i) => [...gw.data, ...(r.gradB[i] as Float64Array)]);
    };
    const h = 1e-5;
    const H = range(P).map((j) => {
      const plus = gradAt(theta.map((v, k) => (k === j ? v + h : v)));
      const minus = gradAt(theta.map((v, k) => (k === j ? v - h : v)));
      return plus.map((v, i) => (v - minus[i]) / (2 * h));
    });
    return range(P).map((i) => range(P).map((j) => (H[i][j] + H[j][i]) / 2));
  })();
  // Central differences: truncation h²/6·|∂³g| and rounding ε|g|/h, both ≲ 1e-10 for these O(1)
  // tanh-MLP derivatives (the two halves of H agree to ≈2e-11 before symmetrising); the float64
  // interpreter's hvp is exact to ~1e-15. FD = 1e-8 covers both.
  const FD = 1e-8;
  const flat = (t: { w1: Float64Array; b1: Float64Array; w2: Float64Array; b2: Float64Array }) => [
    ...t.w1,
    ...t.b1,
    ...t.w2,
    ...t.b2,
  ];

  test(
    'inside a training step (ctx.hvp): each estimate is u ⊙ (H u) for the ' + 'u it drew',
    async () => {
      // Records the probe the estimator hands to ctx.hvp, so u is the estimator's own draw.
      const probe = defineOptimizer({
        name: 'b6-hutchinson-step-probe',
        hyper: { lr: 0 },
        init: (params) => ({
          u: range(4).map(() => treeMap(zerosLike, params)),
          h: range(4).map(() => treeMap(zerosLike, params)),
        }),
        update: (ctx) => {
          const us: ParamTree[] = [];
          const hs = range(4).map((j) =>
            sophiaHutchinsonEstimate({
              params: ctx.params,
              key: foldIn(ctx.key, j),
              map: ctx.map,
              hvp: (v) => {
                us.push(v);
                return ctx.hvp(v);
              },
            }),
          );
          return { params: ctx.params, state: { u: us, h: hs } };
        },
      });
      const train = await compileTrainStep({
        model,
        loss: crossEntropy,
        optimizer: probe(),
        params: init as never,
        device: cpu,
        seed: 3,
      });
      await train.run({ x: array(x, [B, sizes[0]]), y: array(labels, [B], 'i32') });
      const state = (await train.state()) as { u: Layers[]; h: Layers[] };
      for (let j = 0; j < 4; j++) {
        const u = await readLayers(state.u[j]);
        const got = await readLayers(state.h[j]);
        const want = u.map((ui, i) => ui * hessian[i].reduce((acc, hij, k) => acc + hij * u[k], 0));
        // |H u − H_ref u| ≤ FD·‖u‖₁ per coordinate, times |u_i|; rounding of the float64 hvp is
        // ~1e-15.
        const l1 = u.reduce((acc, v) => acc + Math.abs(v), 0);
        got.forEach((v, i) =>
          expect(Math.abs(v - want[i])).toBeLessThanOrEqual(
            FD * l1 * Math.abs(u[i]) + 1e-13 * Math.abs(want[i]),
          ),
        );
      }
    },
  );

  test(
    'the mean of N = 20,000 estimates is within 5 standard errors of ' +
      'diag(H) for every coordinate',
    async () => {
      const started = performance.now();
      const N = 20_000;
      const K = 1000; // estimates per call: Θ holds K copies of θ (a leading axis on every leaf)
      // The real estimator, vectorised over the probes: ctx.params is Θ = K copies of θ, the loss
      // is Σ_k L(Θ_k), whose Hessian is block diagonal with H(θ) in every block, so grng's hvp
      // gives row k = H u_k, and normal(foldIn(key, leaf + 2), [K, …]) draws the K probes of a leaf
      // in one Threefry pass (independent elements of one stream). One call per key foldIn(key₀,
      // i).
      const estimate = jit(
        (call: Tensor, xs: Tensor, ys: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) => {
          const key = foldIn(prngKey(0x6b6579), call);
          const copies = (t: Tensor) => broadcastTo(expandDims(t, 0), [K, ...t.shape]);
          const params = { w1: copies(w1), b1: copies(b1), w2: copies(w2), b2: copies(b2) };
          const loss = (p: ParamTree) => {
            const q = p as typeof params;
            const h1 = tanh(add(matmul(xs, mT(q.w1)), expandDims(q.b1, 1))); // [K, B, 4]
            const z = add(matmul(h1, mT(q.w2)), expandDims(q.b2, 1)); // [K, B, C]
            return neg(div(sum(mul(oneHot(ys, C), logSoftmax(z))), B)); // Σ_k mean_n ℓ_n(Θ_k)
          };
          const h = sophiaHutchinsonEstimate({
            params,
            key,
            hvp: (v) => hvp(loss)(params, v),
            map: treeMap,
          }) as typeof params;
          const over = (f: (t: Tensor) => Tensor) => ({
            w1: sum(f(h.w1), 0),
            b1: sum(f(h.b1), 0),
            w2: sum(f(h.w2), 0),
            b2: sum(f(h.b2), 0),
          });
          return { s1: over((t) => t), s2: over((t) => mul(t, t)) };
        },
        { device: cpu },
      );
      const [l0, l1] = init.layers;
      const s1 = new Float64Array(P);
      const s2 = new Float64Array(P);
      for (let i = 0; i < N / K; i++) {
        const out = (await estimate(
          array(Int32Array.from([i]), [], 'i32'),
          array(x, [B, sizes[0]]),
          array(labels, [B], 'i32'),
          l0.w,
          l0.b,
          l1.w,
          l1.b,
        )) as unknown as Record<'s1' | 's2', Record<'w1' | 'b1' | 'w2' | 'b2', DeviceArray>>;
        const read1 = flat({
          w1: await out.s1.w1.read(),
          b1: await out.s1.b1.read(),
          w2: await out.s1.w2.read(),
          b2: await out.s1.b2.read(),
        });
        const read2 = flat({
          w1: await out.s2.w1.read(),
          b1: await out.s2.b1.read(),
          w2: await out.s2.w2.read(),
          b2: await out.s2.b2.read(),
        });
        read1.forEach((v, k) => (s1[k] += v));
        read2.forEach((v, k) => (s2[k] += v));
      }

      let worstZ = 0;
      let worstVar = 0;
      let minSe = Infinity;
      for (let i = 0; i < P; i++) {
        const Hii = hessian[i][i];
        const mean = s1[i] / N;
        // ĥ_i = u_i (Hu)_i = H_ii u_i² + u_i Σ_{j≠i} H_ij u_j: E = H_ii, Var = 2H_ii² + Σ_{j≠i}
        // H_ij² (exact for u ~ N(0, I)); the standard error of the mean is √(Var/N).
        const variance =
          2 * Hii ** 2 + range(P).reduce((acc, j) => (j === i ? acc : acc + hessian[i][j] ** 2), 0);
        const se = Math.sqrt(variance / N);
        minSe = Math.min(minSe, se);
        worstZ = Math.max(worstZ, Math.abs(mean - Hii) / se);
        // 5 SE: a two-sided normal tail of 5.7e-7 per coordinate, ≤ 2e-5 over 31 (the seed is
        // fixed, so the run replays exactly). FD (1e-8) is ≥ 1e3 times below every se here
        // (logged).
        expect(Math.abs(mean - Hii)).toBeLessThanOrEqual(5 * se + FD);
        // The probes are standard normal, not Rademacher (which would drop the 2H_ii² term): the
        // sample variance matches Var. Its relative standard error is √((κ − 1)/N) for the kurtosis
        // κ of ĥ_i, at most 15 (the pure H_ii u_i² case: E(u²−1)⁴/Var(u²)² = 60/4); 5 of those:
        // 0.13.
        const sampleVar = (s2[i] - (s1[i] * s1[i]) / N) / (N - 1);
        worstVar = Math.max(worstVar, Math.abs(sampleVar / variance - 1));
        expect(Math.abs(sampleVar / variance - 1)).toBeLessThanOrEqual(5 * Math.sqrt(14 / N));
      }
      console.log(
        `B6 Hutchinson: worst |mean − H_ii|/se ${worstZ.toFixed(2)}, worst ` +
          `|s²/Var − 1| ${worstVar.toFixed(3)}, min se ` +
          `${minSe.toExponential(2)}, ` +
          `${((performance.now() - started) / 1000).toFixed(1)} s`,
      );
    },
  );
});

type Layers = { layers: { w: DeviceArray; b: DeviceArray }[] };
/** A tree { layers: [{ w, b }, …] } read back in the order w1, b1, w2, b2. */
async function readLayers(t: Layers): Promise<number[]> {
  const out: number[] = [];
  for (const l of t.layers) out.push(...(await l.w.read()), ...(await l.b.read()));
  return out;
}
