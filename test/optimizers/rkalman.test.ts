// R-Kalman (docs/algorithms.md §5) against its properties KF1–KF10 (§8.4): fast-check on small
// random problems, the optimizer compiled through compileTrainStep on the float64 interpreter, each
// result compared with the independent float64 reference of rkalman-reference.ts. Then: the
// compiled WebGPU step equals the float32 interpreter's. That the properties can fail is checked by
// mutation testing (npm run mutation, stryker.config.mjs).
//
// Tolerances (each written beside its assertion): docs/algorithms.md's rel ≤ 1e-10 (1e-9 over many
// steps, 1e-12 for the diagonal variant) holds when the condition numbers involved are small. The
// generators keep them so: P₀ and the random states have κ ≤ ~10², the data are O(1), the adapter-A
// probabilities stay away from 0 (logits O(1)), so κ(S) and κ(P⁻¹) stay below ~10⁴ and the float64
// rounding of a Cholesky solve (≈ κ·n·ε ≈ 10⁴·10·1.1e-16 ≈ 1e-11 worst, ~1e-15 typical) sits well
// inside. Adapter A adds JITTER = 1e-12 to R's diagonal (docs/algorithms.md §5.2, a guard): that
// moves HᵀR⁻¹(·) by at most JITTER/λ_min(R) relative, which the adapter-A tolerances allow for
// explicitly.
import fc from 'fast-check';
import { afterAll, describe, expect, test, vi } from 'vitest';
import * as dsl from '../../dsl/index.js';
import {
  add,
  array,
  compileTrainStep,
  concat,
  constant,
  createDevice,
  crossEntropy,
  GrngError,
  input,
  matmul,
  mT,
  mul,
  nn,
  relu,
  reshape,
  rkalman,
  square,
  sub,
  sum,
  vjp,
  type Device,
  type DeviceArray,
  type HostArray,
  type Model,
  type Tensor,
} from '../../index.js';
import { topoSort, type Node } from '../../core/ir/index.js';
import { flattenTree, type Tree } from '../../core/tree.js';
import { observe } from '../../optimizers/rkalman.js';
import { rowByRow } from '../../optimizers/sample-jacobian.js';
import { CpuDevice } from '../../runtime/cpu-device.js';
import type { ExecuteOptions } from '../../runtime/device.js';
import { interpret } from '../../runtime/interpreter.js';
import { isArrayLeaf } from '../../runtime/jit.js';
import { gpuDevice } from '../support/gpu.js';
import { int, prng, range, seedArb, shuffle, uniform } from '../support/random.js';
import * as ref from './rkalman-reference.js';

const cpu: Device = await createDevice({ kind: 'cpu' });
const EPS = 2 ** -52;

// ---- measured errors: the worst of each check, printed at the end ------------------------------

const measured = new Map<string, { worst: number; tolerance: number; ratio: number }>();
/** The smallest λ_min(P)/λ_max(P) KF9 saw (it must stay > 1e-12). */
const smallest = { kf9: Infinity };

/** Asserts value ≤ tolerance and records the worst value (and worst value/tolerance) per check. */
function within(check: string, value: number, tolerance: number): void {
  const entry = measured.get(check) ?? { worst: 0, tolerance, ratio: 0 };
  entry.worst = Math.max(entry.worst, value);
  entry.tolerance = Math.max(entry.tolerance, tolerance);
  entry.ratio = Math.max(entry.ratio, value / tolerance);
  measured.set(check, entry);
  expect(value, check).toBeLessThanOrEqual(tolerance);
}

afterAll(() => {
  const lines = [...measured]
    .sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))
    .map(
      ([k, v]) =>
        `${k.padEnd(64)} worst ${v.worst.toExponential(2)}  tolerance ` +
        `${v.tolerance.toExponential(1)}  (worst/tol ` +
        `${v.ratio.toExponential(1)})`,
    );
  lines.push(
    `${'KF9 λ_min(P)/λ_max(P) > 1e-12'.padEnd(64)} smallest ${smallest.kf9.toExponential(2)}`,
  );
  console.log(`R-Kalman properties, measured worst errors:\n${lines.join('\n')}`);
});

// ---- models, losses, sessions -------------------------------------------------------------------

type Params = Record<string, Tensor>;
const asModel = (m: { init(seed: number): Tree<HostArray>; apply(p: Params, x: Tensor): Tensor }) =>
  m as unknown as Model<never>;

/**
 * z = x Wᵀ + b: parameters {b [C], w [C, d]}, flattened by sorted key as θ = [b, W] (the
 * reference's layout).
 */
function softmaxModel(classes: number, features: number, theta: Float64Array) {
  return asModel({
    init: () => ({
      b: array(theta.slice(0, classes), [classes]),
      w: array(theta.slice(classes), [classes, features]),
    }),
    apply: (p, x) => add(matmul(x, mT(p.w)), p.b),
  });
}

/**
 * z = x Wᵀ, W [outputs, d]; 'vector' gives [B] outputs (one output), 'column' or 'matrix' [B,
 * outputs].
 */
function regressionModel(
  features: number,
  outputs: number,
  theta: Float64Array,
  shape: 'vector' | 'column' | 'matrix',
) {
  return asModel({
    init: () => ({ w: array(theta, [outputs, features]) }),
    apply: (p, x) => {
      const z = matmul(x, mT(p.w));
      return shape === 'vector' ? reshape(z, [x.shape[0]]) : z;
    },
  });
}

/** z_n = x_n·w, and a parameter `a` [k] the output does not depend on (H = 0 over it). */
function unusedParameterModel(features: number, k: number, a: Float64Array, w: Float64Array) {
  return asModel({
    init: () => ({ a: array(a, [k]), w: array(w, [features]) }),
    apply: (p, x) => reshape(matmul(x, reshape(p.w, [features, 1])), [x.shape[0]]),
  });
}

/**
 * z_{n,j} = x_{n,j}·w_j: each parameter moves its own outputs only (H's columns have disjoint row
 * support).
 */
function elementwiseModel(k: number, w: Float64Array) {
  return asModel({ init: () => ({ w: array(w, [k]) }), apply: (p, x) => mul(x, p.w) });
}

/** ½·Σ(z − y)²/B: the loss whose gradient ḡ enters ‖ḡ‖² for the regression models. */
const mse = (z: Tensor, y: Tensor) =>
  mul(sum(square(sub(z, reshape(y, z.shape)))), 0.5 / z.shape[0]);

/** The mean gradient of `mse` for z = x·w (one output): ḡ = (1/m)Σ(x_n·w − y_n)x_n. */
function mseGradient(w: Float64Array, x: Float64Array, y: Float64Array, m: number): Float64Array {
  const d = w.length;
  const g = new Float64Array(d);
  for (let n = 0; n < m; n++) {
    let z = 0;
    for (let j = 0; j < d; j++) z += x[n * d + j] * w[j];
    for (let j = 0; j < d; j++) g[j] += ((z - y[n]) * x[n * d + j]) / m;
  }
  return g;
}

