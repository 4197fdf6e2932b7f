// SGD, Adam and AdamW (docs/algorithms.md §6.1–6.3) against the independent float64 references in
// reference.ts, on random small problems, on the float64 interpreter and on WebGPU; and the
// closed-form properties B1–B3 of §8.5 on the float64 interpreter.
//
// Tolerances (each assertion repeats its reason):
// * float64 interpreter vs reference: 1e-12·max(1, |ref|). Both evaluate the same formulas in
//   float64 (possibly in another order); the only amplification is the cancellation in the bias
//   correction 1 − βᵗ, ≤ 1/(1 − β) ≤ 1e3 for β ≤ 0.999, over ≤ 6 steps on O(1) values:
//   ≲ 6·1e3·2^-53 ≈ 7e-13 at the very worst; typically ~1e-16.
// * WebGPU (f32) vs the reference started from the same f32-rounded values: a per-case bound from
//   counting f32 roundings (see sgdF32Bound and adamF32Bound).
import fc from 'fast-check';
import { afterAll, describe, expect, test } from 'vitest';
import {
  adam,
  adamw,
  array,
  compileOptimizer,
  createDevice,
  sgd,
  type Device,
  type DeviceArray,
  type Optimizer,
} from '../../index.js';
import { gpuDevice } from '../support/gpu.js';
import { prng, seedArb } from '../support/random.js';
import {
  f32,
  hostTree,
  randomTensors,
  readTree,
  ULP,
  worstRatio,
  worstScaled,
  type ListTree,
} from './harness.js';
import {
  adamReference,
  adamwReference,
  runReference,
  sgdReference,
  type AdamHyper,
  type ReferenceOptimizer,
  type SgdHyper,
  type Tensors,
} from './reference.js';

/** Unit roundoff of float64. */
const U64 = 2 ** -53;
/** float64 interpreter vs float64 reference (see the header): 1e-12·max(1, |ref|). */
const F64_TOL = 1e-12;
const GPU_RUNS = 8;

type Shapes = number[][];

/** Worst error/bound ratio per property, printed at the end (how much room each bound leaves). */
const worstSeen = new Map<string, number>();
const track = (name: string, ratio: number): number => {
  worstSeen.set(name, Math.max(worstSeen.get(name) ?? 0, ratio));
  return ratio;
};
afterAll(() =>
  console.log(
    [...worstSeen].map(([k, v]) => `${k}: worst error/bound ${v.toExponential(2)}`).join('\n'),
  ),
);

/** 1–3 parameter tensors of rank 0–2 with sides 1–4. */
const shapesArb = fc.array(fc.array(fc.integer({ min: 1, max: 4 }), { maxLength: 2 }), {
  minLength: 1,
  maxLength: 3,
});
const num = (min: number, max: number) =>
  fc.double({ min, max, noNaN: true, noDefaultInfinity: true });
/** 0 itself (a code path of its own: no momentum buffer, no decay) or a value in [min, max]. */
const zeroOr = (min: number, max: number) => fc.oneof(fc.constant(0), num(min, max));

const sgdHyperArb: fc.Arbitrary<SgdHyper> = fc
  .record({
    lr: num(1e-3, 0.5),
    momentum: zeroOr(0, 0.99),
    dampening: zeroOr(0, 1),
    weightDecay: zeroOr(0, 0.1),
    nesterov: fc.boolean(),
  })
  // PyTorch's rule (sgd validates it): Nesterov needs momentum > 0 and no dampening.
  .map((h) => (h.nesterov && h.momentum > 0 ? { ...h, dampening: 0 } : { ...h, nesterov: false }));

/** β₂ ≥ 0.9 keeps the Adam direction bounded (sMax below), which the f32 bound relies on. */
const adamHyperArb: fc.Arbitrary<AdamHyper> = fc.record({
  lr: num(1e-4, 0.1),
  beta1: zeroOr(0, 0.99),
  beta2: num(0.9, 0.999),
  eps: fc.oneof(fc.constant(1e-8), num(1e-8, 1e-3)),
  weightDecay: zeroOr(0, 0.1),
});

