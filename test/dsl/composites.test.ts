// Composite ops (written in the DSL) against independent float64 formulas written here, evaluated
// on the float64 interpreter. Nothing in the references uses grng.
//
// Tolerances: both sides are float64; the composites and the references differ only in
// association order and in the max-shift of logsumexp, so the error is a few ulps times the
// number of terms (≤ 30 here) times the magnitude of the terms: ≤ 1e-13 on values of size ≤ 1e2.
// TOL = 1e-12 (scaled: absolute below 1, relative above) leaves an order of headroom and is
// still ~10 orders below any formula mistake.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  concat,
  crossEntropy,
  eye,
  globalSqnorm,
  grad,
  input,
  logsumexp,
  logSoftmax,
  mean,
  meanSquaredError,
  norm,
  oneHot,
  outer,
  pad,
  relu,
  sigmoid,
  slice,
  softmax,
  sqnorm,
  trace,
  type Tensor,
} from '../../index.js';
import { hostFunction, type ArgSpec } from '../support/host-function.js';
import { maxScaledError } from '../support/numeric.js';
import { prng, uniform } from '../support/random.js';

const TOL = 1e-12;

/** Evaluates `f` once on the float64 interpreter and returns its first output. */
function run(
  f: (...xs: Tensor[]) => Tensor,
  specs: readonly ArgSpec[],
  ...values: Float64Array[]
): Float64Array {
  return hostFunction(f, specs)(...values)[0];
}
const f32 = (...shape: number[]): ArgSpec => ({ shape });
const i32 = (...shape: number[]): ArgSpec => ({ shape, dtype: 'i32' });
const F = (xs: readonly number[]): Float64Array => Float64Array.from(xs);

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = TOL): void {
  expect(actual.length).toBe(expected.length);
  const err = maxScaledError(actual, expected);
  if (!(err <= tol))
    throw new Error(
      `max scaled error ${err} > ${tol}\n actual   ` +
        `${Array.from(actual).join(', ')}\n expected ` +
        `${Array.from(expected).join(', ')}`,
    );
}

// ---- independent references (row-major, last axis = rows of length n) ----
const rows = (x: Float64Array, n: number): number[][] =>
  Array.from({ length: x.length / n }, (_, r) => Array.from(x.subarray(r * n, (r + 1) * n)));
/** log Σ exp, computed with the max shift (the textbook stable form). */
const lseRef = (r: readonly number[]): number => {
  const m = Math.max(...r);
  return m + Math.log(r.reduce((s, v) => s + Math.exp(v - m), 0));
};
const softmaxRef = (r: readonly number[]): number[] => r.map((v) => Math.exp(v - lseRef(r)));
const sigmoidRef = (v: number): number => 1 / (1 + Math.exp(-v));

/** Random [B, C] logits from a seed, scaled to ±scale. */
const shapeAndSeed = fc.record({
  b: fc.integer({ min: 1, max: 4 }),
  c: fc.integer({ min: 2, max: 6 }),
  seed: fc.nat(),
  scale: fc.constantFrom(1, 5, 30),
});