type Settings = Parameters<typeof rkalman>[0];
type Case<A> = A extends fc.Arbitrary<infer T> ? T : never;

const readFlat = async (tree: unknown): Promise<Float64Array> => {
  const leaves = await Promise.all(
    flattenTree('test', tree, isArrayLeaf, 'an array').leaves.map((a) => (a as DeviceArray).read()),
  );
  return Float64Array.from(leaves.flatMap((l) => Array.from(l)));
};

/**
 * A compiled R-Kalman training step (fallback 'none' unless given) on `model`, optionally from a
 * given covariance (the rest of the state zero); params and covariance read back flat.
 */
async function session(
  model: Model<never>,
  loss: (z: Tensor, y: Tensor) => Tensor,
  settings: Settings,
  covariance?: { values: Float64Array; shape: number[] },
  device: Device = cpu,
) {
  const params = model.init(0);
  const state =
    covariance === undefined
      ? undefined
      : {
          covariance: array(covariance.values, covariance.shape),
          velocity: flattenTree('test', params, isArrayLeaf, 'an array').rebuild(
            flattenTree('test', params, isArrayLeaf, 'an array').leaves.map((l) =>
              array(new Float64Array((l as HostArray).data.length), (l as HostArray).shape),
            ),
          ),
          clamped: array(0),
        };
  const train = await compileTrainStep({
    model,
    loss,
    optimizer: rkalman({ fallback: 'none', jitter: ref.JITTER, ...settings }),
    params,
    device,
    state,
    step: 0,
    metrics: ['loss', 'clamped'],
  });
  return {
    run: (x: Float64Array, y: Float64Array | Int32Array, xShape: number[], yShape: number[]) =>
      train.run({
        x: array(x, xShape),
        y: y instanceof Int32Array ? array(y, yShape, 'i32') : array(y, yShape),
      }),
    params: async () => readFlat(await train.params()),
    covariance: async () =>
      ((await train.state()) as { covariance: DeviceArray }).covariance.read(),
  };
}

/** A random SPD matrix s·(AAᵀ/n + I/2) (κ ≤ 1 + 2n/3·… ≈ a few), row-major. */
function randomSpd(rng: () => number, n: number, s: number): Float64Array {
  const a = uniform(rng, n * n);
  return ref.scale(
    ref.add(ref.scale(ref.matmul(a, ref.transpose(a, n, n), n, n, n), 1 / n), ref.eye(n, 0.5)),
    s,
  );
}

const labels = (rng: () => number, m: number, classes: number) =>
  Int32Array.from({ length: m }, () => int(rng, 0, classes - 1));
const logUniform = (lo: number, hi: number) =>
  fc.double({ min: Math.log10(lo), max: Math.log10(hi), noNaN: true }).map((v) => 10 ** v);
const beta = fc.double({ min: 0.5, max: 0.99, noNaN: true });
const grMode = fc.constantFrom('noise' as const, 'precision' as const);
const lambdaMin = (p: Float64Array, n: number) => ref.symmetricEigenvalues(p, n)[0];
const lambdaMax = (p: Float64Array, n: number) => ref.symmetricEigenvalues(p, n)[n - 1];

/**
 * Adapter A's (or B's) observation at θ with R as the filter uses it: ·(1 + ρ‖ḡ‖²) in 'noise' mode;
 * and the pseudo-observation's precision r = mρ‖ḡ‖² in 'precision' mode.
 */
function softmaxStep(
  model: ref.SoftmaxLinear,
  theta: Float64Array,
  x: Float64Array,
  y: Int32Array,
  m: number,
  rho: number,
  mode: 'noise' | 'precision',
  adapter: 'softmax' | 'scalar' = 'softmax',
  obsNoise = 1,
) {
  const obs =
    adapter === 'softmax'
      ? model.softmaxObservation(theta, x, y, m)
      : model.scalarObservation(theta, x, y, m, obsNoise);
  const g2 = ref.norm(model.gradients(theta, x, y, m).mean) ** 2;
  return mode === 'noise'
    ? { obs: { ...obs, r: ref.scale(obs.r, 1 + rho * g2) }, rGr: 0 }
    : { obs, rGr: m * rho * g2 };
}

// ---- the properties, each a function of one random case that throws when it fails ---------------

const kf1Arb = fc.record({
  seed: seedArb,
  d: fc.integer({ min: 1, max: 4 }),
  count: fc.integer({ min: 1, max: 8 }),
  sigma0: logUniform(0.1, 10),
  std: fc.boolean(),
  obsNoise: logUniform(0.1, 10),
  shape: fc.constantFrom('vector' as const, 'column' as const),
});
async function kf1(c: Case<typeof kf1Arb>): Promise<void> {
  const rng = prng(c.seed);
  const mu0 = uniform(rng, c.d);
  const x = uniform(rng, c.count * c.d);
  const y = uniform(rng, c.count, -2, 2);
  const train = await session(regressionModel(c.d, 1, mu0, c.shape), mse, {
    adapter: 'gaussian',
    beta: 1,
    rho: 0,
    covariance: 'full',
    params: 'all',
    sigma0: c.sigma0,
    sigma0IsStd: c.std,
    obsNoise: c.obsNoise,
  });
  // The samples in a random order, cut into random minibatches of 1–3.
  const order = shuffle(rng, range(c.count));
  for (let start = 0; start < c.count;) {
    const size = int(rng, 1, Math.min(3, c.count - start));
    const rows = order.slice(start, start + size);
    start += size;
    await train.run(
      Float64Array.from(rows.flatMap((r) => Array.from(x.slice(r * c.d, (r + 1) * c.d)))),
      Float64Array.from(rows.map((r) => y[r])),
      [size, c.d],
      c.shape === 'vector' ? [size] : [size, 1],
    );
  }
  const expected = ref.bayesianLinearRegression(
    mu0,
    ref.eye(c.d, c.std ? c.sigma0 ** 2 : c.sigma0),
    x,
    y,
    c.count,
    c.d,
    c.obsNoise,
  );
  // docs/algorithms.md's bound applies for κ ≤ 1e6; these ranges give κ(P⁻¹) ≤ 1 + σ₀²·N·d/σ_R² ≤
  // ~3e4.
  expect(lambdaMax(expected.p, c.d) / lambdaMin(expected.p, c.d)).toBeLessThanOrEqual(1e6);
  // §8.4 KF1: rel 1e-9 (N ≤ 8 sequential Cholesky updates of κ ≤ 3e4: ≲ 8·3e4·ε ≈ 5e-11 worst
  // case).
  within(
    'KF1 μ = P(P₀⁻¹μ₀ + XᵀY/σ²) (any order, any partition)',
    ref.rel(await train.params(), expected.mu),
    1e-9,
  );
  within('KF1 P = (P₀⁻¹ + XᵀX/σ²)⁻¹', ref.rel(await train.covariance(), expected.p), 1e-9);
}

