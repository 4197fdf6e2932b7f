// RENG (docs/algorithms.md §4) against the properties of §8.3 (E1–E6), on the float64 interpreter
// and through `reng` itself. With μ = 0, λ_wd = 0, statDecay 0, covEvery = inverseEvery = 1 and the
// empirical Fisher, one step leaves v = U = X_Γ·G_G·X_Λ in the state for each dense layer (X the
// Newton–Schulz inverses, also in the state) and v = g_G for every other parameter (the fallback
// SGD on the raw regularized gradient). So the regularized gradient RENG used is read back exactly
// as G_G = X_Γ⁻¹·U·X_Λ⁻¹ (X inverted by Gauss–Jordan in float64; with dampingCoef 1, κ(X) ≤ 2 and
// this recovery costs ~1e-15), and checked against float64 references that never touch the DSL:
// hand-written gradients, a dense Hessian by five-point differences of them, closed forms
// (./ring-reference.ts). Then one compiled WebGPU check against the float32 interpreter. That the
// properties can fail is checked by mutation testing (npm run mutation, stryker.config.mjs).
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  add,
  array,
  compileTrainStep,
  constant,
  createDevice,
  crossEntropy,
  grad,
  hvp,
  jit,
  matmul,
  mul,
  nn,
  reng,
  reshape,
  ring,
  sub,
  sum,
  tanh,
  type Device,
  type DeviceArray,
  type Model,
  type Tensor,
} from '../../index.js';
import { flattenTree } from '../../core/tree.js';
import type { HostArray } from '../../core/host-array.js';
import { isArrayLeaf } from '../../runtime/jit.js';
import { gpuDevice } from '../support/gpu.js';
import { loraMlp, threeClassBatch } from './lora-problem.js';
import { int, prng, seedArb, uniform } from '../support/random.js';
import {
  eigenvalues,
  inverse,
  mat,
  matmul as refMatmul,
  rel,
  solve,
  transpose,
  type Mat,
} from '../curvature/reference.js';
import {
  finiteDifferenceGradient,
  gainMlpLayout,
  gainMlpObjective,
  hessianByDifferences,
  mlpObjective,
  mlpSize,
  penalizedLoss,
  regularizedGradient,
  withBias,
  type MlpShape,
} from './ring-reference.js';

const cpu = await createDevice({ kind: 'cpu' });

const worst = new Map<string, number>();
const track = (name: string, value: number): number => {
  worst.set(name, Math.max(worst.get(name) ?? -Infinity, value));
  return value;
};
const trackMin = (name: string, value: number): number => -track(name, -value);
const report = (...names: string[]): void =>
  console.log(
    names
      .map(
        (n) =>
          `${n}: ${worst.has(n) ? (n.startsWith('min ') ? -(worst.get(n) as number) : (worst.get(n) as number)).toExponential(2) : 'n/a'}`,
      )
      .join('\n'),
  );

/**
 * ρ log-uniform in [1e-4, 10] (docs/algorithms.md §8), from an integer (fc.double would favour ρ =
 * 1).
 */
const rhoArb = fc.integer({ min: 0, max: 1_000_000 }).map((k) => 1e-4 * 1e5 ** (k / 1_000_000));

/**
 * One exact RENG step (module comment); dampingCoef 1 makes the preconditioner well conditioned (κ
 * ≤ 2 per factor).
 */
const EXACT = {
  lr: 0.5,
  momentum: 0,
  weightDecay: 0,
  statDecay: 0,
  covEvery: 1,
  inverseEvery: 1,
  fisher: 'empirical',
  factorInit: 'first',
  dampingCoef: 1,
  newtonIters: 12,
  powerSteps: 30,
  warmStart: false,
} as const;

type DeviceLayer = { w: DeviceArray; b?: DeviceArray };
type LayerState = { lambdaInv: DeviceArray; gammaInv: DeviceArray };

async function wTilde(l: DeviceLayer): Promise<Mat> {
  const [rows, cols] = l.w.shape;
  return withBias(
    mat(rows, cols, await l.w.read()),
    l.b === undefined ? undefined : await l.b.read(),
  );
}
const square = async (a: DeviceArray): Promise<Mat> => mat(a.shape[0], a.shape[0], await a.read());

/**
 * The layer gradient RENG preconditioned: G_G = X_Γ⁻¹·U·X_Λ⁻¹, laid out as [W | b] (W row-major,
 * then b) in a flat vector.
 */
async function denseGradient(velocity: DeviceLayer, layer: LayerState): Promise<Float64Array> {
  const U = await wTilde(velocity);
  const G = refMatmul(
    refMatmul(inverse(await square(layer.gammaInv)), U),
    inverse(await square(layer.lambdaInv)),
  );
  const dIn = velocity.w.shape[1];
  const out: number[] = [];
  for (let o = 0; o < G.rows; o++) for (let i = 0; i < dIn; i++) out.push(G.data[o * G.cols + i]);
  if (velocity.b !== undefined) for (let o = 0; o < G.rows; o++) out.push(G.data[o * G.cols + dIn]);
  return Float64Array.from(out);
}