describe('reductions and normalizers', () => {
  test('mean over all axes, one axis, and with keepdims', () => {
    const x = uniform(prng(1), 12, -3, 3);
    const all = x.reduce((s, v) => s + v, 0) / 12;
    expectClose(
      run((t) => mean(t), [f32(3, 4)], x),
      [all],
    );
    const perRow = rows(x, 4).map((r) => r.reduce((s, v) => s + v, 0) / 4);
    expectClose(
      run((t) => mean(t, 1), [f32(3, 4)], x),
      perRow,
    );
    const perCol = [0, 1, 2, 3].map((j) => (x[j] + x[4 + j] + x[8 + j]) / 3);
    expectClose(
      run((t) => mean(t, 0, true), [f32(3, 4)], x),
      perCol,
    );
    expect(mean(input('m', [3, 4]), 0, true).shape).toEqual([1, 4]);
    expect(mean(input('m', [3, 4]), [0, 1]).shape).toEqual([]);
  });

  test('softmax, logSoftmax and logsumexp along the last axis match the formulas', () => {
    fc.assert(
      fc.property(shapeAndSeed, ({ b, c, seed, scale }) => {
        const z = uniform(prng(seed), b * c, -scale, scale);
        const zr = rows(z, c);
        expectClose(
          run((t) => logsumexp(t), [f32(b, c)], z),
          zr.map(lseRef),
        );
        expectClose(
          run((t) => logsumexp(t, -1, true), [f32(b, c)], z),
          zr.map(lseRef),
        );
        expectClose(
          run((t) => softmax(t), [f32(b, c)], z),
          zr.flatMap(softmaxRef),
        );
        expectClose(
          run((t) => logSoftmax(t), [f32(b, c)], z),
          zr.flatMap((r) => r.map((v) => v - lseRef(r))),
        );
      }),
      { numRuns: 30 },
    );
  });

  test('softmax along axis 0 normalizes columns', () => {
    const z = uniform(prng(7), 6, -2, 2); // [3, 2]
    const cols = [0, 1].map((j) => [z[j], z[2 + j], z[4 + j]]);
    const sm = cols.map(softmaxRef);
    expectClose(
      run((t) => softmax(t, 0), [f32(3, 2)], z),
      [sm[0][0], sm[1][0], sm[0][1], sm[1][1], sm[0][2], sm[1][2]],
    );
  });

  test('logsumexp of large logits does not overflow', () => {
    // Naively exp(1000) = Infinity; the exact answers are below.
    const lse = hostFunction((t) => logsumexp(t), [f32(4, 2)]);
    const z = F([1000, 1000, 1000, 0, -1000, -1000, 1e4, 1e4 - 1]);
    const expected = [
      1000 + Math.LN2,
      1000 + Math.log1p(Math.exp(-1000)),
      -1000 + Math.LN2,
      1e4 + Math.log1p(Math.exp(-1)),
    ];
    const got = lse(z)[0];
    expect(Array.from(got).every(Number.isFinite)).toBe(true);
    expectClose(got, expected);
    // softmax and logSoftmax stay finite and exact too.
    expectClose(
      run((t) => softmax(t), [f32(4, 2)], z),
      [0.5, 0.5, 1, 0, 0.5, 0.5, 1 / (1 + Math.exp(-1)), 1 / (1 + Math.exp(1))],
    );
    expectClose(
      run((t) => logSoftmax(t), [f32(1, 2)], F([1000, 0])),
      [0, -1000],
    );
  });
});

describe('crossEntropy (mean over the batch)', () => {
  test('integer labels and one-hot targets both give −mean log softmax[label]', () => {
    fc.assert(
      fc.property(shapeAndSeed, ({ b, c, seed, scale }) => {
        const rng = prng(seed);
        const z = uniform(rng, b * c, -scale, scale);
        const labels = Float64Array.from({ length: b }, () => Math.floor(rng() * c));
        const expected = -rows(z, c).reduce((s, r, i) => s + (r[labels[i]] - lseRef(r)), 0) / b;
        expectClose(
          run((t, l) => crossEntropy(t, l), [f32(b, c), i32(b)], z, labels),
          [expected],
        );
        const onehot = new Float64Array(b * c);
        labels.forEach((l, i) => (onehot[i * c + l] = 1));
        expectClose(
          run((t, y) => crossEntropy(t, y), [f32(b, c), f32(b, c)], z, onehot),
          [expected],
        );
      }),
      { numRuns: 30 },
    );
  });

  test('soft targets: −mean Σ p log softmax', () => {
    const z = F([0.5, -1, 2, 0, 0, 0]);
    const p = F([0.2, 0.3, 0.5, 1 / 3, 1 / 3, 1 / 3]);
    const expected =
      -rows(z, 3).reduce(
        (s, r, i) => s + r.reduce((t, v, j) => t + p[i * 3 + j] * (v - lseRef(r)), 0),
        0,
      ) / 2;
    expectClose(
      run((t, y) => crossEntropy(t, y), [f32(2, 3), f32(2, 3)], z, p),
      [expected],
    );
  });

  test('large logits stay finite: cross-entropy of [1000, 0] with label 1 is 1000', () => {
    expectClose(
      run((t, l) => crossEntropy(t, l), [f32(1, 2), i32(1)], F([1000, 0]), F([1])),
      [1000],
    );
  });

  test('gradient of softmax cross-entropy is (softmax(z) − onehot) / B', () => {
    fc.assert(
      fc.property(shapeAndSeed, ({ b, c, seed, scale }) => {
        const rng = prng(seed);
        const z = uniform(rng, b * c, -scale, scale);
        const labels = Float64Array.from({ length: b }, () => Math.floor(rng() * c));
        const expected = rows(z, c).flatMap((r, i) =>
          softmaxRef(r).map((s, j) => (s - (j === labels[i] ? 1 : 0)) / b),
        );
        const g = run(
          (t, l) => grad((u: Tensor) => crossEntropy(u, l))(t),
          [f32(b, c), i32(b)],
          z,
          labels,
        );
        expectClose(g, expected);
        const onehot = new Float64Array(b * c);
        labels.forEach((l, i) => (onehot[i * c + l] = 1));
        expectClose(
          run(
            (t, y) => grad((u: Tensor) => crossEntropy(u, y))(t),
            [f32(b, c), f32(b, c)],
            z,
            onehot,
          ),
          expected,
        );
      }),
      { numRuns: 30 },
    );
  });
});