const kf2Arb = fc.record({
  seed: seedArb,
  classes: fc.integer({ min: 2, max: 4 }),
  d: fc.integer({ min: 1, max: 3 }),
  m: fc.integer({ min: 1, max: 3 }),
  beta,
  rho: logUniform(1e-4, 10),
  grMode,
  scale: logUniform(1e-2, 1),
  adapter: fc.constantFrom('softmax' as const, 'scalar' as const),
});
async function kf2(c: Case<typeof kf2Arb>): Promise<void> {
  const rng = prng(c.seed);
  const model = new ref.SoftmaxLinear(c.classes, c.d);
  const n = model.size;
  const theta = uniform(rng, n);
  const p = randomSpd(rng, n, c.scale);
  const x = uniform(rng, c.m * c.d);
  const y = labels(rng, c.m, c.classes);
  const obsNoise = 0.5;
  const train = await session(
    softmaxModel(c.classes, c.d, theta),
    crossEntropy,
    {
      adapter: c.adapter,
      beta: c.beta,
      rho: c.rho,
      grMode: c.grMode,
      covariance: 'full',
      params: 'all',
      obsNoise,
    },
    { values: p, shape: [n, n] },
  );
  await train.run(x, y, [c.m, c.d], [c.m]);
  const [mu, pk] = [await train.params(), await train.covariance()];
  const { obs, rGr } = softmaxStep(model, theta, x, y, c.m, c.rho, c.grMode, c.adapter, obsNoise);
  const expected = ref.kalmanFull(theta, p, n, obs, c.beta, rGr);
  const step = ref.sub(mu, theta);
  // §8.4 KF2: rel 1e-10. κ(P) ≤ ~10, κ(S) ≤ ~10⁴ (R's smallest eigenvalue ≳ 1e-3 at these logits):
  // each form is within κ·n·ε ≲ 1e-11 of the exact posterior.
  within(
    'KF2 reference: information form = covariance form',
    ref.rel(expected.information, expected.covariance),
    1e-10,
  );
  within(
    'KF2 reference: Joseph form = covariance form',
    ref.rel(expected.joseph, expected.covariance),
    1e-10,
  );
  within('KF2 P_k = P′ − KHP′ (covariance form)', ref.rel(pk, expected.covariance), 1e-10);
  within(
    'KF2 P_k = (βP⁻¹ + rI + HᵀR⁻¹H)⁻¹ (information form)',
    ref.rel(pk, expected.information),
    1e-10,
  );
  within('KF2 P_k = (I−KH)P′(I−KH)ᵀ + KRKᵀ (Joseph form)', ref.rel(pk, expected.joseph), 1e-10);
  within('KF2 Δμ = K e', ref.rel(step, ref.sub(expected.mu, theta)), 1e-10);
  within(
    'KF2 Δμ = P_k HᵀR⁻¹e (information form)',
    ref.rel(step, ref.sub(expected.muInformation, theta)),
    1e-10,
  );
}

const kf3Arb = fc.record({
  seed: seedArb,
  outputs: fc.integer({ min: 1, max: 3 }),
  d: fc.integer({ min: 1, max: 3 }),
  m: fc.integer({ min: 2, max: 4 }),
  obsNoise: logUniform(0.1, 10),
  scale: logUniform(1e-1, 10),
});
async function kf3(c: Case<typeof kf3Arb>): Promise<void> {
  const rng = prng(c.seed);
  const n = c.outputs * c.d;
  const theta = uniform(rng, n);
  const p = randomSpd(rng, n, c.scale);
  const x = uniform(rng, c.m * c.d);
  const y = uniform(rng, c.m * c.outputs, -2, 2);
  const settings: Settings = {
    adapter: 'gaussian',
    beta: 1,
    rho: 0,
    covariance: 'full',
    params: 'all',
    obsNoise: c.obsNoise,
  };
  const model = regressionModel(c.d, c.outputs, theta, 'matrix');
  const batched = await session(model, mse, settings, { values: p, shape: [n, n] });
  await batched.run(x, y, [c.m, c.d], [c.m, c.outputs]);
  const sequential = await session(model, mse, settings, { values: p, shape: [n, n] });
  for (let s = 0; s < c.m; s++)
    await sequential.run(
      x.slice(s * c.d, (s + 1) * c.d),
      y.slice(s * c.outputs, (s + 1) * c.outputs),
      [1, c.d],
      [1, c.outputs],
    );
  const expected = ref.kalmanFull(
    theta,
    p,
    n,
    ref.linearObservation(theta, x, y, c.m, c.d, c.outputs, c.obsNoise),
    1,
    0,
  );
  // §8.4 KF3: rel 1e-10; κ(P) ≤ ~10, κ(S) ≤ 1 + ‖P‖·m·d/σ² ≲ 10³: rounding ≲ 10³·10·ε ≈ 2e-12.
  const [mb, pb, ms, ps] = [
    await batched.params(),
    await batched.covariance(),
    await sequential.params(),
    await sequential.covariance(),
  ];
  within('KF3 μ: one stacked update = m single-sample updates', ref.rel(mb, ms), 1e-10);
  within('KF3 P: one stacked update = m single-sample updates', ref.rel(pb, ps), 1e-10);
  within(
    'KF3 μ, P: stacked update = reference',
    Math.max(ref.rel(mb, expected.mu), ref.rel(pb, expected.covariance)),
    1e-10,
  );
}

const kf4Arb = fc.record({
  seed: seedArb,
  classes: fc.integer({ min: 2, max: 5 }),
  d: fc.integer({ min: 1, max: 4 }),
  m: fc.integer({ min: 1, max: 4 }),
  spread: logUniform(0.1, 1),
});
function kf4(c: Case<typeof kf4Arb>): void {
  const rng = prng(c.seed);
  const C = c.classes;
  const model = new ref.SoftmaxLinear(C, c.d);
  const n = model.size;
  const theta = uniform(rng, n, -c.spread, c.spread);
  const x = uniform(rng, c.m * c.d);
  const y = labels(rng, c.m, C);
  // rkalman's own adapter: observe() on the logits of z = x Wᵀ + b, rows through a VJP over (b, W).
  const [b, w, yIn] = [input('b', [C]), input('w', [C, c.d]), input('y', [c.m], 'i32')];
  const xc = constant(x, [c.m, c.d]);
  const [z, pullback] = vjp((bb: Tensor, ww: Tensor) => add(matmul(xc, mT(ww)), bb), b, w);
  const row = (ct: Tensor) => {
    const [gb, gw] = pullback(ct) as [Tensor, Tensor];
    return concat([gb, reshape(gw, [C * c.d])], 0);
  };
  const obs = observe('softmax', z, yIn, constant(1), rowByRow(row, c.m));
  const [h, e, r] = interpret(
    [obs.h.node, obs.e.node, obs.r.node],
    new Map([
      ['b', theta.slice(0, C)],
      ['w', theta.slice(C)],
      ['y', Float64Array.from(y)],
    ]),
  );
  const d = c.m * (C - 1);
  const expected = model.softmaxObservation(theta, x, y, c.m);
  // H_n = M_n[:C−1,:]J_n, e = y′ − p′, R = blockdiag(diag p′ − p′p′ᵀ) + 1e-12·I: a few products
  // each, rel ≲ 10ε.
  within(
    'KF4 observe(): H, e, R = docs/algorithms.md’s adapter A',
    Math.max(ref.rel(h, expected.h), ref.rel(e, expected.e), ref.rel(r, expected.r)),
    1e-13,
  );
  const ht = ref.transpose(h, d, n);
  const gradients = model.gradients(theta, x, y, c.m);
  const sumGrad = ref.scale(gradients.mean, -c.m);
  // The identities hold exactly for R without the jitter; the jitter perturbs R⁻¹ by ≤
  // JITTER/λ_min(R) relative (first order). Rounding: κ(R)·d·ε ≲ 1e-12. So: 1e-10 +
  // 2·JITTER/λ_min(R).
  const tolerance = 1e-10 + (2 * ref.JITTER) / lambdaMin(r, d);
  within(
    'KF4 HᵀR⁻¹(y′ − p′) = −Σ∇ℓ_n (tol 1e-10 + 2·jitter/λ_min R)',
    ref.rel(ref.matmul(ht, ref.solve(r, e, d, 1), n, d, 1), sumGrad),
    tolerance,
  );
  within(
    'KF4 HᵀR⁻¹H = Σ J_zᵀ(diag p − ppᵀ)J_z (tol 1e-10 + 2·jitter/λ_min R)',
    ref.rel(ref.matmul(ht, ref.solve(r, h, d, n), n, d, n), model.fisher(theta, x, c.m)),
    tolerance,
  );
}

