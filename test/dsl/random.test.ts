// Counter-based random numbers (dsl/random.ts) and the i32 bitwise primitives under them.
//
// 1. Exactness. Threefry-2x32-20 matches Random123's known-answer vectors; randomBits matches an
//    independent JS model of the hash; bits, uniform, rademacher, bernoulli, randint, foldIn and
//    split are bit-identical on the float64 interpreter, the float32 interpreter and WebGPU, for
//    random runtime keys and odd shapes; the integer ops agree with BigInt models and with WebGPU
//    on edge values (0, ±1, 2^31 − 1, −2^31, shifts of 0, 31, 32, 33, −1, ...), with operands in
//    buffers and as literals (WGSL constant-folds those, with rules of its own).
// 2. Statistics, on the float64 interpreter (bit-identical to WebGPU by 1.), with n ≈ 10^5 and
//    bounds of 5 standard errors stated at each assertion: a fixed key makes every check
//    deterministic, and a correct generator passes each with probability ≥ 1 − 6e-7.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  add,
  bernoulli,
  bitAnd,
  bitOr,
  bitXor,
  categorical,
  createDevice,
  div,
  foldIn,
  full,
  input,
  mul,
  normal,
  prngKey,
  rademacher,
  randint,
  randomBits,
  shiftLeft,
  shiftRight,
  split,
  sub,
  threefry2x32,
  uniform,
  type Device,
  type DType,
  type Tensor,
} from '../../index.js';
import { interpret } from '../../runtime/interpreter.js';
import { gpuDevice } from '../support/gpu.js';

// ---------------------------------------------------------------------------------------------
// Independent models

/** Threefry-2x32-20 on JS int32 (Random123's reference algorithm). */
function threefryModel(k0: number, k1: number, c0: number, c1: number): [number, number] {
  const rot = [
    [13, 15, 26, 6],
    [17, 29, 16, 24],
  ];
  const ks = [k0 | 0, k1 | 0, (k0 ^ k1 ^ 0x1bd11bda) | 0];
  let x0 = (c0 + ks[0]) | 0;
  let x1 = (c1 + ks[1]) | 0;
  for (let g = 0; g < 5; g++) {
    for (const r of rot[g % 2]) {
      x0 = (x0 + x1) | 0;
      x1 = ((x1 << r) | (x1 >>> (32 - r))) ^ x0;
    }
    x0 = (x0 + ks[(g + 1) % 3]) | 0;
    x1 = (x1 + ks[(g + 2) % 3] + g + 1) | 0;
  }
  return [x0, x1];
}

/** randomBits' definition: word0 ^ word1 of Threefry at counters (0, i). */
const bitsModel = (k0: number, k1: number, n: number): number[] =>
  Array.from({ length: n }, (_, i) => {
    const [y0, y1] = threefryModel(k0, k1, 0, i);
    return y0 ^ y1;
  });

// WGSL semantics via BigInt (not JS's int32 operators, which the interpreter uses).
const wrap32 = (v: bigint): number => Number(BigInt.asIntN(32, v));
const u32 = (v: number): bigint => BigInt.asUintN(32, BigInt(v));
const amount = (s: number): bigint => BigInt(((s % 32) + 32) % 32);
const MODELS: Record<string, (a: number, b: number) => number> = {
  add: (a, b) => wrap32(BigInt(a) + BigInt(b)),
  sub: (a, b) => wrap32(BigInt(a) - BigInt(b)),
  mul: (a, b) => wrap32(BigInt(a) * BigInt(b)),
  // WGSL: e1 / 0 and (−2^31) / (−1) are e1; otherwise truncation.
  div: (a, b) => (b === 0 || (a === -(2 ** 31) && b === -1) ? a : wrap32(BigInt(a) / BigInt(b))),
  bitAnd: (a, b) => wrap32(u32(a) & u32(b)),
  bitOr: (a, b) => wrap32(u32(a) | u32(b)),
  bitXor: (a, b) => wrap32(u32(a) ^ u32(b)),
  shiftLeft: (a, b) => wrap32(u32(a) << amount(b)),
  shiftRight: (a, b) => wrap32(u32(a) >> amount(b)),
};
const OPS: Record<string, (a: Tensor, b: Tensor) => Tensor> = {
  add,
  sub,
  mul,
  div,
  bitAnd,
  bitOr,
  bitXor,
  shiftLeft,
  shiftRight,
};