const concat = (...parts: ArrayLike<number>[]): Float64Array =>
  Float64Array.from(parts.flatMap((p) => Array.from(p)));

// ---------------------------------------------------------------------------------------------
// A tiny tanh MLP (n ≤ 49 parameters) for E1, E2, E4.

const mlpCase = fc.record({
  seed: seedArb,
  B: fc.integer({ min: 1, max: 20 }),
  dIn: fc.integer({ min: 1, max: 4 }),
  hidden: fc.integer({ min: 1, max: 5 }),
  classes: fc.integer({ min: 2, max: 4 }),
  bias: fc.boolean(),
  rho: rhoArb,
});
type MlpCase = {
  seed: number;
  B: number;
  dIn: number;
  hidden: number;
  classes: number;
  bias: boolean;
  rho: number;
};

function mlpProblem(c: MlpCase) {
  const rng = prng(c.seed);
  const model = nn.mlp([c.dIn, c.hidden, c.classes], { activation: 'tanh', bias: c.bias });
  const params = model.init(c.seed) as { layers: { w: HostArray; b?: HostArray }[] };
  const x = mat(c.B, c.dIn, uniform(rng, c.B * c.dIn, -2, 2));
  const labels = Int32Array.from({ length: c.B }, () => int(rng, 0, c.classes - 1));
  const shapes: MlpShape[] = params.layers.map((l) => ({
    out: l.w.shape[0],
    in: l.w.shape[1],
    bias: c.bias,
  }));
  const theta = concat(
    ...params.layers.flatMap((l) => (l.b === undefined ? [l.w.data] : [l.w.data, l.b.data])),
  );
  return {
    model,
    params,
    batch: { x: array(x.data, [c.B, c.dIn]), y: array(labels, [c.B], 'i32') },
    objective: mlpObjective(shapes, x, labels),
    theta,
    n: mlpSize(shapes),
  };
}

/**
 * One RENG step on the MLP problem; the regularized gradient it used, flattened like the
 * reference's θ.
 */
async function rengGradient(
  pr: ReturnType<typeof mlpProblem>,
  settings: Record<string, number | string>,
): Promise<Float64Array> {
  const train = await compileTrainStep({
    model: pr.model,
    loss: crossEntropy,
    optimizer: reng({ ...EXACT, ...settings }),
    params: pr.params,
    device: cpu,
  });
  await train.run(pr.batch);
  const state = (await train.state()) as unknown as {
    layers: LayerState[];
    velocity: { layers: DeviceLayer[] };
  };
  return concat(
    ...(await Promise.all(state.velocity.layers.map((v, i) => denseGradient(v, state.layers[i])))),
  );
}

/**
 * The five-point stencil's step: its truncation h⁴|∂⁵L|/30 dominates down to h ≈ 5e-4 (measured
 * rel(G_G, g + ρHg) over 400 draws: 3e-11 at h = 1e-3, 2e-12 at 5e-4, scaling as h⁴), and rounding
 * ≈ 1.5ε·max|∇L|/h ≈ 1.3e-12 per entry takes over below: h = 2.5e-4 gives ≤ 1e-12 relative.
 */
const HESSIAN_STEP = 2.5e-4;

/**
 * E1 and E2 on one case: RENG's G_G against g + ρHg with the dense Hessian (E1), and against
 * central differences of the penalized loss L_G (E2).
 */
async function e1e2Property(c: MlpCase): Promise<void> {
  const pr = mlpProblem(c);
  const got = await rengGradient(pr, { rho: c.rho });
  // E1. H by the five-point stencil on the exact gradient with h = HESSIAN_STEP (below). RENG's
  // side: double backprop in float64 (~1e-15) and the recovery through κ ≤ 2 inverses (~1e-15). The
  // docs/algorithms.md's 1e-10 holds with ~100× margin.
  const H = hessianByDifferences(pr.objective, pr.theta, HESSIAN_STEP);
  const want = regularizedGradient(pr.objective, pr.theta, c.rho, H);
  expect(
    track('E1 rel(G_G, g + ρHg)', rel(got, want)),
    'E1 double backprop = dense Hessian',
  ).toBeLessThanOrEqual(1e-10);
  // E2. Central differences of L_G = L + (ρ/2)‖∇L‖² with h = 1e-5: truncation h²|∂³L_G|/6 ≈ 2e-11,
  // rounding ε|L_G|/h ≈ 2e-11 per component; docs/algorithms.md's 1e-7 relative is generous.
  const h = 1e-5;
  const fd = pr.theta.map((_, j) => {
    const plus = Float64Array.from(pr.theta);
    const minus = Float64Array.from(pr.theta);
    plus[j] += h;
    minus[j] -= h;
    return (
      (penalizedLoss(pr.objective, plus, c.rho) - penalizedLoss(pr.objective, minus, c.rho)) /
      (2 * h)
    );
  });
  expect(
    track('E2 rel(G_G, central differences of L_G)', rel(got, fd)),
    'E2 finite differences of L_G',
  ).toBeLessThanOrEqual(1e-7);
}