const kf5Arb = fc.record({
  seed: seedArb,
  classes: fc.integer({ min: 2, max: 4 }),
  d: fc.integer({ min: 1, max: 3 }),
  m: fc.integer({ min: 1, max: 4 }),
  steps: fc.integer({ min: 1, max: 20 }),
  beta: fc.double({ min: 0.6, max: 0.99, noNaN: true }),
  rho: logUniform(1e-4, 10),
  sigma0: logUniform(0.05, 2),
  std: fc.boolean(),
});
async function kf5(c: Case<typeof kf5Arb>): Promise<void> {
  const rng = prng(c.seed);
  const model = new ref.SoftmaxLinear(c.classes, c.d);
  const n = model.size;
  const theta0 = uniform(rng, n, -0.5, 0.5);
  const batches = range(c.steps).map(() => ({
    x: uniform(rng, c.m * c.d),
    y: labels(rng, c.m, c.classes),
  }));
  const train = await session(softmaxModel(c.classes, c.d, theta0), crossEntropy, {
    adapter: 'softmax',
    grMode: 'precision',
    covariance: 'full',
    params: 'all',
    beta: c.beta,
    rho: c.rho,
    sigma0: c.sigma0,
    sigma0IsStd: c.std,
  });
  const expected = ref.regularizedNgd(
    model,
    theta0,
    c.std ? c.sigma0 ** 2 : c.sigma0,
    c.beta,
    c.rho,
    batches,
  );
  let theta = theta0;
  for (let k = 0; k < c.steps; k++) {
    await train.run(batches[k].x, batches[k].y, [c.m, c.d], [c.m]);
    const [mu, p] = [await train.params(), await train.covariance()];
    // §8.4 KF5: rel ≤ 1e-9 after ≤ 20 steps. Per step the filter and the NGD recursion differ by
    // rounding (κ(J)·n·ε ≲ 1e-12 here) and by R's 1e-12 jitter (≲ 1e-12/λ_min(R) ≲ 1e-10 relative
    // in F̄ at these bounded logits); both accumulate over the steps, at most ~20× that. Measured:
    // ≲ 1e-10, and ≲ 1e-14 with the jitter set to 0 — the jitter is the whole difference.
    within('KF5 μ_k = μ_{k−1} − ηJ_k⁻¹ḡ_k (≤ 20 steps)', ref.rel(mu, expected[k].mu), 1e-9);
    within(
      'KF5 Δμ_k (relative to the step itself)',
      ref.rel(ref.sub(mu, theta), ref.sub(expected[k].mu, theta)),
      1e-9,
    );
    within('KF5 P_k = (η/m)J_k⁻¹', ref.rel(p, expected[k].p), 1e-9);
    theta = mu;
  }
}

const kf6Arb = fc.record({
  seed: seedArb,
  k: fc.integer({ min: 1, max: 5 }),
  d: fc.integer({ min: 1, max: 3 }),
  m: fc.integer({ min: 1, max: 4 }),
  beta,
  rho: logUniform(1e-4, 10),
  factor: logUniform(1.01, 100),
  covariance: fc.constantFrom('full' as const, 'diagonal' as const),
});
async function kf6(c: Case<typeof kf6Arb>): Promise<void> {
  const rng = prng(c.seed);
  const full = c.covariance === 'full';
  const a = uniform(rng, c.k);
  const w = uniform(rng, c.d);
  const p = full ? randomSpd(rng, c.k, 0.5) : uniform(rng, c.k, 0.05, 2);
  const x = uniform(rng, c.m * c.d);
  const y = uniform(rng, c.m, -2, 2);
  const model = unusedParameterModel(c.d, c.k, a, w);
  const after = async (rho: number) => {
    const train = await session(
      model,
      mse,
      {
        adapter: 'gaussian',
        grMode: 'precision',
        covariance: c.covariance,
        params: 'a',
        beta: c.beta,
        rho,
      },
      { values: p, shape: full ? [c.k, c.k] : [c.k] },
    );
    await train.run(x, y, [c.m, c.d], [c.m]);
    return { theta: await train.params(), p: await train.covariance() };
  };
  const r = c.m * c.rho * ref.norm(mseGradient(w, x, y, c.m)) ** 2;
  const one = await after(c.rho);
  // θ flattened by key: [a, w]. H = 0 over a, so K = 0 and the innovation is never used: a is
  // untouched, bit for bit.
  expect(Array.from(one.theta)).toEqual([...a, ...w]);
  const expected = full
    ? ref.inverse(ref.add(ref.scale(ref.inverse(p, c.k), c.beta), ref.eye(c.k, r)), c.k)
    : Float64Array.from(p, (v) => 1 / (c.beta / v + r));
  // κ(P) ≤ ~10 and the pseudo-observation only adds to the precision: rounding ≲ 10·k·ε ≈ 1e-14.
  within(
    'KF6 pseudo-observation alone: P′ = (βP⁻¹ + rI)⁻¹, μ unchanged',
    ref.rel(one.p, expected),
    1e-12,
  );
  // Loewner order: P′(ρ) − P′(ρ·factor) ⪰ 0, up to the rounding of the two results (n·ε‖P‖ ≲
  // 1e-15‖P‖).
  const two = await after(c.rho * c.factor);
  const gap = ref.sub(one.p, two.p);
  const slack = full ? -lambdaMin(gap, c.k) : -Math.min(...gap);
  within(
    'KF6 P′ Loewner-decreasing in ρ: −λ_min(P′(ρ) − P′(ρ′)) / ‖P′‖',
    Math.max(0, slack) / ref.norm(one.p),
    1e-13,
  );
}