// ---------------------------------------------------------------------------------------------
// Running programs

const cpu64 = createDevice({ kind: 'cpu' });
const cpu32 = createDevice({ kind: 'cpu', precision: 'f32' });

interface Arg {
  readonly data: ArrayLike<number>;
  readonly shape: readonly number[];
  readonly dtype: DType;
}

async function run(
  device: Device,
  outputs: readonly Tensor[],
  args: Record<string, Arg> = {},
): Promise<Float64Array[]> {
  const inputs = new Map(
    Object.entries(args).map(
      ([name, a]) => [name, device.upload(Float64Array.from(a.data), a.shape, a.dtype)] as const,
    ),
  );
  const results = await device.execute(
    outputs.map((t) => t.node),
    inputs,
  );
  return Promise.all(results.map((r) => r.read()));
}

/** The outputs on the float64 interpreter, the float32 interpreter and WebGPU. */
async function onAllDevices(
  outputs: readonly Tensor[],
  args: Record<string, Arg> = {},
): Promise<Float64Array[][]> {
  return Promise.all([
    run(await cpu64, outputs, args),
    run(await cpu32, outputs, args),
    run(await gpuDevice(), outputs, args),
  ]);
}

/** Values on the float64 interpreter, synchronously (statistics). */
const evaluate = (outputs: readonly Tensor[]): Float64Array[] =>
  interpret(
    outputs.map((t) => t.node),
    new Map(),
  );

const KEY = prngKey(20260611);
const i32Arb = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });

// ---------------------------------------------------------------------------------------------