describe('E1, E2: the regularized gradient of a tiny tanh MLP (n ≤ 49)', () => {
  test(
    'double backprop equals g + ρHg with a dense Hessian (E1) and central ' +
      'differences of L_G (E2)',
    async () => {
      await fc.assert(fc.asyncProperty(mlpCase, e1e2Property), { numRuns: 25 });
      report('E1 rel(G_G, g + ρHg)', 'E2 rel(G_G, central differences of L_G)');
    },
  );
});

// ---------------------------------------------------------------------------------------------
// E3: a quadratic loss through a custom model. out = vec(x Wᵀ) + Pθ is affine in all parameters
// (W: a bias-free dense layer, θ: a plain vector outside any dense layer), and L = ½‖out − y‖²
// = ½θ̃ᵀAθ̃ − bᵀθ̃ + const with θ̃ = [vec W (row-major), θ], A = JᵀJ, b = Jᵀy.

const quadraticCase = fc.record({
  seed: seedArb,
  B: fc.integer({ min: 1, max: 8 }),
  n: fc.integer({ min: 1, max: 4 }),
  k: fc.integer({ min: 1, max: 3 }),
  m: fc.integer({ min: 1, max: 4 }),
  rho: rhoArb,
});
type QuadraticCase = { seed: number; B: number; n: number; k: number; m: number; rho: number };

function quadraticProblem(c: QuadraticCase, at?: Float64Array) {
  const rng = prng(c.seed);
  const rows = c.B * c.k;
  const x = mat(c.B, c.n, uniform(rng, c.B * c.n, -2, 2));
  const P = uniform(rng, rows * c.m, -1, 1);
  const y = uniform(rng, rows, -1, 1);
  const dense = nn.dense(c.n, c.k, { bias: false, name: 'q' });
  const model: Model<{ q: { w: Tensor }; theta: Tensor }> = {
    init: () => ({}) as never,
    apply: (p, xs) =>
      add(
        reshape(dense.apply(p.q, xs), [rows]),
        reshape(matmul(constant(P, [rows, c.m]), reshape(p.theta, [c.m, 1])), [rows]),
      ),
  };
  const loss = (out: Tensor, target: Tensor) =>
    mul(0.5, sum(mul(sub(out, target), sub(out, target))));
  // J = [∂out/∂vec W | P]: out[b·k + o] = Σ_i x[b,i]·W[o,i] + (Pθ)[b·k + o].
  const size = c.k * c.n + c.m;
  const J = mat(rows, size);
  for (let b = 0; b < c.B; b++)
    for (let o = 0; o < c.k; o++)
      for (let i = 0; i < c.n; i++)
        J.data[(b * c.k + o) * size + o * c.n + i] = x.data[b * c.n + i];
  for (let r = 0; r < rows; r++)
    for (let j = 0; j < c.m; j++) J.data[r * size + c.k * c.n + j] = P[r * c.m + j];
  const A = refMatmul(transpose(J), J);
  const bVec = Float64Array.from({ length: size }, (_, j) =>
    y.reduce((s, v, r) => s + J.data[r * size + j] * v, 0),
  );
  const theta = at ?? uniform(rng, size, -1, 1);
  const params = {
    q: { w: array(theta.slice(0, c.k * c.n), [c.k, c.n]) },
    theta: array(theta.slice(c.k * c.n), [c.m]),
  };
  return {
    model,
    loss,
    params,
    batch: { x: array(x.data, [c.B, c.n]), y: array(y, [rows]) },
    A,
    b: bVec,
    y,
    theta,
    size,
  };
}

const matVec = (A: Mat, v: ArrayLike<number>): Float64Array =>
  Float64Array.from({ length: A.rows }, (_, i) =>
    Array.from(v).reduce((s, vj, j) => s + A.data[i * A.cols + j] * vj, 0),
  );

async function quadraticGradient(
  pr: ReturnType<typeof quadraticProblem>,
  rho: number,
): Promise<Float64Array> {
  const train = await compileTrainStep({
    model: pr.model,
    loss: pr.loss,
    optimizer: reng({ ...EXACT, rho }),
    params: pr.params,
    device: cpu,
  });
  await train.run(pr.batch);
  const state = (await train.state()) as unknown as {
    layers: LayerState[];
    velocity: { q: DeviceLayer; theta: DeviceArray };
  };
  return concat(
    await denseGradient(state.velocity.q, state.layers[0]),
    await state.velocity.theta.read(),
  );
}

