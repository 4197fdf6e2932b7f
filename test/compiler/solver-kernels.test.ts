// The Cholesky and triangular-solve kernels on WebGPU (float32) against float64 definitions written
// here, on SPD matrices with condition numbers up to 1e6 and sizes up to a few hundred.
//
// Test matrices: A = D·C·D with C = I + ½·GGᵀ/‖GGᵀ‖_F (eigenvalues in [1, 1.5], κ(C) ≤ 1.5) and D
// diagonal spanning up to 10^2.9, so κ(A) ≤ 1.5·10^5.8 ≈ 1e6. Cholesky is invariant under such
// scaling (L = D·L_C), so float32 completes and its errors are those of C, row by row.
//
// Bounds (u = 2⁻²⁴, γ_n = nu/(1 − nu); a factor 3 because WGSL's division and sqrt need only be
// within 2.5 ULP, not correctly rounded):
// - Cholesky, componentwise backward error (Higham, Thm 10.3): |L̂L̂ᵀ − A| ≤ 3γ_{d+1}·|L̂||L̂ᵀ|.
// - Cholesky, forward error: ΔA = D·ΔC·D with ‖ΔC‖_F ≤ 3γ_{d+1}‖|L_C||L_Cᵀ|‖_F ≤ 3γ_{d+1}·1.5d, and
//   the first-order perturbation bound ‖ΔL_C‖_F ≤ κ(C)‖L_C‖₂‖ΔC‖_F/(√2‖C‖₂) (Sun 1991) gives
//   ‖D⁻¹(L̂ − L)‖_F ≤ 1.5·√1.5·4.5·γ_{d+1}·d/√2 ≤ 6γ_{d+1}·d (with room for the second order).
// - Triangular solves, componentwise residual (Higham, Thm 8.5): |op(L)X̂ − B| ≤ 3γ_d·|op(L)||X̂|.
// A skipped update, a wrong pivot or a transposed read breaks these by orders of magnitude.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { cholesky, input, solveTriangular } from '../../index.js';
import { LOOP_BUDGET } from '../../compiler/kernels/loop-budget.js';
import { choleskyPasses, substitutionPasses } from '../../compiler/wgsl/solvers.js';
import { gpuDevice } from '../support/gpu.js';
import { prng, uniform } from '../support/random.js';

const u = 2 ** -24;
const gamma = (n: number) => (n * u) / (1 - n * u);

/** A = D·C·D as above, with D and the float64 Cholesky factor L (row-major). */
function scaledSpd(seed: number, d: number, spread: number) {
  const rng = prng(seed);
  const g = uniform(rng, d * d);
  const ggt = new Float64Array(d * d);
  for (let i = 0; i < d; i++)
    for (let j = 0; j < d; j++)
      for (let k = 0; k < d; k++) ggt[i * d + j] += g[i * d + k] * g[j * d + k];
  const fro = Math.sqrt(ggt.reduce((s, v) => s + v * v, 0));
  const scale = Array.from(uniform(rng, d, 0, spread), (s) => 10 ** s);
  const a = new Float64Array(d * d);
  for (let i = 0; i < d; i++)
    for (let j = 0; j < d; j++)
      a[i * d + j] = scale[i] * scale[j] * ((i === j ? 1 : 0) + (0.5 * ggt[i * d + j]) / fro);
  return { a: a.map(Math.fround), scale };
}

/** The float64 Cholesky factor of `a` (left-looking, written from the definition). */
function reference(a: Float64Array, d: number): Float64Array {
  const l = new Float64Array(d * d);
  for (let j = 0; j < d; j++) {
    let s = a[j * d + j];
    for (let k = 0; k < j; k++) s -= l[j * d + k] ** 2;
    l[j * d + j] = Math.sqrt(s);
    for (let i = j + 1; i < d; i++) {
      let t = a[i * d + j];
      for (let k = 0; k < j; k++) t -= l[i * d + k] * l[j * d + k];
      l[i * d + j] = t / l[j * d + j];
    }
  }
  return l;
}

async function onGpu(
  node: ReturnType<typeof cholesky>['node'],
  values: [string, Float64Array, number[]][],
) {
  const gpu = await gpuDevice();
  const [out] = await gpu.execute(
    [node],
    new Map(values.map(([name, data, shape]) => [name, gpu.upload(data, shape, 'f32')])),
  );
  return out.read();
}