describe('Threefry-2x32 and the i32 primitives', () => {
  test(
    "Random123's known-answer vectors for threefry2x32_20 (interpreter and " + 'WebGPU)',
    async () => {
      // kat_vectors of Random123 1.x: (ctr, key) → out; the third uses digits of π.
      const kat = [
        { ctr: [0, 0], key: [0, 0], out: [0x6b200159, 0x99ba4efe] },
        {
          ctr: [0xffffffff, 0xffffffff],
          key: [0xffffffff, 0xffffffff],
          out: [0x1cb996fc, 0xbb002be7],
        },
        {
          ctr: [0x243f6a88, 0x85a308d3],
          key: [0x13198a2e, 0x03707344],
          out: [0xc4923a9c, 0x483df7a0],
        },
      ];
      const col = (f: (v: (typeof kat)[number]) => number): Arg => ({
        data: kat.map((v) => f(v) | 0),
        shape: [3],
        dtype: 'i32',
      });
      const [k0, k1, c0, c1] = ['k0', 'k1', 'c0', 'c1'].map((n) => input(`kat_${n}`, [3], 'i32'));
      const out = threefry2x32(k0, k1, c0, c1);
      const args = {
        kat_k0: col((v) => v.key[0]),
        kat_k1: col((v) => v.key[1]),
        kat_c0: col((v) => v.ctr[0]),
        kat_c1: col((v) => v.ctr[1]),
      };
      for (const [y0, y1] of await onAllDevices(out, args)) {
        expect(Array.from(y0)).toEqual(kat.map((v) => v.out[0] | 0));
        expect(Array.from(y1)).toEqual(kat.map((v) => v.out[1] | 0));
      }
      kat.forEach((v) =>
        expect(threefryModel(v.key[0], v.key[1], v.ctr[0], v.ctr[1])).toEqual([
          v.out[0] | 0,
          v.out[1] | 0,
        ]),
      );
    },
  );

  test(
    'integer ops wrap and shift alike on the interpreter and WebGPU (edge ' +
      'values, buffers and literals)',
    async () => {
      const values = [
        0,
        1,
        -1,
        2,
        2 ** 31 - 1,
        -(2 ** 31),
        2 ** 30,
        0x55555555,
        -0x789abcdf,
        65536,
        46341,
      ];
      const amounts = [0, 1, 8, 31, 32, 33, 63, -1, -31, 2 ** 31 - 1, -(2 ** 31)];
      const pairs = values.flatMap((a) => [...values, ...amounts].map((b) => [a, b] as const));
      const x = input('edge_x', [pairs.length], 'i32');
      const y = input('edge_y', [pairs.length], 'i32');
      const names = Object.keys(OPS);
      // Literal operands: WGSL evaluates these at shader creation (shift amounts ≥ 32 and u32 bits
      // shifted out are errors there unless masked; so is an i32 division by a literal 0i).
      const literalPairs = [
        [-1, 32],
        [-1, 33],
        [-1, 31],
        [1, 31],
        [0x40000000, 2],
        [-(2 ** 31), -1],
        [2 ** 31 - 1, 1],
        [65536, 65536],
        [46341, 46341],
        [7, 0],
        [-7, 0],
      ];
      const literal = names.flatMap((n) =>
        literalPairs.map(([a, b]) => OPS[n](full([1], a, 'i32'), full([1], b, 'i32'))),
      );
      const outputs = [...names.map((n) => OPS[n](x, y)), ...literal];
      const args = {
        edge_x: { data: pairs.map((p) => p[0]), shape: [pairs.length], dtype: 'i32' as const },
        edge_y: { data: pairs.map((p) => p[1]), shape: [pairs.length], dtype: 'i32' as const },
      };
      const [cpu, , gpu] = await onAllDevices(outputs, args);
      names.forEach((n, k) => {
        const expected = pairs.map(([a, b]) => MODELS[n](a, b));
        expect(Array.from(cpu[k]), `${n} on the interpreter`).toEqual(expected);
        expect(Array.from(gpu[k]), `${n} on WebGPU`).toEqual(expected);
      });
      names.forEach((n, i) =>
        literalPairs.forEach(([a, b], j) => {
          const k = names.length + i * literalPairs.length + j;
          expect([cpu[k][0], gpu[k][0]], `${n}(${a}, ${b}) with literal operands`).toEqual([
            MODELS[n](a, b),
            MODELS[n](a, b),
          ]);
        }),
      );
    },
  );

  test('bitwise ops broadcast numbers as i32 and reject f32 operands', () => {
    const [r] = evaluate([bitXor(full([2], 5, 'i32'), 0x9e3779b9)]);
    expect(Array.from(r)).toEqual([5 ^ 0x9e3779b9, 5 ^ 0x9e3779b9]);
    // i32 constants hold their 32-bit pattern in the interpreter, as WGSL literals and Int32Array
    // do.
    expect(
      Array.from(
        evaluate([full([2], 0x9e3779b9, 'i32'), full([1], 2 ** 32 + 5, 'i32')]).flatMap((v) =>
          Array.from(v),
        ),
      ),
    ).toEqual([0x9e3779b9 | 0, 0x9e3779b9 | 0, 5]);
    expect(() => bitAnd(full([2], 1), 1)).toThrow(/bitAnd.*f32.*i32/);
    expect(() => shiftLeft(full([2], 1, 'i32'), full([3], 1, 'i32'))).toThrow(/shiftLeft/);
    expect(() => uniform(full([2], 1), [3])).toThrow(/key must be an i32 tensor of shape \[2\]/);
  });
});