async function e3Property(c: QuadraticCase): Promise<void> {
  const pr = quadraticProblem(c);
  const got = await quadraticGradient(pr, c.rho);
  // ∇L_G = (A + ρA²)θ − (I + ρA)b, in float64 from A and b.
  const Atheta = matVec(pr.A, pr.theta);
  const grad = Atheta.map((v, i) => v - pr.b[i]);
  const want = grad.map((v, i) => v + c.rho * matVec(pr.A, grad)[i]);
  // Both sides sum O(size) products of O(1) terms (A up to ~B·4 in size), ρ ≤ 10: rounding ~1e-15
  // relative unless ∇L_G cancels; the recovery through κ ≤ 2 inverses adds ~1e-15.
  // docs/algorithms.md's 1e-12.
  expect(
    track('E3 rel(G_G, (A + ρA²)θ − (I + ρA)b)', rel(got, want)),
    'E3 closed form',
  ).toBeLessThanOrEqual(1e-12);
  // Same unique minimizer for SPD A: at θ* = A⁻¹b, ∇L = 0 so ∇L_G = (I + ρA)∇L = 0, and ∇²L_G =
  // A + ρA² ≻ 0. Needs rows ≥ unknowns (B·k ≥ k·n + m) for A ≻ 0.
  const ev = eigenvalues(pr.A);
  const normA = ev[pr.size - 1];
  if (ev[0] > 1e-8 * normA) {
    const star = solve(pr.A, pr.b);
    const g0 = await quadraticGradient(quadraticProblem(c, star), c.rho);
    // Gaussian elimination is backward stable, so Aθ* − b is ~nε(‖A‖‖θ*‖ + ‖b‖) whatever κ(A); RENG
    // forms ∇L = Jᵀ(Jθ* − y) by autodiff, rounding ~nε(‖A‖‖θ*‖ + ‖J‖‖y‖), then (I + ρA) scales it:
    // ≤ 1e-12 (≈ 100·nε, n ≤ 16) of (‖A‖‖θ*‖ + √‖A‖‖y‖)(1 + ρ‖A‖).
    const scale =
      (normA * Math.hypot(...star) + Math.sqrt(normA) * Math.hypot(...pr.y)) * (1 + c.rho * normA);
    expect(
      track('E3 ‖∇L_G(A⁻¹b)‖ / ((‖A‖‖θ*‖ + ‖J‖‖y‖)(1 + ρ‖A‖))', Math.hypot(...g0) / scale),
      'E3 minimizer kept',
    ).toBeLessThanOrEqual(1e-12);
    expect(Math.min(...ev.map((l) => l + c.rho * l * l)), 'E3 ∇²L_G ≻ 0').toBeGreaterThan(0);
  }
  // L_G ≥ L everywhere: (ρ/2)‖∇L‖² ≥ 0 at random points (reference arithmetic).
  const rng = prng(c.seed + 3);
  for (let r = 0; r < 5; r++) {
    const t = uniform(rng, pr.size, -3, 3);
    const g = matVec(pr.A, t).map((v, i) => v - pr.b[i]);
    const L =
      0.5 * Array.from(matVec(pr.A, t)).reduce((s, v, i) => s + v * t[i], 0) -
      pr.b.reduce((s, v, i) => s + v * t[i], 0);
    const LG = L + 0.5 * c.rho * g.reduce((s, v) => s + v * v, 0);
    expect(LG, 'E3 L_G ≥ L').toBeGreaterThanOrEqual(L);
  }
}

describe('E3: quadratic closed form', () => {
  test('∇L_G = (A + ρA²)θ − (I + ρA)b; the minimizer A⁻¹b is kept; L_G ≥ L', async () => {
    await fc.assert(fc.asyncProperty(quadraticCase, e3Property), { numRuns: 20 });
    report(
      'E3 rel(G_G, (A + ρA²)θ − (I + ρA)b)',
      'E3 ‖∇L_G(A⁻¹b)‖ / ((‖A‖‖θ*‖ + ‖J‖‖y‖)(1 + ρ‖A‖))',
    );
  });
});

// ---------------------------------------------------------------------------------------------