describe('meanSquaredError (mean over every element)', () => {
  test('value mean((z − y)²) and gradient 2(z − y)/(B·C)', () => {
    fc.assert(
      fc.property(shapeAndSeed, ({ b, c, seed, scale }) => {
        const rng = prng(seed);
        const z = uniform(rng, b * c, -scale, scale);
        const y = uniform(rng, b * c, -scale, scale);
        const n = b * c;
        const expected = z.reduce((s, v, i) => s + (v - y[i]) ** 2, 0) / n;
        expectClose(
          run((t, u) => meanSquaredError(t, u), [f32(b, c), f32(b, c)], z, y),
          [expected],
        );
        expectClose(
          run(
            (t, u) => grad((v: Tensor) => meanSquaredError(v, u))(t),
            [f32(b, c), f32(b, c)],
            z,
            y,
          ),
          z.map((v, i) => (2 * (v - y[i])) / n),
        );
      }),
      { numRuns: 30 },
    );
  });
});

describe('linear algebra helpers', () => {
  test('oneHot: labels [2, 2] → [2, 2, 3] f32 with a 1 at each label', () => {
    const out = hostFunction((l) => oneHot(l, 3), [i32(2, 2)]);
    const labels = F([2, 0, 1, 1]);
    const expected = Array.from(labels).flatMap((l) => [0, 1, 2].map((k) => (k === l ? 1 : 0)));
    expect(Array.from(out(labels)[0])).toEqual(expected);
  });

  test('outer(u, v)[i, j] = u[i]·v[j]', () => {
    const u = uniform(prng(3), 3);
    const v = uniform(prng(4), 4);
    expectClose(
      run((p, q) => outer(p, q), [f32(3), f32(4)], u, v),
      Array.from(u).flatMap((a) => Array.from(v).map((b) => a * b)),
    );
  });

  test('eye(n) and eye(n, m)', () => {
    expect(Array.from(run(() => eye(3), []))).toEqual([1, 0, 0, 0, 1, 0, 0, 0, 1]);
    expect(Array.from(run(() => eye(2, 3), []))).toEqual([1, 0, 0, 0, 1, 0]);
    expect(eye(2, 3).shape).toEqual([2, 3]);
  });

  test('trace of a matrix and of a batch of matrices', () => {
    const x = uniform(prng(5), 18, -2, 2); // [2, 3, 3]
    const tr = (k: number) => x[9 * k] + x[9 * k + 4] + x[9 * k + 8];
    expectClose(
      run((t) => trace(t), [f32(2, 3, 3)], x),
      [tr(0), tr(1)],
    );
    expectClose(
      run((t) => trace(t), [f32(3, 3)], x.subarray(0, 9)),
      [tr(0)],
    );
  });

  test('sqnorm, norm (1, 2, ∞) and globalSqnorm', () => {
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 1, max: 8 }), (seed, n) => {
        const rng = prng(seed);
        const x = uniform(rng, n, -4, 4);
        const y = uniform(rng, 6, -4, 4);
        const z = uniform(rng, 1, -4, 4);
        const ss = (a: Float64Array) => a.reduce((s, v) => s + v * v, 0);
        expectClose(
          run((t) => sqnorm(t), [f32(n)], x),
          [ss(x)],
        );
        expectClose(
          run((t) => norm(t), [f32(n)], x),
          [Math.sqrt(ss(x))],
        );
        expectClose(
          run((t) => norm(t, 2), [f32(n)], x),
          [Math.sqrt(ss(x))],
        );
        expectClose(
          run((t) => norm(t, 1), [f32(n)], x),
          [x.reduce((s, v) => s + Math.abs(v), 0)],
        );
        expectClose(
          run((t) => norm(t, Infinity), [f32(n)], x),
          [Math.max(...Array.from(x, Math.abs))],
        );
        expectClose(
          run((a, b, c) => globalSqnorm([a, b, c]), [f32(n), f32(2, 3), f32()], x, y, z),
          [ss(x) + ss(y) + ss(z)],
        );
      }),
      { numRuns: 30 },
    );
  });
});