describe('bit-identical across devices', () => {
  const SHAPES = [[1], [3], [17], [65], [257], [3, 17], [17, 3, 5]];
  test(
    'bits, uniform, rademacher, bernoulli, randint, foldIn and split: f64 ' +
      'interpreter = f32 interpreter = WebGPU (runtime keys, odd shapes)',
    async () => {
      let normalWorst = 0;
      await fc.assert(
        fc.asyncProperty(
          i32Arb,
          i32Arb,
          i32Arb,
          fc.constantFrom(...SHAPES),
          async (k0, k1, step, shape) => {
            const key = input('bi_key', [2], 'i32');
            const t = input('bi_step', [], 'i32');
            const folded = foldIn(key, t); // a step counter folded into a runtime seed
            const outputs = [
              randomBits(key, shape),
              uniform(key, shape),
              uniform(folded, shape),
              rademacher(key, shape),
              bernoulli(key, 0.3, shape),
              randint(key, shape, -5, 7),
              randint(folded, shape, -(2 ** 30), 2 ** 30 - 1), // a span near 2^31
              ...split(key, 3),
              folded,
              uniform(prngKey(7), shape), // a key in a constant buffer
              normal(key, shape),
            ];
            const args = {
              bi_key: { data: [k0, k1], shape: [2], dtype: 'i32' as const },
              bi_step: { data: [step], shape: [], dtype: 'i32' as const },
            };
            const [f64, f32, gpu] = await onAllDevices(outputs, args);
            const exact = outputs.length - 1;
            for (let k = 0; k < exact; k++) {
              expect(Array.from(f32[k]), `output ${k} on the f32 interpreter`).toEqual(
                Array.from(f64[k]),
              );
              expect(Array.from(gpu[k]), `output ${k} on WebGPU`).toEqual(Array.from(f64[k]));
            }
            const n = f64[0].length;
            expect(Array.from(f64[0])).toEqual(bitsModel(k0, k1, n));
            expect(Array.from(f64[1])).toEqual(
              bitsModel(k0, k1, n).map((b) => (b >>> 8) / 2 ** 24),
            );
            // foldIn(key, d) = Threefry(key, (2, d)); split(key)[i] = Threefry(key, (1, i)).
            [0, 1, 2].forEach((i) =>
              expect(Array.from(f64[7 + i])).toEqual(threefryModel(k0, k1, 1, i)),
            );
            expect(Array.from(f64[10])).toEqual(threefryModel(k0, k1, 2, step));
            // normal: log/sqrt/cos round differently on GPUs. Bound from WGSL's allowances (log
            // 2^-21 absolute near 1, cos 2^-11 absolute, |r| ≤ 5.8): |Δz| ≤ 2^-11·5.8 + 2^-10 ≈
            // 3.8e-3. llvmpipe is far tighter (measured worst printed below).
            f32[exact].forEach((z, i) => {
              const d = Math.abs(gpu[exact][i] - z);
              normalWorst = Math.max(normalWorst, d);
              expect(d).toBeLessThanOrEqual(3.8e-3);
            });
          },
        ),
        { numRuns: 25 },
      );
      console.log(`normal(): worst |WebGPU − f32 interpreter| = ${normalWorst.toExponential(2)}`);
    },
  );

  test(
    'uniform on a general range [lo, hi) is the same f32 arithmetic on ' +
      'WebGPU and the f32 interpreter',
    async () => {
      const key = input('gr_key', [2], 'i32');
      const outs = [uniform(key, [257], -2.5, 3), uniform(key, [257], 0.1, 0.7)];
      const [, f32, gpu] = await onAllDevices(outs, {
        gr_key: { data: [3, -99], shape: [2], dtype: 'i32' },
      });
      // Exact unless a driver fuses u·(hi − lo) + lo into an FMA (WGSL permits neither promise).
      outs.forEach((_, k) => expect(Array.from(gpu[k])).toEqual(Array.from(f32[k])));
    },
  );
});

// ---------------------------------------------------------------------------------------------