describe('E4: finite-difference gradients (Karakida F-GR and the central variant)', () => {
  test(
    'the forward error halves with ε (ratio ∈ [1.6, 2.4] for ε ∈ {1e-3, ' +
      '5e-4}); the central one quarters (O(ε²))',
    async () => {
      await fc.assert(
        fc.asyncProperty(mlpCase, async (c) => {
          const pr = mlpProblem(c);
          // G_G read back as in E1 (recovery error ~1e-15·‖G‖). lr 0 and μ = 0: the same
          // parameters, and a fresh v = U at each of the two steps.
          const gradients = async (gradient: string, eps: readonly number[]) => {
            const train = await compileTrainStep({
              model: pr.model,
              loss: crossEntropy,
              optimizer: reng({ ...EXACT, lr: 0, rho: c.rho, gradient, fdEps: eps[0] }),
              params: pr.params,
              device: cpu,
            });
            const out: Float64Array[] = [];
            for (const e of eps) {
              train.setHyper({ fdEps: e }); // a runtime number: the same program
              await train.run(pr.batch);
              const state = (await train.state()) as unknown as {
                layers: LayerState[];
                velocity: { layers: DeviceLayer[] };
              };
              out.push(
                concat(
                  ...(await Promise.all(
                    state.velocity.layers.map((v, i) => denseGradient(v, state.layers[i])),
                  )),
                ),
              );
            }
            return out;
          };
          const [exact] = await gradients('double_backprop', [1e-3]);
          const forward = await gradients('fd_forward', [1e-3, 5e-4]);
          const central = await gradients('fd_central', [1e-3, 5e-4]);
          const err = (u: Float64Array) => Math.hypot(...u.map((v, i) => v - exact[i]));
          // RENG's difference quotients are §4.2's formulas: against the float64 reference the only
          // difference is rounding amplified by ρ/ε (≤ 2e4 × ε‖∇L‖ ≈ 4e-12 relative) and the
          // recovery.
          for (const [i, eps] of [1e-3, 5e-4].entries()) {
            expect(
              track(
                'E4 rel(fd_forward G, reference formula)',
                rel(
                  forward[i],
                  finiteDifferenceGradient(pr.objective, pr.theta, c.rho, eps, false),
                ),
              ),
              'E4 forward formula',
            ).toBeLessThanOrEqual(1e-9);
            expect(
              track(
                'E4 rel(fd_central G, reference formula)',
                rel(central[i], finiteDifferenceGradient(pr.objective, pr.theta, c.rho, eps, true)),
              ),
              'E4 central formula',
            ).toBeLessThanOrEqual(1e-9);
          }
          // The errors must stand well above that noise for a ratio to mean anything (skip a draw
          // whose third derivative along g nearly vanishes).
          fc.pre(err(central[1]) > 1e-10 * Math.hypot(...exact));
          // Forward: err(ε) = c₁ε + c₂ε² + …, so err(ε)/err(ε/2) = 2(1 + c₂ε/c₁)/(1 + c₂ε/2c₁) ≈ 2
          // + c₂ε/c₁.
          const fRatio = err(forward[0]) / err(forward[1]);
          trackMin('min E4 forward ratio', fRatio);
          track('E4 forward ratio', fRatio);
          expect(fRatio, 'E4 forward O(ε)').toBeGreaterThanOrEqual(1.6);
          expect(fRatio, 'E4 forward O(ε)').toBeLessThanOrEqual(2.4);
          // Central: odd terms cancel, err(ε) = c₃ε² + c₅ε⁴ + …: ratio ≈ 4 (asserted within ±20%,
          // as forward's ±20%).
          const cRatio = err(central[0]) / err(central[1]);
          trackMin('min E4 central ratio', cRatio);
          track('E4 central ratio', cRatio);
          expect(cRatio, 'E4 central O(ε²)').toBeGreaterThanOrEqual(3.2);
          expect(cRatio, 'E4 central O(ε²)').toBeLessThanOrEqual(4.8);
          expect(err(central[1]), 'E4 central beats forward').toBeLessThan(err(forward[1]));
        }),
        { numRuns: 12 },
      );
      report(
        'min E4 forward ratio',
        'E4 forward ratio',
        'min E4 central ratio',
        'E4 central ratio',
        'E4 rel(fd_forward G, reference formula)',
        'E4 rel(fd_central G, reference formula)',
      );
    },
  );
});

// ---------------------------------------------------------------------------------------------