const kf6BoundArb = fc.record({
  seed: seedArb,
  classes: fc.integer({ min: 2, max: 4 }),
  d: fc.integer({ min: 1, max: 3 }),
  m: fc.integer({ min: 1, max: 3 }),
  beta,
  rho: logUniform(1e-4, 10),
  scale: logUniform(1e-2, 10),
});
async function kf6Bound(c: Case<typeof kf6BoundArb>): Promise<void> {
  const rng = prng(c.seed);
  const model = new ref.SoftmaxLinear(c.classes, c.d);
  const n = model.size;
  const theta = uniform(rng, n);
  const p = randomSpd(rng, n, c.scale);
  const x = uniform(rng, c.m * c.d);
  const y = labels(rng, c.m, c.classes);
  const train = await session(
    softmaxModel(c.classes, c.d, theta),
    crossEntropy,
    {
      adapter: 'softmax',
      grMode: 'precision',
      covariance: 'full',
      params: 'all',
      beta: c.beta,
      rho: c.rho,
    },
    { values: p, shape: [n, n] },
  );
  await train.run(x, y, [c.m, c.d], [c.m]);
  const { obs, rGr } = softmaxStep(model, theta, x, y, c.m, c.rho, 'precision');
  const pull = ref.norm(
    ref.matmul(ref.transpose(obs.h, obs.d, n), ref.solve(obs.r, obs.e, obs.d, 1), n, obs.d, 1),
  );
  const bound = pull / (c.beta / lambdaMax(p, n) + rGr);
  // ‖Δμ‖ = ‖P_k HᵀR⁻¹e‖ ≤ ‖P_k‖·‖HᵀR⁻¹e‖ and P_k⁻¹ ⪰ βP⁻¹ + rI; the ratio ≤ 1 up to rounding (1e-10
  // slack).
  within(
    'KF6 ‖Δμ‖ / (‖HᵀR⁻¹e‖/(β·λ_min(P⁻¹) + r)) ≤ 1',
    ref.norm(ref.sub(await train.params(), theta)) / bound,
    1 + 1e-10,
  );
}

const kf7Arb = fc.record({
  seed: seedArb,
  classes: fc.integer({ min: 2, max: 4 }),
  d: fc.integer({ min: 1, max: 3 }),
  m: fc.integer({ min: 1, max: 3 }),
  steps: fc.integer({ min: 1, max: 5 }),
  beta,
  rho: logUniform(1e-4, 10),
  grMode,
});
async function kf7(c: Case<typeof kf7Arb>): Promise<void> {
  const rng = prng(c.seed);
  const model = new ref.SoftmaxLinear(c.classes, c.d);
  const n = model.size;
  let theta = uniform(rng, n);
  let p: Float64Array = Float64Array.from(uniform(rng, n, -2, 0), (v) => 10 ** v);
  const train = await session(
    softmaxModel(c.classes, c.d, theta),
    crossEntropy,
    {
      adapter: 'softmax',
      grMode: c.grMode,
      covariance: 'diagonal',
      params: 'all',
      beta: c.beta,
      rho: c.rho,
    },
    { values: p, shape: [n] },
  );
  for (let k = 0; k < c.steps; k++) {
    const x = uniform(rng, c.m * c.d);
    const y = labels(rng, c.m, c.classes);
    const metrics = await train.run(x, y, [c.m, c.d], [c.m]);
    const [mu, pk] = [await train.params(), await train.covariance()];
    const { obs, rGr } = softmaxStep(model, theta, x, y, c.m, c.rho, c.grMode);
    const expected = ref.kalmanDiagonal(theta, p, obs, c.beta, rGr);
    expect(Math.min(...pk)).toBeGreaterThan(0);
    expect(metrics.clamped).toBe(0);
    // p_post = p′ − diag(P′HᵀS⁻¹HP′) ≤ p′ (a PSD diagonal is ≥ 0); p′ itself is rounded (1/(1/p +
    // r) or p/β) — 4 ulp of slack.
    within(
      'KF7 p_post ≤ p_prior elementwise: max (p_post/p_prior − 1)',
      Math.max(0, ...Array.from(pk, (v, i) => v / expected.prior[i] - 1)),
      4 * EPS,
    );
    // §8.4 KF7: the mean update equals the full-form update with P′ = diag(p′), rel 1e-12: the same
    // formula through two Cholesky/LU solves of S (κ(S) ≲ 10³ here: ≲ 10³·6·ε ≈ 1e-12 worst, ~1e-15
    // typical).
    within(
      'KF7 Δμ = full-form K e with P′ = diag(p′)',
      ref.rel(ref.sub(mu, theta), ref.sub(expected.mu, theta)),
      1e-12,
    );
    within('KF7 p_post = diag(P′ − KHP′) with P′ = diag(p′)', ref.rel(pk, expected.p), 1e-12);
    theta = mu;
    p = pk;
  }
}

const kf7DisjointArb = fc.record({
  seed: seedArb,
  k: fc.integer({ min: 1, max: 5 }),
  m: fc.integer({ min: 1, max: 3 }),
  steps: fc.integer({ min: 1, max: 4 }),
  beta,
  rho: logUniform(1e-4, 10),
  grMode,
  obsNoise: logUniform(0.1, 10),
  sigma0: logUniform(0.1, 10),
});
async function kf7Disjoint(c: Case<typeof kf7DisjointArb>): Promise<void> {
  const rng = prng(c.seed);
  const w = uniform(rng, c.k);
  const settings: Settings = {
    adapter: 'gaussian',
    grMode: c.grMode,
    params: 'all',
    beta: c.beta,
    rho: c.rho,
    obsNoise: c.obsNoise,
    sigma0: c.sigma0,
  };
  const diag = await session(elementwiseModel(c.k, w), mse, {
    ...settings,
    covariance: 'diagonal',
  });
  const full = await session(elementwiseModel(c.k, w), mse, { ...settings, covariance: 'full' });
  for (let s = 0; s < c.steps; s++) {
    const x = uniform(rng, c.m * c.k);
    const y = uniform(rng, c.m * c.k, -2, 2);
    await diag.run(x, y, [c.m, c.k], [c.m, c.k]);
    await full.run(x, y, [c.m, c.k], [c.m, c.k]);
  }
  const pFull = await full.covariance();
  const offDiagonal = Math.max(
    0,
    ...Array.from(pFull, (v, i) => (Math.floor(i / c.k) === i % c.k ? 0 : Math.abs(v))),
  );
  // With diagonal P and disjoint supports, S is block diagonal after a permutation: no elimination
  // step mixes parameters, so the full filter's off-diagonal entries are exact zeros.
  expect(offDiagonal).toBe(0);
  // §8.4 KF7: rel 1e-12; the same scalar recursions by two routes (per-parameter S blocks of size
  // m, κ ≲ 10³; the pseudo-observation as 1/(1/p + r) vs P − P(P + I/r)⁻¹P): ≲ steps·10³·ε ≈ 1e-12
  // worst.
  within(
    'KF7 disjoint support: diagonal ≡ full (μ)',
    ref.rel(await diag.params(), await full.params()),
    1e-12,
  );
  within(
    'KF7 disjoint support: diagonal ≡ full (diag P)',
    ref.rel(await diag.covariance(), ref.diagonal(pFull, c.k)),
    1e-12,
  );
}

