// grng/testing's plain-JavaScript PRNG (testing/reference-random.ts) against the DSL's
// (dsl/random.ts) evaluated by jit on the float64 interpreter, for random keys, shapes and data:
// 1. the hash, keys and every sampler agree bit for bit (normal and categorical too: both sides
//    run the same float64 formula with the same Math functions, so no tolerance is needed);
// 2. the documented derivations are the ones the code uses: stepKey against a compiled step's
//    ctx.key, mcLabelKey against kronecker.ts fisherTaps and Sophia's Gauss–Newton–Bartlett
//    labels, hutchinsonProbeKey against Sophia's Hutchinson probes;
// 3. the comparisons can fail: mutants (a flipped key bit, a fold off by one, the wrong label
//    key, normals rounded once to f32) are caught, and shrunk.
// Ties are generated on purpose (p equal to the draws, logits that cancel the Gumbel noise), since
// random data almost never hits the boundaries where f32 rounding or the tie rule decide.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  array,
  bernoulli,
  cast,
  categorical,
  compileOptimizer,
  defineOptimizer,
  foldIn,
  jit,
  normal,
  onesLike,
  prngKey,
  rademacher,
  randint,
  randomBits,
  split,
  sum,
  threefry2x32,
  treeMap,
  uniform,
  zeros,
  type DeviceArray,
  type HostArray,
  type Tensor,
} from '../../index.js';
import type { ParamTree } from '../../dsl/optimizer.js';
import { fisherTaps } from '../../optimizers/kronecker.js';
import {
  sophiaGaussNewtonBartlettEstimate,
  sophiaHutchinsonEstimate,
} from '../../optimizers/sophia.js';
import { CpuDevice } from '../../runtime/cpu-device.js';
import * as reference from '../../testing/reference-random.js';
import type { Key } from '../../testing/reference-random.js';

/** The suite's seed (test/support/fast-check-setup.ts prints it; GRNG_SEED overrides it). */
const SEED = fc.readConfigureGlobal().seed ?? 20261128;
const f64 = new CpuDevice('f64');

/** The implementation under test: the module, or a mutant of it. */
type Impl = typeof reference;

/** `f`'s outputs, traced by jit and run on the float64 interpreter. */
async function interpreted(
  f: (...inputs: Tensor[]) => Tensor[],
  ...args: HostArray[]
): Promise<number[][]> {
  const outs = (await jit(f, { device: f64 })(...args)) as DeviceArray[];
  return Promise.all(outs.map(async (o) => Array.from(await o.read())));
}

const keyArray = (k: Key): HostArray => array(Int32Array.from(k), [2], 'i32');
const i32Array = (v: number): HostArray => array(Int32Array.of(v), [], 'i32');
const size = (shape: readonly number[]): number => shape.reduce((a, d) => a * d, 1);

const i32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
const keyArb = fc.tuple(i32, i32);
/** Rank 0–3 with dimensions 0–5: scalars, empty shapes and odd sizes. */
const shapeArb = fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 3 });

// ---------------------------------------------------------------------------------------------
// The properties, for any implementation (section 3 runs them on mutants)

/** Threefry on random counters, randomBits, foldIn, split and prngKey: equal words. */
function hashAndKeys(impl: Impl) {
  return fc.asyncProperty(
    keyArb,
    shapeArb,
    i32,
    fc.integer({ min: -(2 ** 31), max: 2 ** 32 - 1 }), // prngKey reads [2^31, 2^32) as its bits
    fc.integer({ min: 1, max: 4 }),
    fc.array(fc.tuple(i32, i32, i32, i32), { minLength: 1, maxLength: 6 }),
    async (key, shape, data, seed, n, words) => {
      const column = (j: number) =>
        array(
          Int32Array.from(words, (w) => w[j]),
          [words.length],
          'i32',
        );
      const got = await interpreted(
        (k, d, k0, k1, c0, c1) => [
          ...threefry2x32(k0, k1, c0, c1),
          randomBits(k, shape),
          foldIn(k, d),
          foldIn(k, data), // a number folded in
          ...split(k, n),
          prngKey(seed),
          prngKey(d), // an i32 scalar tensor as the seed
        ],
        keyArray(key),
        i32Array(data),
        column(0),
        column(1),
        column(2),
        column(3),
      );
      const hashed = words.map(([k0, k1, c0, c1]) => impl.threefry2x32(k0, k1, c0, c1));
      const want = [
        hashed.map((w) => w[0]),
        hashed.map((w) => w[1]),
        Array.from(impl.randomBits(key, shape)),
        impl.foldIn(key, data),
        impl.foldIn(key, data),
        ...impl.split(key, n),
        impl.prngKey(seed),
        impl.prngKey(data),
      ].map((w) => Array.from(w));
      expect(got).toEqual(want);
    },
  );
}

