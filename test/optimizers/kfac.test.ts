// K-FAC against a float64 dense reference (docs/algorithms.md §6.4, factored Tikhonov damping): one
// step on a linear-softmax layer equals −η·solve(kron(Λ + π√λ I, Γ + √λ/π I), vec G) (column-major
// vec).
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
import { prng, seedArb, uniform } from '../support/random.js';

/** Solves M z = r by Gaussian elimination with partial pivoting (float64). */
function solve(m: number[][], r: number[]): number[] {
  const n = r.length;
  const a = m.map((row, i) => [...row, r[i]]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let i = c + 1; i < n; i++) if (Math.abs(a[i][c]) > Math.abs(a[p][c])) p = i;
    [a[c], a[p]] = [a[p], a[c]];
    for (let i = c + 1; i < n; i++) {
      const f = a[i][c] / a[c][c];
      for (let j = c; j <= n; j++) a[i][j] -= f * a[c][j];
    }
  }
  const z = new Array<number>(n).fill(0);
  for (let i = n - 1; i >= 0; i--)
    z[i] = (a[i][n] - a[i].slice(i + 1, n).reduce((s, v, j) => s + v * z[i + 1 + j], 0)) / a[i][i];
  return z;
}

const second = (rows: number[][], B: number) =>
  rows[0].map((_, i) => rows[0].map((_, j) => rows.reduce((s, r) => s + r[i] * r[j], 0) / B));
const traceOf = (m: number[][]) => m.reduce((s, row, i) => s + row[i], 0);

describe('kfac', () => {
  test(
    'one step is −η·(Λ_d ⊗ Γ_d)⁻¹ vec G with the π-rule damping (float64 ' + 'dense solve)',
    async () => {
      const cpu = await createDevice({ kind: 'cpu' });
      await fc.assert(
        fc.asyncProperty(
          seedArb,
          fc.integer({ min: 2, max: 4 }),
          fc.integer({ min: 2, max: 3 }),
          fc.double({ min: 1e-3, max: 1, noNaN: true }),
          async (seed, dIn, dOut, damping) => {
            const B = 6;
            const rng = prng(seed);
            const x = uniform(rng, B * dIn);
            const labels = Int32Array.from({ length: B }, () => Math.floor(rng() * dOut));
            const model = nn.dense(dIn, dOut);
            const p = model.init(seed) as { w: HostArray; b: HostArray };
            const lr = 0.5;
            // statDecay 0 with factorInit 'first': the factors are this batch's statistics; no
            // momentum, decay or clipping.
            const optimizer = kfac({
              lr,
              momentum: 0,
              damping,
              statDecay: 0,
              factorInit: 'first',
              fisher: 'empirical',
              covEvery: 1,
              inverseEvery: 1,
              klClip: 1e30,
              inverseIterations: 30,
            });
            const train = await compileTrainStep({
              model,
              loss: crossEntropy,
              optimizer,
              params: p,
              device: cpu,
            });
            await train.run({ x: array(x, [B, dIn]), y: array(labels, [B], 'i32') });
            const after = (await train.params()) as { w: DeviceArray; b: DeviceArray };
            const [w1, b1] = [await after.w.read(), await after.b.read()];

            const a = Array.from({ length: B }, (_, n) => [
              ...Array.from(x.slice(n * dIn, (n + 1) * dIn)),
              1,
            ]);
            const g = a.map((row, n) => {
              const s = Array.from({ length: dOut }, (_, o) =>
                row
                  .slice(0, dIn)
                  .reduce((acc, v, i) => acc + v * p.w.data[o * dIn + i], p.b.data[o]),
              );
              const e = s.map((v) => Math.exp(v - Math.max(...s)));
              const z = e.reduce((u, v) => u + v, 0);
              return e.map((v, o) => v / z - (labels[n] === o ? 1 : 0));
            });
            const lambda = second(a, B);
            const gamma = second(g, B);
            const G = Array.from({ length: dOut }, (_, o) =>
              Array.from(
                { length: dIn + 1 },
                (_, i) => a.reduce((s, row, n) => s + g[n][o] * row[i], 0) / B,
              ),
            );
            const pi = Math.sqrt(traceOf(lambda) / (dIn + 1) / (traceOf(gamma) / dOut));
            const lambdaD = lambda.map((row, i) =>
              row.map((v, j) => v + (i === j ? pi * Math.sqrt(damping) : 0)),
            );
            const gammaD = gamma.map((row, i) =>
              row.map((v, j) => v + (i === j ? Math.sqrt(damping) / pi : 0)),
            );
            // kron(Λ_d, Γ_d)[(j·dOut + i), (l·dOut + k)] = Λ_d[j][l]·Γ_d[i][k]; vec is
            // column-major: vec(G)[j·dOut + i] = G[i][j].
            const n = (dIn + 1) * dOut;
            const kron = Array.from({ length: n }, (_, r) =>
              Array.from(
                { length: n },
                (_, c) =>
                  lambdaD[Math.floor(r / dOut)][Math.floor(c / dOut)] * gammaD[r % dOut][c % dOut],
              ),
            );
            const v = solve(
              kron,
              Array.from({ length: n }, (_, r) => G[r % dOut][Math.floor(r / dOut)]),
            );
            for (let o = 0; o < dOut; o++) {
              for (let i = 0; i <= dIn; i++) {
                const want = (i < dIn ? p.w.data[o * dIn + i] : p.b.data[o]) - lr * v[i * dOut + o];
                const got = i < dIn ? w1[o * dIn + i] : b1[o];
                // float64 on both sides; Newton–Schulz converged (30 steps) to its floor ~κ·1e-16,
                // κ ≤ 1e3 here.
                expect(Math.abs(got - want)).toBeLessThanOrEqual(1e-9 * (1 + Math.abs(want)));
              }
            }
          },
        ),
        { numRuns: 15 },
      );
    },
  );
});