const kf8Arb = fc.record({
  seed: seedArb,
  k: fc.integer({ min: 1, max: 4 }),
  steps: fc.integer({ min: 1, max: 10 }),
  beta: fc.double({ min: 0.5, max: 1, noNaN: true }),
  sigma0: logUniform(0.01, 10),
  covariance: fc.constantFrom('full' as const, 'diagonal' as const),
  grMode,
});
async function kf8(c: Case<typeof kf8Arb>): Promise<void> {
  const rng = prng(c.seed);
  const a = uniform(rng, c.k);
  const w = uniform(rng, 2);
  const train = await session(unusedParameterModel(2, c.k, a, w), mse, {
    adapter: 'gaussian',
    grMode: c.grMode,
    covariance: c.covariance,
    params: 'a',
    beta: c.beta,
    rho: 0,
    sigma0: c.sigma0,
  });
  let expected: Float64Array =
    c.covariance === 'full' ? ref.eye(c.k, c.sigma0) : new Float64Array(c.k).fill(c.sigma0);
  for (let s = 1; s <= c.steps; s++) {
    await train.run(uniform(rng, 3 * 2), uniform(rng, 3), [3, 2], [3]);
    expected = Float64Array.from(expected, (v) => v / c.beta);
    const p = await train.covariance();
    // H = 0, ρ = 0: the update subtracts exact zeros, so P_k is P_{k−1}/β bit for bit.
    expect(Array.from(p)).toEqual(Array.from(expected));
    // Against the closed form β^{−k}P₀: k divisions vs one power, ≤ (k + 1) roundings.
    const closed = ref.scale(
      c.covariance === 'full' ? ref.eye(c.k, c.sigma0) : new Float64Array(c.k).fill(c.sigma0),
      c.beta ** -s,
    );
    within('KF8 prediction only: P_k = β^{−k}P₀ (≤ (k+1)·ε)', ref.rel(p, closed), (s + 1) * EPS);
  }
  expect(Array.from(await train.params())).toEqual([...a, ...w]);
}

// The variance cap (an option beyond docs/algorithms.md against wind-up): prediction only, diagonal
// P, so P_k = min(P_{k−1}/β, cap) exactly; the cap binds from the step where σ₀β^{−k} first exceeds
// it.
const capArb = fc.record({
  seed: seedArb,
  k: fc.integer({ min: 1, max: 4 }),
  steps: fc.integer({ min: 2, max: 8 }),
  beta: fc.double({ min: 0.5, max: 0.9, noNaN: true }),
  sigma0: logUniform(0.01, 1),
  over: fc.double({ min: 1.05, max: 3, noNaN: true }),
});
async function capped(c: Case<typeof capArb>): Promise<void> {
  const rng = prng(c.seed);
  const cap = c.sigma0 * c.over;
  const train = await session(
    unusedParameterModel(2, c.k, uniform(rng, c.k), uniform(rng, 2)),
    mse,
    {
      adapter: 'gaussian',
      covariance: 'diagonal',
      params: 'a',
      beta: c.beta,
      rho: 0,
      sigma0: c.sigma0,
      varianceCap: cap,
    },
  );
  let expected = new Float64Array(c.k).fill(c.sigma0);
  for (let s = 1; s <= c.steps; s++) {
    await train.run(uniform(rng, 3 * 2), uniform(rng, 3), [3, 2], [3]);
    expected = Float64Array.from(expected, (v) => Math.min(v / c.beta, cap));
    // H = 0, ρ = 0: the update subtracts exact zeros; the cap is a min, exact.
    expect(Array.from(await train.covariance())).toEqual(Array.from(expected));
  }
  // β ≤ 0.9 and 8 steps at most, cap ≤ 3σ₀: σ₀β^{−steps} passes the cap when steps ≥
  // log(over)/log(1/β).
  if (c.sigma0 * c.beta ** -c.steps > cap) expect(expected[0]).toBe(cap);
}

const kf8MonotoneArb = fc.record({
  seed: seedArb,
  classes: fc.integer({ min: 2, max: 4 }),
  d: fc.integer({ min: 1, max: 3 }),
  m: fc.integer({ min: 1, max: 3 }),
  steps: fc.integer({ min: 2, max: 6 }),
  sigma0: logUniform(0.01, 10),
  covariance: fc.constantFrom('full' as const, 'diagonal' as const),
});
async function kf8Monotone(c: Case<typeof kf8MonotoneArb>): Promise<void> {
  const rng = prng(c.seed);
  const n = c.classes * (1 + c.d);
  const train = await session(softmaxModel(c.classes, c.d, uniform(rng, n)), crossEntropy, {
    adapter: 'softmax',
    covariance: c.covariance,
    params: 'all',
    beta: 1,
    rho: 0,
    sigma0: c.sigma0,
  });
  let before: Float64Array =
    c.covariance === 'full' ? ref.eye(n, c.sigma0) : new Float64Array(n).fill(c.sigma0);
  for (let s = 0; s < c.steps; s++) {
    await train.run(uniform(rng, c.m * c.d), labels(rng, c.m, c.classes), [c.m, c.d], [c.m]);
    const after = await train.covariance();
    const gap = ref.sub(before, after);
    // β = 1, ρ = 0: P_{k+1} = P_k − P HᵀS⁻¹HP ⪯ P_k. The computed difference's eigenvalues may dip
    // below 0 by rounding, ≲ n·ε·‖P‖ ≈ 4e-15‖P‖: 1e-13‖P‖ allowed.
    const dip = c.covariance === 'full' ? -lambdaMin(gap, n) : -Math.min(...gap);
    within(
      'KF8 β = 1, ρ = 0: P_k Loewner non-increasing: −λ_min(P_k − P_{k+1})/‖P_k‖',
      Math.max(0, dip) / ref.norm(before),
      1e-13,
    );
    before = after;
  }
}