/** Reals of every scale up to `max` (fc.double alone gives mostly subnormals and bounds). */
const realArb = (max: number) =>
  fc
    .tuple(fc.integer({ min: -997, max: 997 }), fc.integer({ min: -6, max: 0 }))
    .map(([m, e]) => (m / 997) * max * 10 ** e);
/** [lo, hi) ranges: the default, and random finite ones (bounds rounded to f32 by both sides). */
const rangeArb = fc.oneof(
  fc.constant([0, 1] as const),
  fc
    .tuple(realArb(1e3), realArb(1e3))
    .filter(([a, b]) => a !== b)
    .map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as const),
);
/** randint bounds: small spans, and spans up to 2^31 − 1 anywhere in i32. */
const intRangeArb = fc
  .tuple(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 2 }), fc.boolean())
  .chain(([lo, small]) =>
    fc
      .integer({ min: 1, max: Math.min(small ? 20 : 2 ** 31 - 1, 2 ** 31 - 1 - lo) })
      .map((span) => [lo, lo + span] as const),
  );
/** Probabilities in [0, 1], some on the 2^-24 grid where uniform's values lie. */
const probabilityArb = fc.oneof(
  realArb(1).map(Math.abs),
  fc.integer({ min: 0, max: 2 ** 24 }).map((k) => k * 2 ** -24),
);

/**
 * uniform, normal, rademacher, bernoulli (number and per-element p) and randint: equal values.
 * With `tie`, p sits exactly on the draws: the per-element p is u itself (u < p is false
 * everywhere), and the number p is u₀·(1 + 2^-30), which rounds to the f32 u₀ (half an f32 ulp
 * is ≥ 2^-25 relative), so element 0 is false only if p is rounded as the DSL rounds it.
 */
function samplers(impl: Impl) {
  return fc.asyncProperty(
    keyArb,
    shapeArb.chain((shape) =>
      fc.tuple(
        fc.constant(shape),
        fc.array(probabilityArb, { minLength: size(shape), maxLength: size(shape) }),
      ),
    ),
    rangeArb,
    probabilityArb,
    fc.boolean(),
    intRangeArb,
    async (key, [shape, ps], [lo, hi], randomP, tie, [ilo, ihi]) => {
      const u = reference.uniform(key, shape);
      const pArray = tie ? u : Float64Array.from(ps);
      const p = tie && u.length > 0 ? u[0] * (1 + 2 ** -30) : randomP;
      const got = await interpreted(
        (k, q) => [
          uniform(k, shape),
          uniform(k, shape, lo, hi),
          normal(k, shape),
          rademacher(k, shape),
          bernoulli(k, p, shape),
          bernoulli(k, q),
          randint(k, shape, ilo, ihi),
        ],
        keyArray(key),
        array(pArray, shape),
      );
      // Exact for normal as well: Box–Muller is log, ×(−2), max, sqrt, ×2 − 1, ×π, cos and × in
      // float64 on both sides with the same Math functions, so any difference is a bug.
      const want = [
        impl.uniform(key, shape),
        impl.uniform(key, shape, lo, hi),
        impl.normal(key, shape),
        impl.rademacher(key, shape),
        impl.bernoulli(key, p, shape),
        impl.bernoulli(key, pArray, shape),
        impl.randint(key, shape, ilo, ihi),
      ].map((v) => Array.from(v));
      expect(got).toEqual(want);
    },
  );
}

/** Logits: mostly finite, sometimes ±∞ (masked or certain classes) or NaN (label −1). */
const logitArb = fc.oneof(
  { weight: 30, arbitrary: realArb(8) },
  { weight: 1, arbitrary: fc.constantFrom(-Infinity, Infinity, NaN) },
);
/**
 * Rank 1–3 logits with a random class axis (negative or not), non-empty classes; `tied` asks for
 * the logits that cancel the Gumbel noise (below).
 */
const categoricalCase = fc
  .array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 3 })
  .chain((shape) =>
    fc.record({
      shape: fc.constant(shape),
      axis: fc.integer({ min: -shape.length, max: shape.length - 1 }),
      logits: fc.array(logitArb, { minLength: size(shape), maxLength: size(shape) }),
      tied: fc.boolean(),
    }),
  );