describe('E5: ρ = 0 makes RENG RING', () => {
  test(
    'same damping coefficient: identical parameters and state over 3 steps ' +
      '(default momentum, decay, MC Fisher, Lazy Fisher)',
    async () => {
      await fc.assert(
        fc.asyncProperty(mlpCase, fc.integer({ min: 1, max: 3 }), async (c, inverseEvery) => {
          const pr = mlpProblem(c);
          // ρ = 0 with the default coefficient would be an undamped √0 = 0: give both the same c.
          const settings = {
            rho: 0,
            dampingCoef: 0.3,
            inverseEvery,
            newtonIters: 10,
            powerSteps: 10,
          };
          const read = async (optimizer: typeof ring | typeof reng) => {
            const train = await compileTrainStep({
              model: pr.model,
              loss: crossEntropy,
              optimizer: optimizer(settings) as never,
              params: pr.params,
              device: cpu,
            });
            for (let t = 0; t < 3; t++) await train.run(pr.batch);
            const leaves = (tree: unknown) =>
              flattenTree('test', tree, isArrayLeaf, 'an array').leaves as DeviceArray[];
            return concat(
              ...(await Promise.all(
                [...leaves(await train.params()), ...leaves(await train.state())].map((a) =>
                  a.read(),
                ),
              )),
            );
          };
          const [a, b] = [await read(ring), await read(reng)];
          // g + 0·Hg = g exactly (Hg finite), then the same ringStep on the same values, the same
          // sampled labels (same step keys): bitwise equal in practice; docs/algorithms.md asks rel
          // ≤ 1e-14.
          expect(
            track('E5 rel(RENG, RING) params+state', rel(b, a)),
            'E5 ρ = 0',
          ).toBeLessThanOrEqual(1e-14);
        }),
        { numRuns: 8 },
      );
      report('E5 rel(RENG, RING) params+state');
    },
  );
});

// ---------------------------------------------------------------------------------------------
// E6: a parameter outside every dense layer (a LayerNorm-like per-unit gain γ) is part of the
// global norm ½‖∇L‖², so H∇L of the dense layers includes H_{Dγ}∇_γL.

const gainCase = fc.record({
  seed: seedArb,
  B: fc.integer({ min: 1, max: 20 }),
  dIn: fc.integer({ min: 1, max: 4 }),
  hidden: fc.integer({ min: 1, max: 5 }),
  classes: fc.integer({ min: 2, max: 4 }),
  rho: rhoArb,
});
type GainCase = {
  seed: number;
  B: number;
  dIn: number;
  hidden: number;
  classes: number;
  rho: number;
};

function gainModel(
  dIn: number,
  hidden: number,
  classes: number,
): Model<{ l0: { w: Tensor; b?: Tensor }; gain: Tensor; l1: { w: Tensor; b?: Tensor } }> {
  const l0 = nn.dense(dIn, hidden, { name: 'l0' });
  const l1 = nn.dense(hidden, classes, { name: 'l1' });
  return {
    init: () => ({}) as never,
    apply: (p, x) => l1.apply(p.l1, mul(tanh(l0.apply(p.l0, x)), p.gain)),
  };
}