describe('movement composites', () => {
  const x = Float64Array.from({ length: 6 }, (_, i) => i + 1); // [[1, 2, 3], [4, 5, 6]]
  const y = F([7, 8, 9]); // [1, 3]

  test('concat along axis 0 and axis 1', () => {
    expect(Array.from(run((a, b) => concat([a, b], 0), [f32(2, 3), f32(1, 3)], x, y))).toEqual([
      1, 2, 3, 4, 5, 6, 7, 8, 9,
    ]);
    const z = F([10, 20]); // [2, 1]
    expect(Array.from(run((a, b) => concat([a, b, a], -1), [f32(2, 3), f32(2, 1)], x, z))).toEqual([
      1, 2, 3, 10, 1, 2, 3, 4, 5, 6, 20, 4, 5, 6,
    ]);
  });

  test('slice with negative indices and partial starts', () => {
    expect(Array.from(run((a) => slice(a, [0, 1], [2, 3]), [f32(2, 3)], x))).toEqual([2, 3, 5, 6]);
    expect(Array.from(run((a) => slice(a, [-1]), [f32(2, 3)], x))).toEqual([4, 5, 6]);
    expect(Array.from(run((a) => slice(a, [0, -2], [1, -1]), [f32(2, 3)], x))).toEqual([2]);
  });

  test('pad with zeros before and after', () => {
    expect(Array.from(run((a) => pad(a, [1, 0], [0, 2]), [f32(2, 3)], x))).toEqual([
      0, 0, 0, 0, 0, 1, 2, 3, 0, 0, 4, 5, 6, 0, 0,
    ]);
  });

  test('slice undoes concat and pad', () => {
    expect(
      Array.from(run((a, b) => slice(concat([a, b], 0), [2], [3]), [f32(2, 3), f32(1, 3)], x, y)),
    ).toEqual([7, 8, 9]);
    expect(
      Array.from(run((a) => slice(pad(a, [1, 2], [3, 0]), [1, 2], [3, 5]), [f32(2, 3)], x)),
    ).toEqual(Array.from(x));
  });
});

describe('activations', () => {
  test('relu and sigmoid match max(x, 0) and 1 / (1 + e^(−x)) on moderate inputs', () => {
    fc.assert(
      fc.property(fc.nat(), (seed) => {
        const x = uniform(prng(seed), 10, -8, 8);
        expect(Array.from(run((t) => relu(t), [f32(10)], x))).toEqual(
          Array.from(x, (v) => Math.max(v, 0)),
        );
        expectClose(
          run((t) => sigmoid(t), [f32(10)], x),
          Array.from(x, sigmoidRef),
        );
      }),
      { numRuns: 30 },
    );
  });

  test('sigmoid saturates without overflow at ±1000', () => {
    const got = run((t) => sigmoid(t), [f32(4)], F([1000, -1000, 0, 40]));
    expectClose(got, [1, 0, 0.5, sigmoidRef(40)]);
  });

  test('sigmoid keeps its relative precision in the left tail', () => {
    // σ(x) for x ≪ 0 is tiny but perfectly representable (σ(−40) ≈ 4.2e−18); 1/(1 + e^(−x)) gets
    // it to an ulp. Written as ½(1 + tanh(x/2)), 1 + tanh cancels catastrophically: σ(−40) comes
    // out as exactly 0 in float64 (and σ(x) = 0 for x < −17 in float32), so log(sigmoid(x)) is −∞.
    const xs = F([-20, -30, -40, -80]);
    const got = run((t) => sigmoid(t), [f32(4)], xs);
    const expected = Array.from(xs, sigmoidRef);
    const relErr = Math.max(...Array.from(got, (g, i) => Math.abs(g - expected[i]) / expected[i]));
    // Relative error budget: a few ulps (1e-15) for a well-conditioned evaluation; 1e-12 is
    // generous.
    expect(relErr).toBeLessThan(1e-12);
    expect(Array.from(run((t) => sigmoid(t).log(), [f32(4)], xs)).every(Number.isFinite)).toBe(
      true,
    );
  });
});