/**
 * Largest possible |m̂/(√v̂ + ε)| over T steps: m̂ is a convex combination of the gradients, so
 * |m̂| ≤ G = max|g_s|, and v̂ ≥ w·G² with w the smallest weight (1 − β₂)β₂^{T−1}/(1 − β₂ᵀ) of a
 * squared gradient in v̂. Hence |step| ≤ 1/√w (≈ 2.8 for β₂ = 0.9, T = 6; → √T as β₂ → 1).
 */
const adamStepMax = (beta2: number, T: number) =>
  Math.sqrt((1 - beta2 ** T) / ((1 - beta2) * beta2 ** (T - 1)));

/**
 * f32 bound for SGD after T steps, per element (|gpu − ref| ≤ this), A = the largest |θ|, |g̃|
 * or |b| of the reference run. Each f32 op errs by ≤ ½ ULP of operands ≤ 2A. Per step: g̃ 2 ops,
 * b 4 ops (its error carries forward damped by μ < 1, so ≤ 4T ULP·A by step T), d 2 ops, θ 2 ops.
 * d's error reaches θ times η: |Δθ_T| ≤ ULP·A·T·(2 + η(4T + 2)). 4× margin for the reading of
 * "magnitude" (A is a max over the whole run).
 */
function sgdF32Bound(h: SgdHyper, T: number, A: number): number {
  return 4 * ULP * A * T * (2 + h.lr * (4 * T + 2));
}

/**
 * f32 bound for Adam/AdamW after T steps, per element. Θ = the largest |θ| of the run.
 * * θ update (decoupled decay 3 ops, θ − η·s 2 ops): ≤ 3 ULP·Θ per step.
 * * s = m̂/(√v̂ + ε): the bias corrections 1 − βᵗ lose digits by cancellation: an error of
 *   K_POW ULP in pow(β, t) ≈ 1 is K_POW·ULP/(1 − βᵗ) ≤ K_POW·ULP/(1 − β) relative; √ halves v̂'s.
 *   WGSL allows division and sqrt 2.5 ULP: ≤ 12 ULP more relative. The moments' own roundings are
 *   ≤ 2 ULP·(1 − β₁ᵗ)G per step (terms of one magnitude), i.e. ≤ 2T ULP·G in m̂, ≤ 2T·sMax ULP in
 *   s.
 *   |s| ≤ sMax (adamStepMax); s's error reaches θ times η.
 * K_POW = 4: llvmpipe's pow is exp2(b·log2 a) with log2/exp2 within ~1 ULP each. (WGSL itself
 * only promises log2 near 1 to 2^-21 absolute; a hardware adapter could need more.)
 */
function adamF32Bound(h: AdamHyper, T: number, theta: number): number {
  const K_POW = 4;
  const sMax = adamStepMax(h.beta2, T);
  const sRel = K_POW / (1 - h.beta1) + K_POW / (2 * (1 - h.beta2)) + 12 + 2 * T;
  return ULP * T * (3 * theta + h.lr * sMax * sRel);
}

/** One optimizer family: its grng factory, its reference, and how its state trees correspond. */
interface Family<H> {
  readonly name: string;
  // `any`: each family has its own hyperparameter and state types.
  readonly make: (h: H) => Optimizer<any, any>;
  readonly reference: ReferenceOptimizer<H, never>;
  readonly hyperArb: fc.Arbitrary<H>;
  /** Pairs (compiled state tensors, reference state tensors) to compare after the last step. */
  readonly statePairs: (compiled: unknown, ref: never, h: H) => Promise<[Tensors, Tensors][]>;
  /** The f32 bound of one element after T steps of a reference run (see above). */
  readonly f32Bound: (
    h: H,
    T: number,
    run: { params: Float64Array[][]; grads: Float64Array[][] },
  ) => number;
}

const maxAbsOf = (xss: readonly Tensors[]): number =>
  Math.max(...xss.flatMap((xs) => xs.flatMap((x) => Array.from(x, Math.abs))));