/**
 * log(−log u) for each element's u = (2k + 1)·2^-24 of its random bits: as logits they cancel the
 * Gumbel noise −log(−log u) exactly, so every score is 0 and every row is a tie. (The noise's
 * floor, −log u ≥ 2^-26, never binds: −log u ≥ −log(1 − 2^-24) ≈ 2^-24.)
 */
const cancellingLogits = (key: Key, shape: readonly number[]): Float64Array =>
  Float64Array.from(reference.randomBits(key, shape), (b) =>
    Math.log(-Math.log(((b >>> 8) | 1) * 2 ** -24)),
  );

function categoricalLabels(impl: Impl) {
  return fc.asyncProperty(keyArb, categoricalCase, async (key, { shape, axis, logits, tied }) => {
    const l = tied ? cancellingLogits(key, shape) : Float64Array.from(logits);
    const [got] = await interpreted(
      (k, x) => [categorical(k, x, axis)],
      keyArray(key),
      array(l, shape),
    );
    expect(got).toEqual(Array.from(impl.categorical(key, l, shape, axis)));
    // The DSL's tie rule: the highest index wins.
    const classes = shape.at(axis) as number;
    if (tied) expect(got).toEqual(got.map(() => classes - 1));
  });
}

/** [B, C] logits, as a classifier's output. */
const outputArb = fc
  .tuple(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 2, max: 5 }))
  .chain(([b, c]) =>
    fc
      .array(realArb(4), { minLength: b * c, maxLength: b * c })
      .map((v) => ({ shape: [b, c], logits: Float64Array.from(v) })),
  );

/** The labels of kronecker.ts fisherTaps (K-FAC, RING, RENG with fisher 'mc'). */
function fisherLabels(impl: Impl) {
  return fc.asyncProperty(keyArb, outputArb, async (key, { shape, logits }) => {
    const [got] = await interpreted(
      (k, output) => {
        let sampled: Tensor | undefined;
        fisherTaps(
          {
            taps: [],
            key: k,
            params: [],
            output: () => output,
            tapsFor: (labels) => {
              sampled = labels;
              return [];
            },
          },
          'mc',
          0,
          'test',
        );
        return [sampled as Tensor];
      },
      keyArray(key),
      array(logits, shape),
    );
    expect(got).toEqual(Array.from(impl.categorical(impl.mcLabelKey(key), logits, shape)));
  });
}

// ---------------------------------------------------------------------------------------------

describe('bit-identical to the DSL on the float64 interpreter', () => {
  test("Random123's known-answer vectors for Threefry-2x32-20", () => {
    // kat_vectors of Random123: key, counter → output.
    const vectors = [
      { k: [0, 0], c: [0, 0], y: [0x6b200159, 0x99ba4efe] },
      { k: [0xffffffff, 0xffffffff], c: [0xffffffff, 0xffffffff], y: [0x1cb996fc, 0xbb002be7] },
      { k: [0x13198a2e, 0x03707344], c: [0x243f6a88, 0x85a308d3], y: [0xc4923a9c, 0x483df7a0] },
    ];
    for (const { k, c, y } of vectors)
      expect(reference.threefry2x32(k[0], k[1], c[0], c[1])).toEqual([y[0] | 0, y[1] | 0]);
  });

  test('threefry2x32, randomBits, foldIn, split and prngKey give the same words', async () => {
    await fc.assert(hashAndKeys(reference), { seed: SEED, numRuns: 40 });
  });

  test('uniform, normal, rademacher, bernoulli and randint give the same values', async () => {
    await fc.assert(samplers(reference), { seed: SEED, numRuns: 40 });
  });

  test('categorical gives the same labels (rank 1–3, any axis, ±∞ and NaN logits)', async () => {
    await fc.assert(categoricalLabels(reference), { seed: SEED, numRuns: 60 });
  });
});

/** Sets its parameters to ctx.key's words and uniform(ctx.key, [4]): the step key, observed. */
const keyProbe = defineOptimizer({
  name: 'keyProbe',
  hyper: {},
  init: () => ({}),
  update: ({ key }) => ({ params: { key: cast(key, 'f32'), u: uniform(key, [4]) }, state: {} }),
});