const N = 100_000;
function meanOf(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return s / xs.length;
}
function varianceOf(xs: ArrayLike<number>): number {
  const m = meanOf(xs);
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += (xs[i] - m) ** 2;
  return s / (xs.length - 1);
}
function correlation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const [ma, mb] = [meanOf(a), meanOf(b)];
  let [sab, saa, sbb] = [0, 0, 0];
  for (let i = 0; i < a.length; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}
const popcount = (v: number): number => {
  let x = v >>> 0;
  let c = 0;
  for (; x !== 0; x &= x - 1) c++;
  return c;
};

describe('statistics (float64 interpreter, fixed keys, 5-standard-error bounds)', () => {
  test(
    'uniform: range, mean, variance, 100-bin chi-square and per-bin ' +
      'counts; every bit of randomBits is fair',
    () => {
      const [u, bits] = evaluate([uniform(KEY, [N]), randomBits(KEY, [N])]);
      expect(u.every((v) => v >= 0 && v < 1)).toBe(true);
      // Mean ½ with SE √(1/12/n) ≈ 9.1e-4; variance 1/12 with SE √(Var((u−½)²)/n) = √(1/180/n) ≈
      // 2.4e-4.
      const mean = meanOf(u);
      const variance = varianceOf(u);
      expect(Math.abs(mean - 0.5)).toBeLessThan(5 * Math.sqrt(1 / 12 / N));
      expect(Math.abs(variance - 1 / 12)).toBeLessThan(5 * Math.sqrt(1 / 180 / N));
      // 100 equal bins: χ² with 99 dof has mean 99 and sd √198 ≈ 14.1, so χ² < 99 + 5·14.1 = 169;
      // each count is Binomial(n, 0.01): within 5·√(n·0.01·0.99) ≈ 157 of 1000.
      const counts = new Array<number>(100).fill(0);
      u.forEach((v) => counts[Math.floor(v * 100)]++);
      const expected = N / 100;
      const chi2 = counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
      expect(chi2).toBeLessThan(99 + 5 * Math.sqrt(198));
      counts.forEach((c) =>
        expect(Math.abs(c - expected)).toBeLessThan(5 * Math.sqrt(N * 0.01 * 0.99)),
      );
      // Each of the 32 bit positions is set with frequency ½ ± 5·√(¼/n) = ½ ± 7.9e-3.
      let worstBit = 0;
      for (let j = 0; j < 32; j++) {
        let ones = 0;
        bits.forEach((b) => (ones += (b >>> j) & 1));
        worstBit = Math.max(worstBit, Math.abs(ones / N - 0.5));
      }
      expect(worstBit).toBeLessThan(5 * Math.sqrt(0.25 / N));
      console.log(
        `uniform: mean ${mean.toFixed(5)}, variance ${variance.toFixed(5)} ` +
          `(1/12 = 0.08333), χ²(99) ${chi2.toFixed(1)}, worst bit frequency |f − ` +
          `½| ${worstBit.toExponential(2)}`,
      );
    },
  );

  test(
    'neighbouring counters are independent: avalanche between i and i ^ ' +
      '2^j, serial correlation',
    () => {
      const n = 2 ** 17;
      const [bits, u] = evaluate([randomBits(KEY, [n]), uniform(KEY, [n])]);
      // popcount(b_i ^ b_{i ^ 2^j}) over the n/2 disjoint pairs: mean 16, sd √8 per pair, so the
      // average is within 5·√(8/(n/2)) ≈ 0.055 of 16. A weak mixer of the counter fails this first.
      for (const j of [0, 1, 4, 8, 16]) {
        let total = 0;
        for (let i = 0; i < n; i++)
          if (((i >> j) & 1) === 0) total += popcount(bits[i] ^ bits[i ^ (1 << j)]);
        expect(Math.abs(total / (n / 2) - 16), `flipping counter bit ${j}`).toBeLessThan(
          5 * Math.sqrt(8 / (n / 2)),
        );
      }
      // Lag-1 and lag-2 correlation of the uniforms: |ρ| < 5/√n ≈ 0.014.
      for (const lag of [1, 2])
        expect(Math.abs(correlation(u.subarray(0, n - lag), u.subarray(lag)))).toBeLessThan(
          5 / Math.sqrt(n),
        );
    },
  );

  test('different, folded and split keys give uncorrelated streams', () => {
    const keys: Record<string, Tensor> = {
      key: KEY,
      'seed + 1': prngKey(20260612),
      'foldIn 0': foldIn(KEY, 0),
      'foldIn 1': foldIn(KEY, 1),
      'split 0': split(KEY)[0],
      'split 1': split(KEY)[1],
    };
    const names = Object.keys(keys);
    const n = 50_000;
    const streams = evaluate(names.map((k) => uniform(keys[k], [n])));
    // Every pair (15 of them): |ρ| < 5/√n ≈ 0.022 (each would fail with probability 6e-7 if
    // independent).
    let worst = 0;
    names.forEach((a, i) =>
      names.slice(i + 1).forEach((b, d) => {
        const rho = correlation(streams[i], streams[i + 1 + d]);
        worst = Math.max(worst, Math.abs(rho));
        expect(Math.abs(rho), `${a} vs ${b}`).toBeLessThan(5 / Math.sqrt(n));
      }),
    );
    // Keys differing in one bit give unrelated bits: mean Hamming distance 16 ± 5·√(8/n).
    const [b0, b1] = evaluate([
      randomBits(prngKey(20260611), [n]),
      randomBits(prngKey(20260611 ^ 1), [n]),
    ]);
    let total = 0;
    b0.forEach((v, i) => (total += popcount(v ^ b1[i])));
    expect(Math.abs(total / n - 16)).toBeLessThan(5 * Math.sqrt(8 / n));
    console.log(
      `streams: worst |ρ| over 15 pairs ${worst.toExponential(2)} (bound ` +
        `${(5 / Math.sqrt(n)).toExponential(2)})`,
    );
  });

  test('normal, rademacher, bernoulli and randint have the right distributions', () => {
    const [z, r, coin, ints] = evaluate([
      normal(KEY, [N]),
      rademacher(foldIn(KEY, 1), [N]),
      bernoulli(foldIn(KEY, 2), 0.3, [N]),
      randint(foldIn(KEY, 3), [N], -5, 7),
    ]);
    // Normal: mean 0 ± 5/√n; variance 1 ± 5·√(2/n) (Var(z²) = 2); P(|z| > 1.96) = 0.05 ±
    // 5·√(0.05·0.95/n).
    expect(Math.abs(meanOf(z))).toBeLessThan(5 / Math.sqrt(N));
    expect(Math.abs(varianceOf(z) - 1)).toBeLessThan(5 * Math.sqrt(2 / N));
    const tails = z.filter((v) => Math.abs(v) > 1.959964).length / N;
    expect(Math.abs(tails - 0.05)).toBeLessThan(5 * Math.sqrt((0.05 * 0.95) / N));
    // Kolmogorov–Smirnov against Φ: P(√n·D > 2.7) ≈ 2e^(−2·2.7²) ≈ 9e-7.
    const sorted = Float64Array.from(z).sort();
    const phi = (x: number): number => 0.5 * (1 + erf(x / Math.SQRT2));
    let ks = 0;
    sorted.forEach(
      (v, i) => (ks = Math.max(ks, Math.abs(phi(v) - i / N), Math.abs(phi(v) - (i + 1) / N))),
    );
    expect(ks * Math.sqrt(N)).toBeLessThan(2.7);
    // Rademacher: only ±1, mean 0 ± 5/√n.
    expect(r.every((v) => v === 1 || v === -1)).toBe(true);
    expect(Math.abs(meanOf(r))).toBeLessThan(5 / Math.sqrt(N));
    // Bernoulli(0.3): frequency within 5·√(p(1−p)/n) ≈ 7.2e-3.
    expect(Math.abs(meanOf(coin) - 0.3)).toBeLessThan(5 * Math.sqrt((0.3 * 0.7) / N));
    // randint [−5, 7): integers in range, each of the 12 values within 5·√(n·p(1−p)) of n/12.
    const counts = new Map<number, number>();
    ints.forEach((v) => counts.set(v, (counts.get(v) ?? 0) + 1));
    expect([...counts.keys()].sort((a, b) => a - b)).toEqual([
      -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6,
    ]);
    counts.forEach((c) =>
      expect(Math.abs(c - N / 12)).toBeLessThan(5 * Math.sqrt((N * (1 / 12) * 11) / 12)),
    );
    console.log(
      `normal: mean ${meanOf(z).toExponential(2)}, variance ` +
        `${varianceOf(z).toFixed(4)}, P(|z|>1.96) ${tails.toFixed(4)}, √n·KS ` +
        `${(ks * Math.sqrt(N)).toFixed(3)}`,
    );
  });

  test(
    'categorical frequencies match softmax(logits) on the interpreter and ' +
      'on WebGPU; masked classes never come up',
    async () => {
      // Two groups of rows with their own logits ([2, B, C], classes on the last axis); −∞ masks a
      // class.
      const B = 10_000;
      const logits = [
        [2, 0.5, -1, 0, 1.2, -Infinity],
        [-0.3, 0.1, 3, -2, 0, 0.7],
      ];
      const C = logits[0].length;
      const l = input('cat_logits', [2, B, C]);
      const key = input('cat_key', [2], 'i32');
      const labels = categorical(key, l);
      expect(labels.shape).toEqual([2, B]);
      expect(labels.dtype).toBe('i32');
      const data = logits.flatMap((row) => Array.from({ length: B }, () => row).flat());
      const args = {
        cat_logits: { data, shape: [2, B, C], dtype: 'f32' as const },
        cat_key: { data: [11, 12], shape: [2], dtype: 'i32' as const },
      };
      const [[cpu], [gpu]] = await Promise.all([
        run(await cpu64, [labels], args),
        run(await gpuDevice(), [labels], args),
      ]);
      let worst = 0;
      for (const [device, got] of [
        ['interpreter', cpu],
        ['WebGPU', gpu],
      ] as const) {
        logits.forEach((row, g) => {
          const m = Math.max(...row);
          const z = row.reduce((s, v) => s + Math.exp(v - m), 0);
          const counts = new Array<number>(C).fill(0);
          // an out-of-range label makes a NaN count below
          for (let i = 0; i < B; i++) counts[got[g * B + i]]++;
          row.forEach((v, c) => {
            const p = Math.exp(v - m) / z;
            // Each class count is Binomial(B, p): frequency within 5·√(p(1−p)/B) (≤ 0.025) of p.
            const err = Math.abs(counts[c] / B - p);
            worst = Math.max(worst, err / Math.sqrt((p * (1 - p)) / B || 1));
            expect(err, `${device}, group ${g}, class ${c}`).toBeLessThanOrEqual(
              5 * Math.sqrt((p * (1 - p)) / B),
            );
            if (p === 0) expect(counts[c], `${device}: masked class ${c} sampled`).toBe(0);
          });
        });
      }
      // Same Gumbel noise up to rounding: labels differ only at near-ties of two scores.
      const differ = cpu.filter((v, i) => v !== gpu[i]).length;
      expect(differ).toBeLessThanOrEqual(0.001 * 2 * B);
      console.log(
        `categorical: worst |f − p| = ${worst.toFixed(2)} standard errors; ` +
          `${differ} of ${2 * B} labels differ between the f64 interpreter and ` +
          `WebGPU`,
      );
    },
  );
});

/** erf to ~1e-7 (Abramowitz–Stegun 7.1.26 is 1.5e-7: ample for a KS bound of 2.7/√n ≈ 8.5e-3). */
function erf(x: number): number {
  const s = Math.sign(x);
  const a = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * a);
  const y =
    1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) *
      t *
      Math.exp(-a * a);
  return s * y;
}