const sgdFamily: Family<SgdHyper> = {
  name: 'sgd',
  make: (h) => sgd(h),
  reference: sgdReference as ReferenceOptimizer<SgdHyper, never>,
  hyperArb: sgdHyperArb,
  // With μ = 0 PyTorch keeps no buffer, so there is nothing to compare.
  statePairs: async (compiled, ref: { buf: Tensors | undefined }, h) =>
    h.momentum === 0
      ? []
      : [
          [
            await readTree((compiled as { momentum: ListTree<unknown> }).momentum),
            ref.buf as Tensors,
          ],
        ],
  f32Bound: (h, T, run) => {
    const theta = maxAbsOf(run.params);
    const A = theta + T * (maxAbsOf(run.grads) + h.weightDecay * theta);
    return sgdF32Bound(h, T, A);
  },
};

const adamState = async (
  compiled: unknown,
  ref: { m: Tensors; v: Tensors },
): Promise<[Tensors, Tensors][]> => {
  const s = compiled as { m: ListTree<unknown>; v: ListTree<unknown> };
  return [
    [await readTree(s.m), ref.m],
    [await readTree(s.v), ref.v],
  ];
};

const adamFamily: Family<AdamHyper> = {
  name: 'adam',
  make: (h) => adam(h),
  reference: adamReference as ReferenceOptimizer<AdamHyper, never>,
  hyperArb: adamHyperArb,
  statePairs: adamState,
  f32Bound: (h, T, run) => adamF32Bound(h, T, maxAbsOf(run.params)),
};

const adamwFamily: Family<AdamHyper> = {
  ...adamFamily,
  name: 'adamw',
  make: (h) => adamw(h),
  reference: adamwReference as ReferenceOptimizer<AdamHyper, never>,
};

const FAMILIES = [sgdFamily, adamFamily, adamwFamily] as Family<unknown>[];

interface Problem<H> {
  readonly shapes: Shapes;
  readonly steps: number;
  readonly seed: number;
  readonly hyper: H;
}

const problemArb = <H>(hyper: fc.Arbitrary<H>): fc.Arbitrary<Problem<H>> =>
  fc.record({ shapes: shapesArb, steps: fc.integer({ min: 3, max: 6 }), seed: seedArb, hyper });

/** θ₀ and one gradient list per step, uniform in [−1, 1). */
function problemData(p: Problem<unknown>): { theta0: Float64Array[]; grads: Float64Array[][] } {
  const rng = prng(p.seed);
  return {
    theta0: randomTensors(rng, p.shapes),
    grads: Array.from({ length: p.steps }, () => randomTensors(rng, p.shapes)),
  };
}

/** Runs the compiled optimizer; the parameters after every step, and the final state tree. */
async function runCompiled<H>(
  family: Family<H>,
  device: Device,
  p: Problem<H>,
  theta0: Tensors,
  grads: readonly Tensors[],
) {
  const opt = await compileOptimizer(family.make(p.hyper), hostTree(theta0, p.shapes), { device });
  const params: Float64Array[][] = [];
  for (const g of grads) {
    await opt.step(hostTree(g, p.shapes));
    params.push(await readTree(opt.params()));
  }
  expect(opt.steps).toBe(grads.length);
  return { params, state: opt.state() };
}

/** The hyperparameters a float32 device sees: every number rounded to f32. */
const roundHyper = <H>(h: H): H =>
  Object.fromEntries(
    Object.entries(h as object).map(([k, v]) => [k, typeof v === 'number' ? Math.fround(v) : v]),
  ) as H;