async function e6Property(c: GainCase): Promise<void> {
  const rng = prng(c.seed);
  const model = gainModel(c.dIn, c.hidden, c.classes);
  const x = mat(c.B, c.dIn, uniform(rng, c.B * c.dIn, -2, 2));
  const labels = Int32Array.from({ length: c.B }, () => int(rng, 0, c.classes - 1));
  const layout = gainMlpLayout(c.dIn, c.hidden, c.classes);
  const theta = uniform(rng, layout.b1[1], -1, 1);
  // gains in [0.5, 1.5)
  for (let j = layout.gain[0]; j < layout.gain[1]; j++) theta[j] = 0.5 + rng();
  const objective = gainMlpObjective(c.dIn, c.hidden, c.classes, x, labels);
  const block = (t: ArrayLike<number>, [lo, hi]: number[]) => Array.from(t).slice(lo, hi);
  const run = async (t: Float64Array) => {
    const params = {
      l0: {
        w: array(block(t, layout.w0), [c.hidden, c.dIn]),
        b: array(block(t, layout.b0), [c.hidden]),
      },
      gain: array(block(t, layout.gain), [c.hidden]),
      l1: {
        w: array(block(t, layout.w1), [c.classes, c.hidden]),
        b: array(block(t, layout.b1), [c.classes]),
      },
    };
    const train = await compileTrainStep({
      model,
      loss: crossEntropy,
      optimizer: reng({ ...EXACT, rho: c.rho }),
      params,
      device: cpu,
    });
    await train.run({ x: array(x.data, [c.B, c.dIn]), y: array(labels, [c.B], 'i32') });
    const state = (await train.state()) as unknown as {
      layers: LayerState[];
      velocity: { l0: DeviceLayer; gain: DeviceArray; l1: DeviceLayer };
    };
    const g0 = await denseGradient(state.velocity.l0, state.layers[0]);
    const g1 = await denseGradient(state.velocity.l1, state.layers[1]);
    // θ order: [W₀, b₀] from layer 0's flat [W | b], then γ (its velocity is g_G exactly: fallback
    // SGD, μ = 0), then layer 1.
    return concat(g0, await state.velocity.gain.read(), g1);
  };
  const dense = (v: ArrayLike<number>) =>
    concat(block(v, [0, layout.gain[0]]), block(v, [layout.w1[0], layout.b1[1]]));
  const mask = Float64Array.from({ length: theta.length }, (_, j) =>
    j >= layout.gain[0] && j < layout.gain[1] ? 0 : 1,
  );
  const checkAt = async (t: Float64Array) => {
    const got = await run(t);
    const H = hessianByDifferences(objective, t, HESSIAN_STEP);
    const global = regularizedGradient(objective, t, c.rho, H);
    const denseOnly = regularizedGradient(objective, t, c.rho, H, mask);
    // As E1 (same stencil, same recovery): rel ≤ 1e-10 against the global-norm reference, all
    // blocks.
    expect(
      track('E6 rel(G_G, global-norm g + ρHg)', rel(got, global)),
      'E6 global norm',
    ).toBeLessThanOrEqual(1e-10);
    return { got, global, denseOnly };
  };
  const here = await checkAt(theta);
  // The dense blocks differ from a norm over the dense layers only by ρ·H_{Dγ}∇_γL. Where that is
  // visible (≥ 1e-7 relative, 1000× the tolerance above; computed on the reference alone), RENG
  // must be on the global side of it.
  const gap = rel(dense(here.global), dense(here.denseOnly));
  if (gap >= 1e-7) {
    trackMin(
      'min E6 rel(dense G_G, dense-only-norm reference) / gap',
      rel(dense(here.got), dense(here.denseOnly)) / gap,
    );
    expect(
      rel(dense(here.got), dense(here.denseOnly)),
      'E6 not the dense-only norm',
    ).toBeGreaterThanOrEqual(0.5 * gap);
  }
  // docs/algorithms.md's form: perturb the gain; the dense layers' G_G changes, by what the
  // global-norm reference predicts.
  const moved = Float64Array.from(theta);
  moved[layout.gain[0]] += 0.25;
  const there = await checkAt(moved);
  const change = dense(there.got).map((v, i) => v - dense(here.got)[i]);
  const predicted = dense(there.global).map((v, i) => v - dense(here.global)[i]);
  expect(Math.hypot(...change), 'E6 dense G_G changes').toBeGreaterThan(0);
  // Differences of two 1e-12-accurate vectors over a change of size ~0.25·‖∂G/∂γ‖: 1e-8 relative.
  expect(
    track('E6 rel(ΔG_G dense, predicted)', rel(change, predicted)),
    'E6 perturbation',
  ).toBeLessThanOrEqual(1e-8);
}

describe('E6: the norm in ½‖∇L‖² is global, non-dense parameters included', () => {
  test(
    'a per-unit gain outside the dense layers: RENG matches the ' +
      'global-norm reference, not the dense-only one; perturbing the gain ' +
      'moves the dense G_G as predicted',
    async () => {
      await fc.assert(fc.asyncProperty(gainCase, e6Property), { numRuns: 15 });
      report(
        'E6 rel(G_G, global-norm g + ρHg)',
        'min E6 rel(dense G_G, dense-only-norm reference) / gap',
        'E6 rel(ΔG_G dense, predicted)',
      );
    },
  );
});

// ---------------------------------------------------------------------------------------------

describe('degenerate factors under RENG: LoRA from B = 0', () => {
  test(
    'Γ_A = 0 while G_G,A = ρ·(H∇L)_A ≠ 0: Γ_d⁻¹ = I and the first step on ' +
      'A is exactly −η·G_G,A·Λ_d⁻¹',
    async () => {
      const model = loraMlp();
      const batch = threeClassBatch();
      const [lr, rho] = [0.05, 0.01];
      const params = model.init(3) as {
        fc1: { a: HostArray; b: HostArray };
        head: Record<string, HostArray>;
      };
      const optimizer = reng({
        lr,
        rho,
        momentum: 0,
        weightDecay: 0,
        statDecay: 0,
        inverseEvery: 1,
        fisher: 'empirical',
        powerSteps: 100,
        newtonIters: 20,
      });
      const train = await compileTrainStep({
        model,
        loss: crossEntropy,
        optimizer,
        params,
        device: cpu,
      });
      await train.run(batch);
      const state = (await train.state()) as {
        layers: { gamma: DeviceArray; gammaInv: DeviceArray; lambdaInv: DeviceArray }[];
      };
      // Layer 0 is LoRA's A (taps in call order: A, B, head).
      const [gammaA, gammaInvA, lambdaInvA] = await Promise.all([
        state.layers[0].gamma.read(),
        state.layers[0].gammaInv.read(),
        state.layers[0].lambdaInv.read(),
      ]);
      expect(Array.from(gammaA).every((v) => v === 0)).toBe(true);
      const r = params.fc1.a.shape[0];
      expect(Array.from(gammaInvA)).toEqual(
        Array.from({ length: r * r }, (_, i) => (i % (r + 1) === 0 ? 1 : 0)),
      );
      // G_G,A from grng's grad and hvp (checked against dense Hessians in E1), on the float64
      // interpreter.
      const gG = jit(
        (p: Parameters<typeof model.apply>[0], xs: Tensor, ys: Tensor) => {
          const loss = (q: typeof p) => crossEntropy(model.apply(q, xs), ys);
          const g = grad(loss)(p) as typeof p;
          return add(g.fc1.a, mul(rho, (hvp(loss)(p, g) as typeof p).fc1.a));
        },
        { device: cpu },
      );
      const gGA = await (await gG(params, batch.x, batch.y)).read();
      expect(Math.sqrt(gGA.reduce((acc, v) => acc + v * v, 0))).toBeGreaterThan(1e-6);
      const dIn = params.fc1.a.shape[1];
      const after = (await train.params()) as { fc1: { a: DeviceArray } };
      const moved = await after.fc1.a.read();
      const expected = refMatmul(mat(r, dIn, gGA), mat(dIn, dIn, lambdaInvA));
      const step = mat(
        r,
        dIn,
        moved.map((v, i) => (v - params.fc1.a.data[i]) / -lr),
      );
      // Same float64 products in another order (a few roundings: 1e-12 relative), plus reading the
      // step back from θ − ηU: one rounding of θ per entry, ε·max|θ|·√n/(η‖U‖) relative.
      const norm = Math.sqrt(expected.data.reduce((acc, v) => acc + v * v, 0));
      const readBack =
        (2 ** -52 * Math.max(...Array.from(params.fc1.a.data, Math.abs)) * Math.sqrt(r * dIn)) /
        (lr * norm);
      expect(rel(step, expected)).toBeLessThanOrEqual(1e-12 + readBack);
    },
  );
});