/** Element (i, j ≤ i) of L̂L̂ᵀ − A within 3γ_{d+1}·(|L̂||L̂ᵀ|)_ij. */
function expectBackwardStable(l: Float64Array, a: Float64Array, d: number, i: number, j: number) {
  let residual = -a[i * d + j];
  let magnitude = 0;
  for (let k = 0; k <= j; k++) {
    residual += l[i * d + k] * l[j * d + k];
    magnitude += Math.abs(l[i * d + k] * l[j * d + k]);
  }
  expect(Math.abs(residual)).toBeLessThanOrEqual(3 * gamma(d + 1) * magnitude);
}

describe('solver kernels on WebGPU (float32)', () => {
  test('Cholesky: backward error within 3γ_{d+1}|L||Lᵀ|, forward error within 6γ_{d+1}·d by rows, κ ≤ 1e6', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(1, 2, 5, 17, 40, 64),
        fc.double({ min: 0, max: 2.9, noNaN: true }),
        fc.integer({ min: 0, max: 1 << 20 }),
        async (d, spread, seed) => {
          const { a, scale } = scaledSpd(seed, d, spread);
          const got = await onGpu(cholesky(input('a', [d, d])).node, [['a', a, [d, d]]]);
          const want = reference(a, d);
          let forward = 0;
          for (let i = 0; i < d; i++)
            for (let j = 0; j < d; j++) {
              if (j > i) expect(got[i * d + j]).toBe(0);
              if (j > i) continue;
              expectBackwardStable(got, a, d, i, j);
              forward += ((got[i * d + j] - want[i * d + j]) / scale[i]) ** 2;
            }
          expect(Math.sqrt(forward)).toBeLessThanOrEqual(6 * gamma(d + 1) * d);
        },
      ),
      { numRuns: 12 },
    );
  });

  test('Cholesky of order 200: one workgroup, same bounds', async () => {
    const d = 200;
    const { a } = scaledSpd(3, d, 1);
    const got = await onGpu(cholesky(input('a', [d, d])).node, [['a', a, [d, d]]]);
    for (let i = 0; i < d; i += 7)
      for (let j = 0; j <= i; j += 3) expectBackwardStable(got, a, d, i, j);
  });

  // llvmpipe stops an invocation's loops after 65535 iterations in all (kernels/loop-budget.ts):
  // one workgroup factoring d = 320 loops d³/384 ≈ 85k times per lane, a substitution over d = 400
  // rows d²/2 = 80k times per column. Both now run in passes; before, d = 300 came out 16× off.
  test('Cholesky of order 320 and a substitution over 400 rows, past the loop limit: same bounds', async () => {
    const d = 320;
    const { a } = scaledSpd(5, d, 1);
    const got = await onGpu(cholesky(input('a', [d, d])).node, [['a', a, [d, d]]]);
    for (let i = 0; i < d; i += 5)
      for (let j = 0; j <= i; j += 3) expectBackwardStable(got, a, d, i, j);
    const n = 400;
    const l = reference(scaledSpd(6, n, 1).a, n).map(Math.fround);
    const rhs = uniform(prng(7), n, -1, 1).map(Math.fround);
    const x = await onGpu(solveTriangular(input('l', [n, n]), input('b', [n, 1])).node, [
      ['l', l, [n, n]],
      ['b', rhs, [n, 1]],
    ]);
    for (let i = 0; i < n; i++) {
      let [residual, magnitude] = [-rhs[i], 0];
      for (let j = 0; j <= i; j++) {
        residual += l[i * n + j] * x[j];
        magnitude += Math.abs(l[i * n + j] * x[j]);
      }
      expect(Math.abs(residual)).toBeLessThanOrEqual(3 * gamma(n) * magnitude);
    }
  });

  test('triangular solves L X = B and Lᵀ X = B: residual within 3γ_d|op(L)||X|', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(1, 3, 16, 50),
        fc.integer({ min: 1, max: 5 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 1 << 20 }),
        async (d, k, transpose, seed) => {
          const { a } = scaledSpd(seed, d, 1);
          const l = reference(a, d).map(Math.fround);
          // The solver reads the lower triangle only: garbage above it must change nothing.
          const withGarbage = l.map((v, i) => (i % d > Math.floor(i / d) ? 1e3 : v));
          const rhs = uniform(prng(seed + 1), d * k, -1, 1).map(Math.fround);
          const x = await onGpu(
            solveTriangular(input('l', [d, d]), input('b', [d, k]), { transpose }).node,
            [
              ['l', withGarbage, [d, d]],
              ['b', rhs, [d, k]],
            ],
          );
          const op = (i: number, j: number) => (transpose ? l[j * d + i] : l[i * d + j]);
          for (let i = 0; i < d; i++)
            for (let c = 0; c < k; c++) {
              let residual = -rhs[i * k + c];
              let magnitude = 0;
              for (let j = 0; j < d; j++) {
                residual += op(i, j) * x[j * k + c];
                magnitude += Math.abs(op(i, j) * x[j * k + c]);
              }
              expect(Math.abs(residual)).toBeLessThanOrEqual(3 * gamma(d) * magnitude);
            }
        },
      ),
      { numRuns: 12 },
    );
  });
});