describe('baselines vs the float64 reference', () => {
  for (const family of FAMILIES) {
    test(
      `${family.name}: float64 interpreter matches the reference at every ` +
        `step (random problems)`,
      async () => {
        const cpu = await createDevice({ kind: 'cpu' });
        let worst = 0;
        await fc.assert(
          fc.asyncProperty(problemArb(family.hyperArb), async (p) => {
            const { theta0, grads } = problemData(p);
            const got = await runCompiled(family, cpu, p, theta0, grads);
            const want = runReference(
              family.reference,
              theta0,
              p.steps,
              (_, t) => grads[t - 1],
              () => p.hyper,
            );
            for (let t = 0; t < p.steps; t++) {
              const err = worstScaled(got.params[t], want.trajectory[t]);
              worst = Math.max(worst, err);
              // Same formulas in float64; ≤ 1e3 amplification by 1 − βᵗ (see header): 1e-12.
              expect(err, `step ${t + 1}`).toBeLessThanOrEqual(F64_TOL);
            }
            for (const [g, w] of await family.statePairs(got.state, want.state as never, p.hyper)) {
              const err = worstScaled(g, w);
              worst = Math.max(worst, err);
              expect(err, 'state').toBeLessThanOrEqual(F64_TOL);
            }
          }),
          { numRuns: 40 },
        );
        console.log(`${family.name} f64: worst scaled error ${worst.toExponential(2)}`);
      },
    );

    test(
      `${family.name}: WebGPU matches the reference within the f32 bound ` + `(random problems)`,
      async () => {
        const gpu = await gpuDevice();
        let [worst, worstError] = [0, 0];
        await fc.assert(
          fc.asyncProperty(problemArb(family.hyperArb), async (p) => {
            const data = problemData(p);
            // The reference starts from what the f32 device holds, so only arithmetic is compared.
            const [theta0, grads, hyper] = [
              f32(data.theta0),
              data.grads.map(f32),
              roundHyper(p.hyper),
            ];
            const got = await runCompiled(family, gpu, p, theta0, grads);
            const want = runReference(
              family.reference,
              theta0,
              p.steps,
              (_, t) => grads[t - 1],
              () => hyper,
            );
            for (let t = 0; t < p.steps; t++) {
              // The per-case bound from counting f32 roundings (sgdF32Bound / adamF32Bound).
              const bound = family.f32Bound(hyper, t + 1, {
                params: [theta0, ...want.trajectory.slice(0, t + 1)],
                grads: grads.slice(0, t + 1),
              });
              const ratio = worstRatio(got.params[t], want.trajectory[t], () => bound);
              worst = Math.max(worst, ratio);
              worstError = Math.max(worstError, worstScaled(got.params[t], want.trajectory[t]));
              expect(
                ratio,
                `step ${t + 1}: error / bound (bound ${bound.toExponential(2)})`,
              ).toBeLessThanOrEqual(1);
            }
          }),
          { numRuns: GPU_RUNS },
        );
        console.log(
          `${family.name} WebGPU: worst error / f32 bound ` +
            `${worst.toExponential(2)}, worst scaled error ` +
            `${worstError.toExponential(2)}`,
        );
      },
    );
  }
});

