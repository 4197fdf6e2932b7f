// Odd sizes on WebGPU vs the float32 interpreter: matmuls whose sizes are not multiples of the
// register tile (8×16), batched and through transposed operands; reductions over every axis
// set; broadcasts of 257-long vectors.
//
// Bounds: matmul and sums accumulate in the same sequential order as the interpreter, so the
// results agree to a few f32 roundings of the partial sums: |Δ| ≤ 8·2^-24·Σ|terms| (K ≤ 65).
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { add, exp, input, matmul, max, mul, pow, sub, sum, tanh, type Tensor } from '../../index.js';
import { interpret } from '../../runtime/interpreter.js';
import { gpuDevice } from '../support/gpu.js';
import { prng, seedArb, uniform } from '../support/random.js';

/** Unit roundoff of f32: each rounding errs by at most this fraction of the value. */
const ULP = 2 ** -24;
const SIZES = [1, 3, 17, 65];

async function check(build: (...xs: Tensor[]) => Tensor, shapes: readonly number[][], seed: number, bound: (ref: Float64Array, abs: Float64Array) => (i: number) => number) {
  const rng = prng(seed);
  const names = shapes.map((_, i) => `s${i}`);
  const xs = shapes.map((s, i) => input(names[i], s));
  const out = build(...xs);
  const values = shapes.map((s) => uniform(rng, s.reduce((a, d) => a * d, 1), -1, 1));
  const ref = interpret([out.node], new Map(names.map((n, i) => [n, values[i]] as const)), { precision: 'f32' })[0];
  // Σ|terms|: the same program on absolute values bounds every partial sum.
  const abs = interpret([out.node], new Map(names.map((n, i) => [n, values[i].map(Math.abs)] as const)))[0];
  const gpu = await gpuDevice();
  const [got] = await gpu.execute([out.node], new Map(names.map((n, i) => [n, gpu.upload(values[i], shapes[i], 'f32')] as const)));
  const g = await got.read();
  const tol = bound(ref, abs);
  expect(g.length).toBe(ref.length);
  ref.forEach((r, i) => expect(Math.abs(g[i] - r)).toBeLessThanOrEqual(tol(i)));
}

describe('WebGPU on odd sizes', () => {
  test('matmul (plain, batched, transposed) for sizes 1, 3, 17, 65', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...SIZES), fc.constantFrom(...SIZES), fc.constantFrom(...SIZES), fc.constantFrom(1, 2), fc.boolean(), seedArb, async (m, k, n, batch, transposed, seed) => {
        const bShape = transposed ? [batch, n, k] : [batch, k, n];
        await check((a, b) => matmul(a, transposed ? b.mT : b), [[batch, m, k], bShape], seed, (_r, abs) => (i) => 8 * ULP * abs[i]);
      }),
      { numRuns: 30 },
    );
  });

  test('sum and max over every axis set of a [17, 3, 65] tensor', async () => {
    const axesSets = [[0], [1], [2], [0, 1], [0, 2], [1, 2], [0, 1, 2]];
    for (const axes of axesSets) {
      // 17·3·65 terms at most: sequential f32 sums round at most once per term.
      await check((x) => sum(x, axes), [[17, 3, 65]], axes.length, (_r, abs) => (i) => 3315 * ULP * abs[i]);
      await check((x) => max(x, axes), [[17, 3, 65]], 10 + axes.length, () => () => 0); // max is exact
    }
  });

  test('broadcasts of a 257-long vector against a [3, 257] matrix, fused with exp', async () => {
    // WGSL allows exp an error of 3 + 2·|x| ULP; here |x| ≤ 2, so 7 ULP (one ULP ≤ 2^-23·|r|).
    await check((a, v) => exp(add(a, v)), [[3, 257], [257]], 5, (ref) => (i) => 7 * 2 ** -23 * Math.abs(ref[i]));
  });
});

describe('vectorized elementwise kernels (vec4)', () => {
  test('an elementwise update with a scalar hyperparameter runs on vec4s and matches the interpreter', async () => {
    const gpu = await gpuDevice();
    const build = (x: Tensor, y: Tensor, lr: Tensor) => sub(x, mul(lr, add(tanh(mul(x, y)), pow(add(mul(y, y), 0.5), -1.5))));
    const shapes = [[3, 256], [3, 256], []];
    const xs = shapes.map((s, i) => input(`v${i}`, s));
    expect(gpu.explain([build(xs[0], xs[1], xs[2]).node], true)).toContain('array<vec4<f32>>');
    // tanh/pow within a few ULP on the software adapters; with the O(1) terms here, 8 ULP.
    await check(build, shapes, 11, (ref) => (i) => 8 * 2 ** -23 * (1 + Math.abs(ref[i])));
  });
});

describe('long reductions (a workgroup per output)', () => {
  test('sums and maxima over thousands of elements, with a fused producer', async () => {
    const gpu = await gpuDevice();
    expect(gpu.explain([sum(input('w', [70000])).node], true)).toContain('workgroupBarrier');
    // Summation order differs from the interpreter's sequential one: |Δ| ≤ n·u·Σ|terms|.
    await check((x) => sum(exp(mul(x, 0.5))), [[70000]], 21, (_r, abs) => (i) => 70000 * ULP * abs[i]);
    await check((x) => sum(x, 1), [[3, 4099]], 22, (_r, abs) => (i) => 4099 * ULP * abs[i]);
    await check((x) => max(x, [0, 2]), [[40, 3, 50]], 23, () => () => 0); // max is exact in any order
  });
});