describe('solver passes (dispatches over ranges of steps, within the loop budget)', () => {
  /**
   * Runs the Cholesky kernel's loops for `passes` as the WGSL does (lanes side by side between
   * barriers): the most loop iterations a lane ran in one pass, and what went wrong — a step not
   * done exactly once, or before what it reads (column j's pivot, then its column, then its
   * trailing updates; columns in order).
   */
  function simulate(d: number, lanes: number, passes: number[][]) {
    const copied = new Uint8Array(d * d);
    const pivoted = new Uint8Array(d);
    const scaled = new Uint8Array(d * d);
    const updated = new Uint8Array(d * d * d);
    const wrong: string[] = [];
    let [column, most] = [0, 0];
    const at = (j: number) => {
      if (j < column) wrong.push(`column ${j} after ${column}`); // columns in order
      column = j;
    };
    const lane = Array.from({ length: lanes }, (_, k) => k);
    for (const [t0, t1, j0, j1, i0, i1] of passes) {
      const loops = lane.map(() => 0);
      for (const k of lane) for (let t = t0 + k; t < t1; t += lanes, loops[k]++) copied[t]++;
      for (let j = j0; j < j1; j++) {
        lane.forEach((k) => loops[k]++);
        if (i0 === 0) {
          at(j);
          pivoted[j]++;
          for (const k of lane)
            for (let i = j + 1 + k; i < d; i += lanes, loops[k]++) scaled[i * d + j]++;
        }
        for (const k of lane)
          for (let i = Math.max(j + 1, i0) + k; i < i1; i += lanes, loops[k]++) {
            at(j);
            for (let c = j + 1; c <= i; c++, loops[k]++) {
              if (pivoted[j] * scaled[i * d + j] * scaled[c * d + j] !== 1)
                wrong.push(`update ${i},${c} by ${j} before its operands`);
              updated[(i * d + c) * d + j]++;
            }
          }
      }
      most = Math.max(most, ...loops);
    }
    if (!copied.every((n) => n === 1)) wrong.push('copy');
    if (!pivoted.every((n) => n === 1)) wrong.push('pivots');
    for (let i = 0; i < d; i++)
      for (let j = 0; j < d; j++) {
        if (scaled[i * d + j] !== (i > j ? 1 : 0)) wrong.push(`scale ${i},${j}`);
        for (let c = 0; c < d; c++)
          if (updated[(i * d + c) * d + j] !== (j < c && c <= i ? 1 : 0))
            wrong.push(`update ${i},${c} by ${j}`);
      }
    return { most, wrong: wrong.slice(0, 5) };
  }

  test('Cholesky: every step once, after what it reads, ≤ budget per lane', () => {
    // Small lanes and budgets reach the row splits of long columns at small sizes.
    for (const [d, lanes, budget] of [
      [1, 64, LOOP_BUDGET],
      [65, 64, LOOP_BUDGET],
      [300, 64, LOOP_BUDGET],
      [40, 4, 60],
      [23, 2, 25],
      [64, 8, 500],
    ]) {
      const { most, wrong } = simulate(d, lanes, choleskyPasses(d, lanes, budget));
      expect(wrong).toEqual([]);
      expect(most).toBeLessThanOrEqual(budget);
    }
  });

  test('substitution: consecutive step ranges covering every row, ≤ budget per column', () => {
    for (const [d, budget] of [
      [1, LOOP_BUDGET],
      [400, LOOP_BUDGET],
      [100, 50],
      [30, 1],
    ]) {
      const passes = substitutionPasses(d, budget);
      expect(passes[0][0]).toBe(0);
      expect(passes[passes.length - 1][1]).toBe(d);
      passes.forEach(([from, to], k) => {
        if (k > 0) expect(from).toBe(passes[k - 1][1]);
        expect(to).toBeGreaterThan(from);
        // loop iterations: a step, then one per earlier row (a single step may exceed the budget)
        let loops = 0;
        for (let step = from; step < to; step++) loops += step + 1;
        expect(to - from === 1 || loops <= budget).toBe(true);
      });
    }
  });
});