describe('§8.5 properties on the float64 interpreter', () => {
  test(
    'B1: SGD with momentum and a constant gradient follows the closed form ' + '(τ = 0)',
    async () => {
      const cpu = await createDevice({ kind: 'cpu' });
      await fc.assert(
        fc.asyncProperty(
          shapesArb,
          seedArb,
          zeroOr(0, 0.99),
          num(1e-3, 0.5),
          fc.integer({ min: 1, max: 8 }),
          async (shapes, seed, mu, lr, T) => {
            const rng = prng(seed);
            const [theta0, g] = [randomTensors(rng, shapes), randomTensors(rng, shapes)];
            const opt = await compileOptimizer(
              sgd({ lr, momentum: mu }),
              hostTree(theta0, shapes),
              {
                device: cpu,
              },
            );
            let sum = 0; // Σ_{s=1..t} (1 − μˢ)/(1 − μ)
            for (let t = 1; t <= T; t++) {
              await opt.step(hostTree(g, shapes));
              const bt = (1 - mu ** t) / (1 - mu);
              sum += bt;
              const theta = await readTree(opt.params());
              // θ_t = θ₀ − ηg·Σ(1 − μˢ)/(1 − μ), rel 1e-12 of the terms' size |θ₀| + η|g|Σ: the
              // interpreter does ≤ 6 roundings a step on terms of that size (≤ 50 in all, ~6e-15).
              const ratio = track(
                'B1 θ',
                worstRatio(
                  theta,
                  theta0.map((x, k) => x.map((v, i) => v - lr * g[k][i] * sum)),
                  (k, i) => 1e-12 * (Math.abs(theta0[k][i]) + lr * Math.abs(g[k][i]) * sum),
                ),
              );
              expect(ratio, `θ at step ${t}`).toBeLessThanOrEqual(1);
              if (mu > 0) {
                // b_t = g(1 − μᵗ)/(1 − μ): a sum of same-sign terms, ≤ 3t roundings: rel 1e-12.
                const b = await readTree((opt.state() as { momentum: unknown }).momentum);
                expect(
                  track(
                    'B1 b',
                    worstRatio(
                      b,
                      g.map((x) => x.map((v) => v * bt)),
                      (k, i) => 1e-12 * Math.abs(g[k][i]) * bt,
                    ),
                  ),
                  `b at step ${t}`,
                ).toBeLessThanOrEqual(1);
              }
            }
          },
        ),
      );
    },
  );

  test('B2: Adam with a constant gradient moves every step by exactly −ηg/(|g| + ε)', async () => {
    const cpu = await createDevice({ kind: 'cpu' });
    await fc.assert(
      fc.asyncProperty(
        shapesArb,
        seedArb,
        fc.record({
          lr: num(1e-4, 0.1),
          beta1: zeroOr(0, 0.99),
          beta2: zeroOr(0, 0.999),
          eps: zeroOr(0, 1e-3),
        }),
        fc.integer({ min: 1, max: 8 }),
        async (shapes, seed, h, T) => {
          const rng = prng(seed);
          const theta0 = randomTensors(rng, shapes);
          // |g| ∈ [0.01, 1] with a random sign: g ≠ 0, so ε = 0 is allowed.
          const g = randomTensors(rng, shapes, 0.01, 1).map((x) =>
            x.map((v) => (rng() < 0.5 ? -v : v)),
          );
          const opt = await compileOptimizer(adam(h), hostTree(theta0, shapes), { device: cpu });
          let prev = theta0;
          for (let t = 1; t <= T; t++) {
            await opt.step(hostTree(g, shapes));
            const theta = await readTree(opt.params());
            const delta = theta.map((x, k) => x.map((v, i) => v - prev[k][i]));
            // Rounding of Δθ = θ_t − θ_{t−1}: ≤ 2u(|θ_{t−1}| + |θ_t|) from θ's last rounding and
            // the subtraction, plus η|s|·rel(s): m and v add same-sign terms (≤ 3t roundings each),
            // 1 − βᵗ loses 1/(1 − β) digits, √ halves v̂'s error, 4 more ops; 4× margin.
            const relS =
              4 * U64 * (3 * t + 1 / (1 - h.beta1) + 0.5 * (3 * t + 1 / (1 - h.beta2)) + 4);
            const expected = g.map((x) => x.map((v) => (-h.lr * v) / (Math.abs(v) + h.eps)));
            const bound = (k: number, i: number) =>
              4 * U64 * (Math.abs(prev[k][i]) + Math.abs(theta[k][i])) +
              Math.abs(expected[k][i]) * relS;
            expect(
              track('B2 Δθ', worstRatio(delta, expected, bound)),
              `Δθ at step ${t}`,
            ).toBeLessThanOrEqual(1);
            prev = theta;
          }
        },
      ),
    );
  });

  test(
    'B2: with ε = 0 Adam is invariant to g → cg (any gradient sequence); ' +
      'the first step is at most η',
    async () => {
      const cpu = await createDevice({ kind: 'cpu' });
      await fc.assert(
        fc.asyncProperty(
          shapesArb,
          seedArb,
          fc.record({
            lr: num(1e-4, 0.1),
            beta1: zeroOr(0, 0.99),
            beta2: zeroOr(0, 0.999),
            weightDecay: fc.constant(0),
          }),
          num(1e-3, 1e3),
          fc.integer({ min: 1, max: 6 }),
          async (shapes, seed, h, c, T) => {
            const rng = prng(seed);
            const theta0 = randomTensors(rng, shapes);
            // |g| ≥ 0.05 so that √v̂ > 0 with ε = 0 (0/0 otherwise, as in PyTorch).
            const grads = Array.from({ length: T }, () =>
              randomTensors(rng, shapes, 0.05, 1).map((x) => x.map((v) => (rng() < 0.5 ? -v : v))),
            );
            const run = async (scale: number) => {
              const opt = await compileOptimizer(adam({ ...h, eps: 0 }), hostTree(theta0, shapes), {
                device: cpu,
              });
              const out: Float64Array[][] = [];
              for (const g of grads) {
                await opt.step(
                  hostTree(
                    g.map((x) => x.map((v) => v * scale)),
                    shapes,
                  ),
                );
                out.push(await readTree(opt.params()));
              }
              return out;
            };
            const [base, scaled] = [await run(1), await run(c)];
            // First step: m̂ = g, v̂ = g² exactly in real arithmetic, so |Δθ| = η|g|/|g| = η; in
            // float64 ≤ η(1 + 6u) + 2u|θ₁| (a few roundings of s ≈ ±1, then of θ₁).
            base[0].forEach((x, k) =>
              x.forEach((v, i) =>
                expect(Math.abs(v - theta0[k][i])).toBeLessThanOrEqual(
                  h.lr * (1 + 6 * U64) + 2 * U64 * Math.abs(v),
                ),
              ),
            );
            // Same trajectory for cg: s = m̂/√v̂ is homogeneous of degree 0. Each s has relative
            // error ≤ (3t + 1/(1 − β))·u ≤ 1.2e-13 (β ≤ 0.999, t ≤ 6) in either run: 1e-12 of the
            // trajectory's size |θ₀| + Σ|Δθ|.
            const size = theta0.map((x, k) =>
              x.map(
                (v, i) =>
                  Math.abs(v) +
                  base.reduce(
                    (acc, th, t) =>
                      acc + Math.abs(th[k][i] - (t === 0 ? theta0 : base[t - 1])[k][i]),
                    0,
                  ),
              ),
            );
            base.forEach((th, t) =>
              expect(
                track(
                  'B2 g → cg',
                  worstRatio(scaled[t], th, (k, i) => 1e-12 * size[k][i]),
                ),
                `step ${t + 1}, c = ${c}`,
              ).toBeLessThanOrEqual(1),
            );
          },
        ),
      );
    },
  );

  test(
    'B2: the first Adam step is at most η elementwise for any gradient, ε ' + 'and weight decay',
    async () => {
      const cpu = await createDevice({ kind: 'cpu' });
      await fc.assert(
        fc.asyncProperty(
          problemArb(adamHyperArb),
          fc.constantFrom(adam, adamw),
          async (p, make) => {
            const { theta0, grads } = problemData(p);
            const opt = await compileOptimizer(make(p.hyper), hostTree(theta0, p.shapes), {
              device: cpu,
            });
            await opt.step(hostTree(grads[0], p.shapes));
            const theta1 = await readTree(opt.params());
            // |m̂/(√v̂ + ε)| = |g̃|/(|g̃| + ε) ≤ 1: Δθ ≤ η (Adam; g̃ includes L2 decay). For AdamW
            // the decay ηλ|θ₀| comes on top of it. float64 slack: η·6u + 2u|θ₁|.
            const decay = make === adamw ? p.hyper.lr * p.hyper.weightDecay : 0;
            theta1.forEach((x, k) =>
              x.forEach((v, i) =>
                expect(Math.abs(v - theta0[k][i])).toBeLessThanOrEqual(
                  p.hyper.lr * (1 + 6 * U64) +
                    decay * Math.abs(theta0[k][i]) +
                    2 * U64 * Math.abs(v),
                ),
              ),
            );
          },
        ),
      );
    },
  );

  test('B3: AdamW with g ≡ 0 decays θ_t = θ₀(1 − ηλ)ᵗ, with m and v staying 0', async () => {
    const cpu = await createDevice({ kind: 'cpu' });
    await fc.assert(
      fc.asyncProperty(
        shapesArb,
        seedArb,
        num(1e-4, 0.1),
        num(1e-3, 0.5),
        num(1e-10, 1e-3),
        fc.integer({ min: 1, max: 10 }),
        async (shapes, seed, lr, weightDecay, eps, T) => {
          const theta0 = randomTensors(prng(seed), shapes);
          const zeros = shapes.map((s) => new Float64Array(s.reduce((a, d) => a * d, 1)));
          // ε > 0: with g ≡ 0 the Adam step is 0/(0 + ε) = 0 (0/0 for ε = 0, as in PyTorch).
          const opt = await compileOptimizer(
            adamw({ lr, weightDecay, eps }),
            hostTree(theta0, shapes),
            { device: cpu },
          );
          for (let t = 1; t <= T; t++) {
            await opt.step(hostTree(zeros, shapes));
            const theta = await readTree(opt.params());
            const want = theta0.map((x) => x.map((v) => v * (1 - lr * weightDecay) ** t));
            // A product of t factors (1 − ηλ), each with ≤ 2 roundings, and pow's ≤ 1 ULP: relative
            // ≤ (3t + 1)u ≈ 3.5e-15 at t = 10; asserted at 1e-12 relative.
            expect(
              track(
                'B3 decay',
                worstRatio(theta, want, (k, i) => 1e-12 * Math.abs(want[k][i])),
              ),
              `step ${t}`,
            ).toBeLessThanOrEqual(1);
          }
          const state = opt.state() as { m: unknown; v: unknown };
          for (const moment of [await readTree(state.m), await readTree(state.v)])
            expect(moment.every((x) => x.every((v) => v === 0))).toBe(true);
        },
      ),
    );
  });

  test(
    'B3: AdamW differs from Adam + L2 for λ > 0 on a non-isotropic ' +
      'quadratic (and equals it for λ = 0)',
    async () => {
      const cpu = await createDevice({ kind: 'cpu' });
      const shapes = [[3], [2, 2]];
      // f(θ) = ½ Σ dᵢθᵢ², curvatures spread over 3 decades (non-isotropic).
      const d = [Float64Array.of(0.1, 1, 10), Float64Array.of(0.3, 3, 30, 100)];
      const gradient = (theta: Tensors) => theta.map((x, k) => x.map((v, i) => d[k][i] * v));
      await fc.assert(
        fc.asyncProperty(
          seedArb,
          num(1e-2, 0.1),
          num(1e-2, 0.1),
          num(0.8, 0.95),
          fc.integer({ min: 2, max: 6 }),
          async (seed, lr, weightDecay, beta1, T) => {
            const rng = prng(seed);
            // |θ₀ᵢ| ∈ [0.5, 1]: the first steps already differ by ≈ ηλ|θ₀| ≥ 5e-5.
            const theta0 = randomTensors(rng, shapes, 0.5, 1).map((x) =>
              x.map((v) => (rng() < 0.5 ? -v : v)),
            );
            const run = async (make: typeof adam, wd: number) => {
              const opt = await compileOptimizer(
                make({ lr, beta1, weightDecay: wd }),
                hostTree(theta0, shapes),
                { device: cpu },
              );
              for (let t = 0; t < T; t++)
                await opt.step(hostTree(gradient(await readTree(opt.params())), shapes));
              return readTree(opt.params());
            };
            const [decoupled, coupled] = [
              await run(adamw, weightDecay),
              await run(adam, weightDecay),
            ];
            const diff = Math.max(
              ...decoupled.flatMap((x, k) => Array.from(x, (v, i) => Math.abs(v - coupled[k][i]))),
            );
            // docs/algorithms.md B3: the two forms of decay must be told apart (> 1e-6).
            expect(diff).toBeGreaterThan(1e-6);
            // With λ = 0 both are the same Adam update: identical to the last bit (adding 0·θ and
            // scaling by 1 − η·0 are exact).
            const [w0, a0] = [await run(adamw, 0), await run(adam, 0)];
            expect(w0.map((x) => Array.from(x))).toEqual(a0.map((x) => Array.from(x)));
          },
        ),
        { numRuns: 20 },
      );
    },
  );
});

describe('SGD momentum buffer (PyTorch semantics)', () => {
  test('turning momentum on mid-run starts the buffer from that step’s gradient', async () => {
    const cpu = await createDevice({ kind: 'cpu' });
    const opt = await compileOptimizer(sgd({ lr: 1, momentum: 0 }), [array([0])], { device: cpu });
    await opt.step([array([1])]);
    await opt.step([array([10])]);
    opt.setHyper({ momentum: 0.5 });
    await opt.step([array([100])]);
    // PyTorch keeps no buffer while μ = 0; the first step with μ ≠ 0 sets b = g = 100: θ = −1 − 10
    // − 100.
    expect(Array.from(await (opt.params() as DeviceArray[])[0].read())).toEqual([-111]);
    await opt.step([array([100])]);
    // Then b = 0.5·100 + 100 = 150.
    expect(Array.from(await (opt.params() as DeviceArray[])[0].read())).toEqual([-261]);
  });
});