describe('compiled: RENG on WebGPU equals the float32 interpreter', () => {
  test(
    '2-layer MLP with a LoRA-adapted first layer (three Kronecker-factored ' +
      'layers), double backprop, 3 steps',
    async () => {
      const model = loraMlp();
      const batch = threeClassBatch();
      // LoRA's B starts at zero, which makes Γ of A zero (its damped form is then I, see the next
      // describe). Start from a nonzero B so that all three layers are preconditioned here.
      const start = model.init(3) as {
        fc1: { a: HostArray; b: HostArray };
        head: Record<string, HostArray>;
      };
      const params = {
        ...start,
        fc1: {
          a: start.fc1.a,
          b: array(uniform(prng(4), start.fc1.b.data.length, -0.3, 0.3), start.fc1.b.shape),
        },
      };
      const initial = flattenTree(
        'test',
        params,
        (v): v is HostArray => typeof v === 'object' && v !== null && 'data' in v,
        'a host array',
      ).leaves.map((h) => h.data);
      const run = async (device: Device) => {
        // One program (inverses every step), short power and Newton–Schulz runs: compiling them on
        // llvmpipe is slow.
        const optimizer = reng({
          lr: 0.05,
          rho: 0.01,
          inverseEvery: 1,
          newtonIters: 6,
          powerSteps: 6,
        });
        const train = await compileTrainStep({
          model,
          loss: crossEntropy,
          optimizer,
          params,
          device,
        });
        const losses: number[] = [];
        for (let t = 0; t < 3; t++) losses.push((await train.run(batch)).loss);
        const { leaves } = flattenTree('test', await train.params(), isArrayLeaf, 'an array');
        return { losses, params: await Promise.all(leaves.map((l) => (l as DeviceArray).read())) };
      };
      const gpu = await run(await gpuDevice());
      const ref = await run(await createDevice({ kind: 'cpu', precision: 'f32' }));
      let worstDiff = 0;
      let worstMove = 0;
      gpu.params.forEach((p, k) =>
        p.forEach((v, i) => {
          worstDiff = Math.max(worstDiff, Math.abs(v - ref.params[k][i]));
          worstMove = Math.max(worstMove, Math.abs(ref.params[k][i] - initial[k][i]));
        }),
      );
      console.log(
        `RENG WebGPU vs f32 interpreter: max |Δθ| ` +
          `${worstDiff.toExponential(2)} (largest parameter move ` +
          `${worstMove.toExponential(2)}); losses ` +
          `${gpu.losses.map((l) => l.toFixed(4)).join(' → ')}`,
      );
      // As RING's check (ring.test.ts): ~ε32 per operation through the preconditioner's κ ≤ 22,
      // plus the Hessian-vector product's extra forward/backward (a few more rounding layers,
      // scaled by ρ = 0.01): 1e-4 of the largest move over 3 steps.
      expect(worstDiff).toBeLessThanOrEqual(1e-4 * Math.max(1, worstMove));
      expect(gpu.losses[2]).toBeLessThan(gpu.losses[0]);
    },
  );
});