const kf9Arb = fc.record({
  seed: seedArb,
  classes: fc.integer({ min: 2, max: 4 }),
  d: fc.integer({ min: 1, max: 3 }),
  m: fc.integer({ min: 1, max: 3 }),
  steps: fc.integer({ min: 1, max: 8 }),
  beta: fc.double({ min: 0.5, max: 1, noNaN: true }),
  rho: logUniform(1e-4, 10),
  grMode,
  sigma0: logUniform(0.01, 10),
  adapter: fc.constantFrom('softmax' as const, 'scalar' as const),
});
async function kf9(c: Case<typeof kf9Arb>): Promise<void> {
  const rng = prng(c.seed);
  const n = c.classes * (1 + c.d);
  const train = await session(softmaxModel(c.classes, c.d, uniform(rng, n)), crossEntropy, {
    adapter: c.adapter,
    grMode: c.grMode,
    covariance: 'full',
    params: 'all',
    beta: c.beta,
    rho: c.rho,
    sigma0: c.sigma0,
  });
  for (let s = 0; s < c.steps; s++) {
    await train.run(uniform(rng, c.m * c.d), labels(rng, c.m, c.classes), [c.m, c.d], [c.m]);
    const p = await train.covariance();
    // §8.4 KF9: ‖P − Pᵀ‖ ≤ 1e-12‖P‖ (the filter symmetrizes: exactly 0 is expected).
    within('KF9 ‖P − Pᵀ‖/‖P‖', ref.norm(ref.sub(p, ref.transpose(p, n, n))) / ref.norm(p), 1e-12);
    // λ_min(P) > 0 (asserted as λ_min/λ_max > 1e-12: Jacobi's eigenvalues are accurate to ~ε‖P‖).
    const eig = ref.symmetricEigenvalues(p, n);
    smallest.kf9 = Math.min(smallest.kf9, eig[0] / eig[n - 1]);
    expect(eig[0] / eig[n - 1]).toBeGreaterThan(1e-12);
  }
}

// ---- the property tests ----------------------------------------------------------------------

// Runs per property: enough to cover the generators' corners (adapters, modes, shapes), small
// enough for the whole file to stay near a minute on the interpreter.
const RUNS = 25;

describe('R-Kalman properties (docs/algorithms.md §8.4), float64 interpreter', () => {
  test(
    'KF1 linear-Gaussian, β = 1, ρ = 0, full P: exact Bayesian linear ' +
      'regression after all data, in any order and partition',
    async () => {
      await fc.assert(fc.asyncProperty(kf1Arb, kf1), { numRuns: RUNS });
    },
  );
  test('KF2 covariance form = information form = Joseph form; the mean updates agree', async () => {
    await fc.assert(fc.asyncProperty(kf2Arb, kf2), { numRuns: RUNS });
  });
  test('KF3 batch = sequential (linear h, full P)', async () => {
    await fc.assert(fc.asyncProperty(kf3Arb, kf3), { numRuns: RUNS });
  });
  test('KF4 adapter A: HᵀR⁻¹(y′ − p′) = −Σ∇ℓ_n and HᵀR⁻¹H = Σ J_zᵀ(diag p − ppᵀ)J_z', () => {
    fc.assert(fc.property(kf4Arb, kf4), { numRuns: 50 });
  });
  test(
    'KF5 full-P R-Kalman (β < 1, ρ > 0, precision) is regularized online ' + 'NGD, ≤ 20 steps',
    async () => {
      await fc.assert(fc.asyncProperty(kf5Arb, kf5), { numRuns: RUNS });
    },
  );
  test(
    'KF6 the pseudo-observation alone: μ unchanged, P′ = (βP⁻¹ + rI)⁻¹, ' +
      'Loewner-decreasing in ρ',
    async () => {
      await fc.assert(fc.asyncProperty(kf6Arb, kf6), { numRuns: RUNS });
    },
  );
  test('KF6 ‖μ_k − μ_{k−1}‖ ≤ ‖HᵀR⁻¹e‖/(β·λ_min(P⁻¹) + r)', async () => {
    await fc.assert(fc.asyncProperty(kf6BoundArb, kf6Bound), { numRuns: RUNS });
  });
  test(
    'KF7 diagonal variant: p > 0, p_post ≤ p_prior, the mean update of the ' +
      'full form with P′ = diag(p′)',
    async () => {
      await fc.assert(fc.asyncProperty(kf7Arb, kf7), { numRuns: RUNS });
    },
  );
  test('KF7 disjoint row support: diagonal ≡ full', async () => {
    await fc.assert(fc.asyncProperty(kf7DisjointArb, kf7Disjoint), { numRuns: RUNS });
  });
  test('KF8 prediction only: P_k = β^{−k}P₀', async () => {
    await fc.assert(fc.asyncProperty(kf8Arb, kf8), { numRuns: RUNS });
  });
  test(
    'varianceCap: predicted variances are capped, exactly; the full ' + 'covariance refuses it',
    async () => {
      await fc.assert(fc.asyncProperty(capArb, capped), { numRuns: RUNS });
      expect(() => rkalman({ covariance: 'full', varianceCap: 1 })).toThrow(
        /diagonal covariance only/,
      );
      expect(() => rkalman({ varianceCap: -1 })).toThrow(GrngError);
    },
  );
  test('KF8 β = 1, ρ = 0: P_k is Loewner non-increasing', async () => {
    await fc.assert(fc.asyncProperty(kf8MonotoneArb, kf8Monotone), { numRuns: RUNS });
  });
  test('KF9 P_k symmetric and positive definite', async () => {
    await fc.assert(fc.asyncProperty(kf9Arb, kf9), { numRuns: RUNS });
  });
});

// ---- KF10: structure ----------------------------------------------------------------------------

/** The float64 interpreter, keeping the output nodes of every program it runs (the traced step). */
class RecordingDevice extends CpuDevice {
  readonly programs: (readonly Node[])[] = [];
  override execute(
    outputs: readonly Node[],
    inputs: Parameters<CpuDevice['execute']>[1],
    options?: ExecuteOptions,
  ) {
    this.programs.push(outputs);
    return super.execute(outputs, inputs, options);
  }
}

