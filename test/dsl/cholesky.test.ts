// Cholesky factorization and triangular solves (the only factorization R-Kalman does) against
// float64 definitions: L lower triangular with a positive diagonal, L Lᵀ = A, and A X = B.
//
// Bounds: Cholesky and the substitutions are backward stable (Higham, Thms 8.5 and 10.3): the
// factor satisfies ‖LLᵀ − A‖ ≤ c·d·ε‖A‖ and the computed solution has a residual
// ‖AX − B‖ ≤ c·d·ε‖A‖‖X‖ whatever κ(A) — with c ≈ 3 and d ≤ 12, 3·12·1.1e-16 ≈ 4e-15 in float64
// (1e-13 asserted) and 3·12·6e-8 ≈ 2e-6 in f32 on WebGPU (1e-5 asserted).
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { cholesky, choleskySolve, input, solveTriangular } from '../../index.js';
import { interpret } from '../../runtime/interpreter.js';
import { gpuDevice } from '../support/gpu.js';
import { prng, seedArb, uniform } from '../support/random.js';

/** A random SPD matrix G Gᵀ + δ·I (row-major) with δ setting its conditioning. */
function spd(seed: number, d: number, delta: number): Float64Array {
  const g = uniform(prng(seed), d * d);
  const a = new Float64Array(d * d);
  for (let i = 0; i < d; i++)
    for (let j = 0; j < d; j++) {
      let s = i === j ? delta : 0;
      for (let k = 0; k < d; k++) s += g[i * d + k] * g[j * d + k];
      a[i * d + j] = s;
    }
  return a;
}

const norm = (x: ArrayLike<number>) => Math.sqrt(Array.from(x).reduce((acc, v) => acc + v * v, 0));

function matmulRows(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  n: number,
  k: number,
  m: number,
): Float64Array {
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * k + p] * b[p * m + j];
      out[i * m + j] = s;
    }
  return out;
}

describe('cholesky, solveTriangular, choleskySolve', () => {
  test(
    'float64: L is lower triangular with a positive diagonal, L Lᵀ = A, ' +
      'and A·choleskySolve(A, B) = B',
    () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 12 }),
          fc.integer({ min: 1, max: 4 }),
          fc.double({ min: -4, max: 0, noNaN: true }),
          seedArb,
          (d, k, logDelta, seed) => {
            const a = spd(seed, d, 10 ** logDelta);
            const b = uniform(prng(seed + 1), d * k);
            const [A, B] = [input('a', [d, d]), input('b', [d, k])];
            const [l, x] = interpret(
              [cholesky(A).node, choleskySolve(A, B).node],
              new Map([
                ['a', a],
                ['b', b],
              ]),
            );
            for (let i = 0; i < d; i++) {
              expect(l[i * d + i]).toBeGreaterThan(0);
              for (let j = i + 1; j < d; j++) expect(l[i * d + j]).toBe(0);
            }
            const lt = Float64Array.from(
              { length: d * d },
              (_, i) => l[(i % d) * d + Math.floor(i / d)],
            );
            const llt = matmulRows(l, lt, d, d, d);
            expect(norm(llt.map((v, i) => v - a[i]))).toBeLessThanOrEqual(1e-13 * norm(a));
            const ax = matmulRows(a, x, d, d, k);
            expect(norm(ax.map((v, i) => v - b[i]))).toBeLessThanOrEqual(1e-13 * norm(a) * norm(x));
          },
        ),
        { numRuns: 40 },
      );
    },
  );

  test('solveTriangular solves L X = B and Lᵀ X = B by substitution', () => {
    const d = 6;
    const a = spd(3, d, 0.5);
    const b = uniform(prng(4), d * 2);
    const [A, B] = [input('a', [d, d]), input('b', [d, 2])];
    const l = cholesky(A);
    const [lv, x, xt] = interpret(
      [l.node, solveTriangular(l, B).node, solveTriangular(l, B, { transpose: true }).node],
      new Map([
        ['a', a],
        ['b', b],
      ]),
    );
    const lt = Float64Array.from({ length: d * d }, (_, i) => lv[(i % d) * d + Math.floor(i / d)]);
    // Backward stable substitution: residual ≤ c·d·ε‖L‖‖X‖; ‖L‖‖X‖ ≤ κ(L)‖B‖ with κ(L) = √κ(A) ≤
    // 30: 1e-13·‖B‖.
    expect(norm(matmulRows(lv, x, d, d, 2).map((v, i) => v - b[i]))).toBeLessThanOrEqual(
      1e-13 * norm(b),
    );
    expect(norm(matmulRows(lt, xt, d, d, 2).map((v, i) => v - b[i]))).toBeLessThanOrEqual(
      1e-13 * norm(b),
    );
  });

  test('on WebGPU (f32) the solve matches within the conditioning bound', async () => {
    const gpu = await gpuDevice();
    const d = 12;
    const a = spd(7, d, 1);
    const b = uniform(prng(8), d * 3);
    const [A, B] = [input('a', [d, d]), input('b', [d, 3])];
    const [out] = await gpu.execute(
      [choleskySolve(A, B).node],
      new Map([
        ['a', gpu.upload(a, [d, d], 'f32')],
        ['b', gpu.upload(b, [d, 3], 'f32')],
      ]),
    );
    const x = await out.read();
    const ax = matmulRows(a, x, d, d, 3);
    expect(norm(ax.map((v, i) => v - b[i]))).toBeLessThanOrEqual(1e-5 * norm(a) * norm(x));
  });

  test('non-square input is a GrngError naming the shape', () => {
    expect(() => cholesky(input('a', [2, 3]))).toThrow(/\[2, 3\]/);
    expect(() => choleskySolve(input('a', [3, 3]), input('b', [2, 1]))).toThrow(/\[3, k\]/);
  });
});