describe('the derivations documented in reference-random.ts are those of the code', () => {
  test('stepKey(seed, t) is ctx.key of step t of a step compiled with that seed', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: -(2 ** 24), max: 2 ** 24 }), async (seed) => {
        const params = { key: array([0, 0]), u: array([0, 0, 0, 0]) };
        const opt = await compileOptimizer(keyProbe(), params, { device: f64, seed });
        for (let t = 1; t <= 3; t++) {
          await opt.step(params);
          const now = opt.params() as Record<'key' | 'u', DeviceArray>;
          const key = reference.stepKey(seed, t);
          expect(Array.from(await now.key.read()), `step ${t}`).toEqual([...key]);
          expect(Array.from(await now.u.read())).toEqual(Array.from(reference.uniform(key, [4])));
        }
      }),
      { seed: SEED, numRuns: 8 },
    );
  });

  test('mcLabelKey: the Monte-Carlo Fisher labels of kronecker.ts fisherTaps', async () => {
    await fc.assert(fisherLabels(reference), { seed: SEED, numRuns: 30 });
  });

  test("mcLabelKey: Sophia's Gauss–Newton–Bartlett labels", async () => {
    await fc.assert(
      fc.asyncProperty(keyArb, outputArb, async (key, { shape, logits }) => {
        const [got] = await interpreted(
          (k, output, w) => {
            let sampled: Tensor | undefined;
            sophiaGaussNewtonBartlettEstimate({
              params: { w },
              key: k,
              labels: zeros([shape[0]], 'i32'),
              output: () => output,
              loss: (p, labels) => {
                sampled = labels;
                return sum((p as { w: Tensor }).w);
              },
              map: treeMap,
            });
            return [sampled as Tensor];
          },
          keyArray(key),
          array(logits, shape),
          array([1]),
        );
        const want = reference.categorical(reference.mcLabelKey(key), logits, shape);
        expect(got).toEqual(Array.from(want));
      }),
      { seed: SEED, numRuns: 20 },
    );
  });

  test("hutchinsonProbeKey: Sophia's probes, leaf i in flattenTree order", async () => {
    // Leaves in sorted-key, then index order: a.0 [2, 3], a.1 [1], b [4] are leaves 0, 1, 2.
    const shapes = [[2, 3], [1], [4]];
    await fc.assert(
      fc.asyncProperty(keyArb, async (key) => {
        const got = await interpreted(
          (k, a0, a1, b) => {
            // hvp = 1 everywhere makes the estimate u ⊙ 1 = u, the probes themselves.
            const u = sophiaHutchinsonEstimate({
              params: { b, a: [a0, a1] },
              key: k,
              hvp: (v: ParamTree) => treeMap(onesLike, v),
              map: treeMap,
            }) as { a: Tensor[]; b: Tensor };
            return [...u.a, u.b];
          },
          keyArray(key),
          ...shapes.map((s) => array(new Float64Array(size(s)), s)),
        );
        const want = shapes.map((s, i) =>
          Array.from(reference.normal(reference.hutchinsonProbeKey(key, i), s)),
        );
        expect(got).toEqual(want);
      }),
      { seed: SEED, numRuns: 10 },
    );
  });
});

describe('the comparisons are sensitive', () => {
  /** Runs `property` on a mutant, expecting fast-check to find and shrink a failure. */
  async function caught<T>(property: fc.IAsyncPropertyWithHooks<T>): Promise<T> {
    const details = await fc.check(property, { seed: SEED, numRuns: 40 });
    expect(details.failed, 'the mutant passed').toBe(true);
    return details.counterexample as T;
  }

  test('a flipped key bit in randomBits is caught and shrunk to one element', async () => {
    const flipped: Impl = {
      ...reference,
      randomBits: (k, shape) => reference.randomBits([k[0] ^ (1 << 17), k[1]], shape),
    };
    const [, shape] = await caught(hashAndKeys(flipped));
    // Any non-empty shape shows it; shrinking goes down to a single element.
    expect(size(shape)).toBe(1);
  });

  test('a fold off by one, the wrong label key and f32-rounded normals are caught', async () => {
    await caught(hashAndKeys({ ...reference, foldIn: (k, d) => reference.foldIn(k, d + 1) }));
    await caught(fisherLabels({ ...reference, mcLabelKey: (k) => reference.foldIn(k, 2) }));
    // One rounding to f32 (~6e-8 relative) is enough: the comparison has no tolerance.
    const rounded = (k: Key, shape: readonly number[]) =>
      reference.normal(k, shape).map(Math.fround);
    await caught(samplers({ ...reference, normal: rounded }));
  });
});