describe('KF10 no Fisher-size inverse', () => {
  // Two independent instruments. (1) A spy on the DSL's choleskySolve (rkalman.ts calls it through
  // the dsl/index.js namespace, which vitest's module runner lets vi.spyOn wrap): the shapes of the
  // matrices factorized. (2) The traced training step itself (every node of the program the device
  // runs): no node anywhere is [n_K, n_K] or larger than n_K·max(d_obs, d) — no Fisher-size object
  // exists, so none can be inverted. Model: nn.mlp([4, 8, 3]) with every parameter managed
  // (n_K = 67), batch 2 → observation dimension 2·(3 − 1) = 4.
  const model = nn.mlp([4, 8, 3]);
  const x = uniform(prng(1), 8);
  const y = Int32Array.from([0, 2]);
  const nK = 4 * 8 + 8 + 8 * 3 + 3;
  const obsDim = 2 * (3 - 1);

  const trace = async (settings: Settings) => {
    const device = new RecordingDevice();
    const spy = vi.spyOn(dsl, 'choleskySolve');
    try {
      const train = await compileTrainStep({
        model,
        loss: crossEntropy,
        optimizer: rkalman({ params: 'all', ...settings }),
        params: model.init(1),
        device,
      });
      await train.run({ x: array(x, [2, 4]), y: array(y, [2], 'i32') });
      // One entry per distinct solve in the program: compiled updates are traced twice (the purity
      // check, runtime/update-purity.ts), and hash-consing makes both traces' solves one node.
      const solves = new Map(
        spy.mock.calls.map(([a], i) => [
          (spy.mock.results[i].value as { node: unknown }).node,
          a.shape.join('×'),
        ]),
      );
      const factorized = [...solves.values()];
      // the step (init is the other)
      const step = device.programs.reduce((a, b) => (a.length >= b.length ? a : b));
      return { factorized, nodes: topoSort(step) };
    } finally {
      spy.mockRestore();
    }
  };

  test(
    'diagonal (both GR modes): the only factorizations are of S [4, 4]; no ' +
      'node of the step is Fisher-sized',
    async () => {
      for (const grMode of ['noise', 'precision'] as const) {
        const { factorized, nodes } = await trace({ covariance: 'diagonal', grMode });
        console.log(
          `KF10 diagonal/${grMode}: choleskySolve on ${factorized.join(', ')}; ` +
            `${nodes.length} nodes, largest ` +
            `${Math.max(...nodes.map((n) => n.shape.reduce((a, b) => a * b, 1)))} ` +
            `elements`,
        );
        expect(factorized.length).toBeGreaterThan(0);
        expect(new Set(factorized)).toEqual(new Set([`${obsDim}×${obsDim}`]));
        for (const node of nodes) {
          expect(
            node.shape.filter((dim) => dim === nK).length,
            `${node.op} [${node.shape.join(', ')}]`,
          ).toBeLessThan(2);
          // H [4, 67] and its products are the largest R-Kalman objects; the MLP's own are smaller.
          expect(
            node.shape.reduce((a, b) => a * b, 1),
            `${node.op} [${node.shape.join(', ')}]`,
          ).toBeLessThanOrEqual(nK * obsDim);
        }
      }
    },
  );

  test(
    "full covariance, 'noise': the only factorizations are of S [4, 4] (P " +
      'itself is n_K × n_K, but nothing of that size is factorized)',
    async () => {
      const { factorized } = await trace({ covariance: 'full', grMode: 'noise' });
      expect(new Set(factorized)).toEqual(new Set([`${obsDim}×${obsDim}`]));
    },
  );

  test(
    "full covariance, 'precision': the pseudo-observation's solve is the " +
      'one [n_K, n_K] factorization (its observation is θ itself, ' +
      'docs/algorithms.md §5.2)',
    async () => {
      const { factorized } = await trace({ covariance: 'full', grMode: 'precision' });
      expect(factorized.filter((s) => s === `${nK}×${nK}`)).toHaveLength(1);
      expect(new Set(factorized.filter((s) => s !== `${nK}×${nK}`))).toEqual(
        new Set([`${obsDim}×${obsDim}`]),
      );
    },
  );
});

// ---- WebGPU -----------------------------------------------------------------------------------

describe('compiled WebGPU R-Kalman steps equal the float32 interpreter', () => {
  const batch = (seed: number, size: number) => {
    const x = uniform(prng(seed), size * 4);
    const y = Int32Array.from(
      { length: size },
      (_, n) => (x[4 * n] + x[4 * n + 1] > 0 ? 1 : 0) + (x[4 * n + 2] > 0.3 ? 1 : 0),
    );
    return { x: array(x, [size, 4]), y: array(y, [size], 'i32') };
  };
  const compare = async (
    name: string,
    model: Model<never>,
    params: Tree<HostArray>,
    settings: Settings,
  ) => {
    const run = async (device: Device) => {
      const train = await compileTrainStep({
        model,
        loss: crossEntropy,
        optimizer: rkalman(settings),
        params,
        device,
      });
      const losses: number[] = [];
      for (let t = 1; t <= 3; t++) losses.push((await train.run(batch(t, 2))).loss);
      return {
        losses,
        params: await readFlat(await train.params()),
        covariance: await ((await train.state()) as { covariance: DeviceArray }).covariance.read(),
      };
    };
    const gpu = await run(await gpuDevice());
    const f32 = await run(await createDevice({ kind: 'cpu', precision: 'f32' }));
    const paramError = Math.max(...Array.from(gpu.params, (v, i) => Math.abs(v - f32.params[i])));
    const covarianceError = Math.max(
      ...Array.from(
        gpu.covariance,
        (v, i) => Math.abs(v - f32.covariance[i]) / Math.max(1e-3, Math.abs(f32.covariance[i])),
      ),
    );
    // How far the filter moved p below the prediction-only σ₀β⁻³ (so the comparison covers the
    // update).
    const shrink = Math.max(...Array.from(f32.covariance, (v) => 1 - v / (0.2 / 0.99 ** 3)));
    console.log(
      `WebGPU vs f32 interpreter (${name}): max |Δθ| ` +
        `${paramError.toExponential(2)}, max rel Δp ` +
        `${covarianceError.toExponential(2)}, largest shrink of p ` +
        `${shrink.toExponential(2)}`,
    );
    // The same f32 program; the summation orders differ (matmuls, reductions), ~1e-7 relative per
    // op. The Cholesky solve of the 4×4 S amplifies by κ(S) ≲ 10² at these logits, and a Kalman
    // step is bounded (|Ke| ≲ ‖P‖·‖Hᵀ S⁻¹e‖ with P ≤ σ₀ = 0.2): 1e-4 absolute on θ, 1e-4 relative
    // on p after 3 steps leave a wide margin over ~10⁻⁵.
    expect(paramError).toBeLessThanOrEqual(1e-4);
    expect(covarianceError).toBeLessThanOrEqual(1e-4);
  };

  test("nn.mlp([4, 8, 3]), batch 2, params 'head', diagonal P", async () => {
    const model = nn.mlp([4, 8, 3]);
    await compare('mlp head', model, model.init(5), {
      params: 'head',
      covariance: 'diagonal',
      beta: 0.99,
      rho: 0.01,
    });
  });

  test('LoRA-adapted dense layers, params = the LoRA matrices', async () => {
    const base0 = nn.dense(4, 8).init(1) as { w: HostArray; b: HostArray };
    const base1 = nn.dense(8, 3).init(2) as { w: HostArray; b: HostArray };
    const l0 = nn.loraDense(base0, 2, { name: 'l0' });
    const l1 = nn.loraDense(base1, 2, { name: 'l1' });
    // LoRA starts B at zero, which makes H over every A zero; random B (as after some training)
    // puts every LoRA matrix in H.
    const adapted = (layer: typeof l0, seed: number, out: number) => ({
      a: (layer.init(seed) as { a: HostArray }).a,
      b: array(uniform(prng(seed + 7), out * 2, -0.5, 0.5), [out, 2]),
    });
    const model = asModel({
      init: (seed) => ({ l0: adapted(l0, seed, 8), l1: adapted(l1, seed + 1, 3) }),
      apply: (p, x) => l1.apply(p.l1 as never, relu(l0.apply(p.l0 as never, x))),
    });
    await compare('lora', model, model.init(3), {
      params: 'l0,l1',
      covariance: 'diagonal',
      beta: 0.99,
      rho: 0.01,
    });
  });
});
