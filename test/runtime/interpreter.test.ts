// Interpreter semantics against plain-JS reference implementations written here (no grng code
// in the references: index arithmetic, loops, BigInt for i32 wrap-around, Math.fround for f32).
//
// Exactness: movement, iota, casts, comparisons, select, max and every i32 result are exact, so
// they are compared exactly. Float64 sums/products are compared with the order-independent bound
// |error| ≤ n·ε·Σ|terms| (ε = 2^-53, n terms): the reference may legitimately sum in another
// order. In float32 mode the interpreter's contract is "round every f32 intermediate", so the
// sequential Math.fround-accumulated reference must match bit for bit.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Tensor } from '../../index.js';
import {
  abs,
  add,
  array,
  broadcastTo,
  cast,
  constant,
  createDevice,
  div,
  eq,
  exp,
  ge,
  gt,
  input,
  iota,
  jit,
  le,
  lt,
  matmul,
  max,
  maximum,
  minimum,
  mul,
  ne,
  neg,
  pad,
  recip,
  reshape,
  slice,
  sub,
  sum,
  transpose,
  where,
  type DeviceArray,
} from '../../index.js';
import { interpret } from '../../runtime/interpreter.js';
import { hostFunction, type ArgSpec } from '../support/host-function.js';
import {
  int,
  plain,
  prng,
  randomShape,
  range,
  seedArb,
  shuffle,
  sizeOf,
  uniform,
} from '../support/random.js';

const EPS = 2 ** -53;
/** 100 random cases per property: the whole file runs in ~2 s on the 2-core machine. */
const RUNS = 100;

// ---------------------------------------------------------------------------------------------
// Plain-JS index arithmetic (independent of core/ir/shape.ts and core/ops/strided.ts)

/** Row-major multi-index of a flat offset. */
function unravel(flat: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let i = shape.length - 1; i >= 0; i--) {
    idx[i] = flat % shape[i];
    flat = Math.floor(flat / shape[i]);
  }
  return idx;
}
/** Row-major flat offset of a multi-index (Horner). */
const ravel = (idx: readonly number[], shape: readonly number[]): number =>
  idx.reduce((acc, v, i) => acc * shape[i] + v, 0);
/** Distinct, exactly representable values (also in f32): out-of-place reads show up. */
const distinct = (n: number): Float64Array => Float64Array.from({ length: n }, (_, i) => i + 0.5);

const run = (
  f: (...xs: Tensor[]) => Tensor | readonly Tensor[],
  specs: readonly ArgSpec[],
  precision: 'f64' | 'f32' = 'f64',
) => hostFunction(f, specs, precision);

// ---------------------------------------------------------------------------------------------

describe('matmul', () => {
  it(
    'batched f32 matmul equals the triple loop (float64: within ' +
      'n·ε·Σ|a||b|; float32 mode: bit-exact sequential fround)',
    () => {
      fc.assert(
        fc.property(seedArb, (seed) => {
          const rng = prng(seed);
          const batch = randomShape(rng, 0, 2, 1, 3);
          const [m, k, n] = [int(rng, 1, 5), int(rng, 1, 5), int(rng, 1, 5)];
          const sa = [...batch, m, k];
          const sb = [...batch, k, n];
          const a = uniform(rng, sizeOf(sa), -2, 2);
          const b = uniform(rng, sizeOf(sb), -2, 2);
          const B = sizeOf(batch);
          for (const precision of ['f64', 'f32'] as const) {
            const [out] = run(
              (p, q) => matmul(p, q),
              [{ shape: sa }, { shape: sb }],
              precision,
            )(a, b);
            const r = precision === 'f32' ? Math.fround : (v: number) => v;
            for (let t = 0; t < B; t++) {
              for (let i = 0; i < m; i++) {
                for (let j = 0; j < n; j++) {
                  let s = 0;
                  let absSum = 0;
                  for (let p = 0; p < k; p++) {
                    const x = r(a[t * m * k + i * k + p]);
                    const y = r(b[t * k * n + p * n + j]);
                    s = r(s + r(x * y));
                    absSum += Math.abs(x * y);
                  }
                  const got = out[t * m * n + i * n + j];
                  if (precision === 'f32') expect(got).toBe(s);
                  else expect(Math.abs(got - s)).toBeLessThanOrEqual(2 * k * EPS * absSum);
                }
              }
            }
          }
        }),
        { numRuns: RUNS },
      );
    },
  );

  it('the DSL broadcasts batch axes ([2,1,m,k] × [3,k,n] → [2,3,m,n]) and handles vectors', () => {
    const rng = prng(7);
    const [m, k, n] = [2, 3, 4];
    const a = uniform(rng, 2 * m * k);
    const b = uniform(rng, 3 * k * n);
    const [out] = run((p, q) => matmul(p, q), [{ shape: [2, 1, m, k] }, { shape: [3, k, n] }])(
      a,
      b,
    );
    for (let s = 0; s < 2; s++) {
      for (let t = 0; t < 3; t++) {
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            let ref = 0;
            for (let p = 0; p < k; p++) ref += a[s * m * k + i * k + p] * b[t * k * n + p * n + j];
            expect(out[((s * 3 + t) * m + i) * n + j]).toBeCloseTo(ref, 14);
          }
        }
      }
    }
    // [k] × [k, n] → [n] and [m, k] × [k] → [m]
    const v = uniform(rng, k);
    const M = uniform(rng, k * n);
    const [vm] = run((p, q) => matmul(p, q), [{ shape: [k] }, { shape: [k, n] }])(v, M);
    expect(vm.length).toBe(n);
    for (let j = 0; j < n; j++)
      expect(vm[j]).toBeCloseTo(
        range(k).reduce((s, p) => s + v[p] * M[p * n + j], 0),
        14,
      );
  });

  it('i32 matmul wraps like WGSL (two’s complement, reference in BigInt)', () => {
    fc.assert(
      fc.property(seedArb, (seed) => {
        const rng = prng(seed);
        const [m, k, n] = [int(rng, 1, 3), int(rng, 1, 4), int(rng, 1, 3)];
        const big = (): number => int(rng, -(2 ** 31), 2 ** 31 - 1);
        const a = Float64Array.from({ length: m * k }, big);
        const b = Float64Array.from({ length: k * n }, big);
        const [out] = run(
          (p, q) => matmul(p, q),
          [
            { shape: [m, k], dtype: 'i32' },
            { shape: [k, n], dtype: 'i32' },
          ],
        )(a, b);
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            let s = 0n;
            for (let p = 0; p < k; p++) s += BigInt(a[i * k + p]) * BigInt(b[p * n + j]);
            expect(out[i * n + j]).toBe(Number(BigInt.asIntN(32, s)));
          }
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe('reductions over arbitrary axis sets', () => {
  it('sum and max vs naive gathers (f32 in both modes, i32 wrapping)', () => {
    fc.assert(
      fc.property(seedArb, (seed) => {
        const rng = prng(seed);
        const shape = randomShape(rng, 0, 4, 1, 4);
        const axes = range(shape.length).filter(() => rng() < 0.5);
        const outShape = shape.filter((_, i) => !axes.includes(i));
        const size = sizeOf(shape);
        const x = uniform(rng, size, -3, 3);
        const xi = Float64Array.from({ length: size }, () => int(rng, -(2 ** 31), 2 ** 31 - 1));
        // Naive: for each output element, walk the input in row-major order and take the elements
        // whose kept indices match.
        const members = (o: number): number[] => {
          const oi = unravel(o, outShape);
          return range(size).filter((flat) => {
            const idx = unravel(flat, shape);
            return idx.filter((_, i) => !axes.includes(i)).every((v, j) => v === oi[j]);
          });
        };
        const groups = range(sizeOf(outShape)).map(members);

        const [s64, m64] = run((t) => [sum(t, axes), max(t, axes)], [{ shape }])(x);
        const [s32, m32] = run((t) => [sum(t, axes), max(t, axes)], [{ shape }], 'f32')(x);
        const [si, mi] = run((t) => [sum(t, axes), max(t, axes)], [{ shape, dtype: 'i32' }])(xi);
        expect(s64.length).toBe(groups.length);
        groups.forEach((g, o) => {
          const ref = g.reduce((s, i) => s + x[i], 0);
          const absSum = g.reduce((s, i) => s + Math.abs(x[i]), 0);
          expect(Math.abs(s64[o] - ref)).toBeLessThanOrEqual(g.length * EPS * absSum);
          expect(m64[o]).toBe(Math.max(...g.map((i) => x[i])));
          // float32 mode: inputs rounded, then sequential rounded accumulation — bit-exact.
          expect(s32[o]).toBe(g.reduce((s, i) => Math.fround(s + Math.fround(x[i])), 0));
          expect(m32[o]).toBe(Math.max(...g.map((i) => Math.fround(x[i]))));
          expect(si[o]).toBe(
            Number(
              BigInt.asIntN(
                32,
                g.reduce((s, i) => s + BigInt(xi[i]), 0n),
              ),
            ),
          );
          expect(mi[o]).toBe(Math.max(...g.map((i) => xi[i])));
        });
      }),
      { numRuns: RUNS },
    );
  });

  it('sum over an empty axis is 0; max propagates NaN', () => {
    const [s] = run((t) => sum(t, 1), [{ shape: [2, 0, 3] }])(new Float64Array(0));
    expect(plain(s)).toEqual([0, 0, 0, 0, 0, 0]);
    const [mx] = run((t) => max(t, 1), [{ shape: [2, 3] }])(Float64Array.of(1, NaN, 2, 3, 4, 5));
    expect(mx[0]).toBeNaN();
    expect(mx[1]).toBe(5);
  });
});

describe('movement ops map indices like naive loops', () => {
  it('permute (transpose) with a random permutation', () => {
    fc.assert(
      fc.property(seedArb, (seed) => {
        const rng = prng(seed);
        const shape = randomShape(rng, 1, 4, 1, 4);
        const perm = shuffle(rng, range(shape.length));
        const outShape = perm.map((p) => shape[p]);
        const x = distinct(sizeOf(shape));
        const [out] = run((t) => transpose(t, perm), [{ shape }])(x);
        const ref = range(sizeOf(outShape)).map((o) => {
          const oi = unravel(o, outShape);
          const ii = new Array<number>(shape.length);
          perm.forEach((p, i) => (ii[p] = oi[i]));
          return x[ravel(ii, shape)];
        });
        expect(plain(out)).toEqual(ref);
      }),
      { numRuns: RUNS },
    );
  });

  it('slice (also with negative Python-style indices)', () => {
    fc.assert(
      fc.property(seedArb, (seed) => {
        const rng = prng(seed);
        const shape = randomShape(rng, 1, 4, 1, 5);
        const starts = shape.map((d) => int(rng, 0, d));
        const ends = shape.map((d, i) => int(rng, starts[i], d));
        const negative = rng() < 0.5;
        const outShape = shape.map((_, i) => ends[i] - starts[i]);
        const x = distinct(sizeOf(shape));
        const s = negative
          ? starts.map((v, i) => (v > 0 && v < shape[i] ? v - shape[i] : v))
          : starts;
        const e = negative ? ends.map((v, i) => (v > 0 && v < shape[i] ? v - shape[i] : v)) : ends;
        const [out] = run((t) => slice(t, s, e), [{ shape }])(x);
        const ref = range(sizeOf(outShape)).map(
          (o) =>
            x[
              ravel(
                unravel(o, outShape).map((v, i) => v + starts[i]),
                shape,
              )
            ],
        );
        expect(plain(out)).toEqual(ref);
      }),
      { numRuns: RUNS },
    );
  });

  it('pad (zeros around, f32 and i32)', () => {
    fc.assert(
      fc.property(seedArb, (seed) => {
        const rng = prng(seed);
        const shape = randomShape(rng, 1, 3, 0, 3);
        const lo = shape.map(() => int(rng, 0, 2));
        const hi = shape.map(() => int(rng, 0, 2));
        const outShape = shape.map((d, i) => lo[i] + d + hi[i]);
        const x = distinct(sizeOf(shape));
        const ref = range(sizeOf(outShape)).map((o) => {
          const ii = unravel(o, outShape).map((v, i) => v - lo[i]);
          return ii.every((v, i) => v >= 0 && v < shape[i]) ? x[ravel(ii, shape)] : 0;
        });
        const [out] = run((t) => pad(t, lo, hi), [{ shape }])(x);
        expect(plain(out)).toEqual(ref);
        const xi = x.map(Math.floor);
        const [outI] = run((t) => pad(t, lo, hi), [{ shape, dtype: 'i32' }])(xi);
        expect(plain(outI)).toEqual(ref.map(Math.floor));
      }),
      { numRuns: RUNS },
    );
  });

  it('broadcastTo with NumPy rules (leading axes added, size-1 axes stretched)', () => {
    fc.assert(
      fc.property(seedArb, (seed) => {
        const rng = prng(seed);
        const target = randomShape(rng, 1, 4, 1, 4);
        const lead = int(rng, 0, target.length - 1);
        const from = target.slice(lead).map((d) => (rng() < 0.5 ? 1 : d));
        const x = distinct(sizeOf(from));
        const [out] = run((t) => broadcastTo(t, target), [{ shape: from }])(x);
        const ref = range(sizeOf(target)).map((o) => {
          const oi = unravel(o, target);
          return x[
            ravel(
              from.map((d, i) => (d === 1 ? 0 : oi[lead + i])),
              from,
            )
          ];
        });
        expect(plain(out)).toEqual(ref);
      }),
      { numRuns: RUNS },
    );
  });

  it(
    'reshape keeps row-major order (with an inferred -1 axis); bool and ' + 'i32 keep their dtype',
    () => {
      fc.assert(
        fc.property(seedArb, (seed) => {
          const rng = prng(seed);
          const shape = randomShape(rng, 1, 4, 1, 4);
          const target: number[] = shuffle(rng, shape);
          if (target.length > 0 && rng() < 0.5) target[int(rng, 0, target.length - 1)] = -1;
          const x = distinct(sizeOf(shape));
          const [out] = run((t) => reshape(t, target), [{ shape }])(x);
          expect(plain(out)).toEqual(Array.from(x));
          const bits = x.map((v) => Math.floor(v) % 2);
          const traced = reshape(input('reshape_bool', shape, 'bool'), target);
          expect(traced.dtype).toBe('bool');
          const [outB] = interpret([traced.node], new Map([['reshape_bool', bits]]));
          expect(plain(outB)).toEqual(Array.from(bits));
        }),
        { numRuns: RUNS },
      );
    },
  );
});

describe('iota', () => {
  it('holds the index along the axis (i32 and f32, negative axis)', () => {
    fc.assert(
      fc.property(seedArb, (seed) => {
        const rng = prng(seed);
        const shape = randomShape(rng, 1, 4, 1, 4);
        const axis = int(rng, 0, shape.length - 1);
        const dtype = rng() < 0.5 ? 'i32' : 'f32';
        const t = iota(shape, rng() < 0.5 ? axis : axis - shape.length, dtype);
        expect(t.dtype).toBe(dtype);
        expect(t.shape).toEqual(shape);
        const [out] = interpret([t.node], new Map());
        expect(plain(out)).toEqual(range(sizeOf(shape)).map((o) => unravel(o, shape)[axis]));
      }),
      { numRuns: RUNS },
    );
  });
});

describe('casts', () => {
  const I32_MAX = 2147483647;
  const I32_MIN = -2147483648;

  it('f32 → i32 truncates toward zero, saturates, and maps NaN to 0', () => {
    const xs = [
      2.7,
      -2.7,
      0.5,
      1.5,
      -1.5,
      0,
      3,
      -3,
      1e10,
      -1e10,
      Infinity,
      -Infinity,
      NaN,
      2147483520,
      -2147483648,
      2147483648,
      16777217,
    ];
    const [out] = run((t) => cast(t, 'i32'), [{ shape: [xs.length] }])(Float64Array.from(xs));
    const expected = [
      2,
      -2,
      0,
      1,
      -1,
      0,
      3,
      -3,
      I32_MAX,
      I32_MIN,
      I32_MAX,
      I32_MIN,
      0,
      2147483520,
      I32_MIN,
      I32_MAX,
      16777217,
    ];
    expect(plain(out)).toEqual(expected);
    // f32 mode rounds the f32 input first: 16777217 is not an f32.
    const [out32] = run((t) => cast(t, 'i32'), [{ shape: [1] }], 'f32')(Float64Array.of(16777217));
    expect(out32[0]).toBe(16777216);
  });

  it(
    'i32 results never hold −0 (WGSL i32 has no negative zero): cast(−0.5 ' +
      '→ i32 → f32) then recip is +∞',
    () => {
      const [asInt, inv] = run(
        (t) => {
          const i = cast(t, 'i32');
          return [i, recip(cast(i, 'f32'))];
        },
        [{ shape: [2] }],
      )(Float64Array.of(-0.5, -0.9));
      expect(Object.is(asInt[0], 0) && Object.is(asInt[1], 0)).toBe(true);
      expect(Array.from(inv)).toEqual([Infinity, Infinity]);
    },
  );

  it('to bool is x ≠ 0, i.e. agrees with ne(x, 0) for every value, NaN and ±0 included', () => {
    const xs = [0, -0, 1, -1, 0.5, 1e-30, Infinity, -Infinity, NaN];
    const [b, n] = run(
      (t) => [cast(t, 'bool'), ne(t, 0)],
      [{ shape: [xs.length] }],
    )(Float64Array.from(xs));
    // IEEE: NaN ≠ 0 is true (so in WGSL: bool(e) is e != 0)
    expect(plain(b)).toEqual(xs.map((x) => (x !== 0 ? 1 : 0)));
    expect(plain(b)).toEqual(plain(n));
  });

  it('non-NaN f32 → bool, i32 ↔ bool, bool → f32, i32 → f32 (rounded only in f32 mode)', () => {
    const [fb] = run(
      (t) => cast(t, 'bool'),
      [{ shape: [5] }],
    )(Float64Array.of(0, -0, 2.5, -1e-30, Infinity));
    expect(plain(fb)).toEqual([0, 0, 1, 1, 1]);
    const ints = Float64Array.of(0, 5, -7, I32_MIN, 16777217);
    const [ib, iF64] = run(
      (t) => [cast(t, 'bool'), cast(t, 'f32')],
      [{ shape: [5], dtype: 'i32' }],
    )(ints);
    expect(plain(ib)).toEqual([0, 1, 1, 1, 1]);
    expect(plain(iF64)).toEqual([0, 5, -7, I32_MIN, 16777217]);
    const [iF32] = run((t) => cast(t, 'f32'), [{ shape: [5], dtype: 'i32' }], 'f32')(ints);
    expect(plain(iF32)).toEqual([0, 5, -7, I32_MIN, 16777216]);
    const [bf, bi] = run(
      (t) => [cast(t, 'f32'), cast(t, 'i32')],
      [{ shape: [3], dtype: 'bool' }],
    )(Float64Array.of(1, 0, 1));
    expect(plain(bf)).toEqual([1, 0, 1]);
    expect(plain(bi)).toEqual([1, 0, 1]);
    expect(cast(input('cast_probe', [2]), 'bool').dtype).toBe('bool');
  });
});

describe('i32 arithmetic wraps like WGSL', () => {
  const i32 = fc.oneof(
    fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
    fc.constantFrom(-(2 ** 31), 2 ** 31 - 1, -1, 0, 1, 2, -2, 65536),
  );
  const wrap = (v: bigint): number => Number(BigInt.asIntN(32, v));
  /**
   * WGSL: e1 / e2 truncates; when e2 is 0, or e1 is the most negative value and e2 is −1, the
   * result is e1.
   */
  const wgslDiv = (a: number, b: number): number => (b === 0 ? a : wrap(BigInt(a) / BigInt(b)));

  it('add, sub, mul, div, neg, abs, max, min vs BigInt references', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(i32, i32), { minLength: 1, maxLength: 16 }), (pairs) => {
        const a = Float64Array.from(pairs, (p) => p[0]);
        const b = Float64Array.from(pairs, (p) => p[1]);
        const spec = { shape: [pairs.length], dtype: 'i32' as const };
        const outs = run(
          (x, y) => [
            add(x, y),
            sub(x, y),
            mul(x, y),
            div(x, y),
            neg(x),
            abs(x),
            maximum(x, y),
            minimum(x, y),
          ],
          [spec, spec],
        )(a, b);
        const refs = [
          pairs.map(([p, q]) => wrap(BigInt(p) + BigInt(q))),
          pairs.map(([p, q]) => wrap(BigInt(p) - BigInt(q))),
          pairs.map(([p, q]) => wrap(BigInt(p) * BigInt(q))),
          pairs.map(([p, q]) => wgslDiv(p, q)),
          pairs.map(([p]) => wrap(-BigInt(p))),
          pairs.map(([p]) => wrap(BigInt(p < 0 ? -p : p))),
          pairs.map(([p, q]) => Math.max(p, q)),
          pairs.map(([p, q]) => Math.min(p, q)),
        ];
        outs.forEach((o, k) => expect(plain(o), `op #${k}`).toEqual(refs[k]));
      }),
      { numRuns: RUNS },
    );
  });

  it('named edge cases', () => {
    const spec = { shape: [6], dtype: 'i32' as const };
    const a = Float64Array.of(2 ** 31 - 1, -(2 ** 31), -7, 7, 5, -(2 ** 31));
    const b = Float64Array.of(1, -1, 2, -2, 0, 0);
    const [s, d, p] = run((x, y) => [add(x, y), div(x, y), mul(x, x)], [spec, spec])(a, b);
    expect(s[0]).toBe(-(2 ** 31)); // MAX + 1 wraps to MIN
    expect(d[1]).toBe(-(2 ** 31)); // MIN / −1 = MIN
    expect(d[2]).toBe(-3); // truncation toward zero
    expect(d[3]).toBe(-3);
    expect(d[4]).toBe(5); // division by zero returns the dividend
    expect(d[5]).toBe(-(2 ** 31));
    expect(p[4]).toBe(25);
    const [sq] = run((x) => mul(x, x), [{ shape: [1], dtype: 'i32' }])(Float64Array.of(65536));
    expect(sq[0]).toBe(0); // 2^32 wraps to 0
    // Numbers mixed with i32 tensors are i32 (JAX-style weak typing): 7 / 2 is 3, not 3.5.
    const [half] = run((x) => div(x, 2), [{ shape: [1], dtype: 'i32' }])(Float64Array.of(7));
    expect(half[0]).toBe(3);
  });
});

describe('comparisons and select', () => {
  it('comparisons give bool 0/1 matching JS operators (ties, ±0, ±∞, NaN; f32 and i32)', () => {
    const pool = [-2, -1, -0, 0, 0.5, 1, 2, Infinity, -Infinity, NaN];
    fc.assert(
      fc.property(seedArb, (seed) => {
        const rng = prng(seed);
        const len = int(rng, 1, 12);
        const a = Float64Array.from({ length: len }, () => pool[int(rng, 0, pool.length - 1)]);
        const b = Float64Array.from({ length: len }, () => pool[int(rng, 0, pool.length - 1)]);
        const ops = [lt, le, gt, ge, eq, ne];
        const refs: ((p: number, q: number) => boolean)[] = [
          (p, q) => p < q,
          (p, q) => p <= q,
          (p, q) => p > q,
          (p, q) => p >= q,
          (p, q) => p === q,
          (p, q) => p !== q,
        ];
        const probe = ops.map((op) => op(input('cmp_a', [len]), input('cmp_b', [len])));
        probe.forEach((t) => expect(t.dtype).toBe('bool'));
        const outs = run((x, y) => ops.map((op) => op(x, y)), [{ shape: [len] }, { shape: [len] }])(
          a,
          b,
        );
        outs.forEach((o, k) =>
          expect(plain(o)).toEqual(Array.from(a, (p, i) => (refs[k](p, b[i]) ? 1 : 0))),
        );
        // i32 operands: the finite integers of the pool.
        const ai = a.map((v) => (Number.isFinite(v) ? Math.trunc(v) + 0 : 3));
        const bi = b.map((v) => (Number.isFinite(v) ? Math.trunc(v) + 0 : -3));
        const outsI = run(
          (x, y) => ops.map((op) => op(x, y)),
          [
            { shape: [len], dtype: 'i32' },
            { shape: [len], dtype: 'i32' },
          ],
        )(ai, bi);
        outsI.forEach((o, k) =>
          expect(plain(o)).toEqual(Array.from(ai, (p, i) => (refs[k](p, bi[i]) ? 1 : 0))),
        );
      }),
      { numRuns: RUNS },
    );
  });

  it('select picks elementwise (f32, i32 and bool branches; broadcast scalars via where)', () => {
    fc.assert(
      fc.property(seedArb, (seed) => {
        const rng = prng(seed);
        const shape = randomShape(rng, 1, 3, 1, 4);
        const n = sizeOf(shape);
        const c = Float64Array.from({ length: n }, () => (rng() < 0.5 ? 1 : 0));
        const a = uniform(rng, n);
        const b = uniform(rng, n);
        const ai = a.map((v) => Math.round(v * 100) + 0); // + 0: no −0 in i32 data
        const bits = b.map((v) => (v > 0 ? 1 : 0));
        const [f, i, bo, s] = run(
          (cc, x, y, xi, bb) => [
            where(cc, x, y),
            where(cc, xi, xi.mul(-1)),
            where(cc, bb, cc),
            where(cc, x, 2),
          ],
          [
            { shape, dtype: 'bool' },
            { shape },
            { shape },
            { shape, dtype: 'i32' },
            { shape, dtype: 'bool' },
          ],
        )(c, a, b, ai, bits);
        expect(plain(f)).toEqual(Array.from(c, (ci, k) => (ci ? a[k] : b[k])));
        expect(plain(i)).toEqual(Array.from(c, (ci, k) => (ci ? ai[k] : -ai[k] + 0)));
        expect(plain(bo)).toEqual(Array.from(c, (ci, k) => (ci ? bits[k] : ci)));
        expect(plain(s)).toEqual(Array.from(c, (ci, k) => (ci ? a[k] : 2)));
      }),
      { numRuns: RUNS },
    );
  });
});

describe('float32 mode rounds every f32 intermediate', () => {
  it('1 + 1e-8 is 1 in f32 mode and not in f64 mode', () => {
    const f = (t: Tensor) => add(t, 1e-8);
    const [x64] = run(f, [{ shape: [] }])(Float64Array.of(1));
    const [x32] = run(f, [{ shape: [] }], 'f32')(Float64Array.of(1));
    expect(x64[0]).toBe(1 + 1e-8);
    expect(x32[0]).toBe(1);
    // Inputs and constants are rounded too.
    const [c32] = run((t) => t, [{ shape: [1] }], 'f32')(Float64Array.of(0.1));
    expect(c32[0]).toBe(Math.fround(0.1));
    const [k32] = run(() => constant([0.1]), [], 'f32')();
    expect(k32[0]).toBe(Math.fround(0.1));
  });

  it('a long sum equals the sequentially fround-accumulated reference exactly', () => {
    fc.assert(
      fc.property(seedArb, (seed) => {
        const rng = prng(seed);
        const n = int(rng, 500, 2000);
        const x = uniform(rng, n, -1, 3);
        const [s32] = run((t) => sum(t), [{ shape: [n] }], 'f32')(x);
        let ref = 0;
        for (const v of x) ref = Math.fround(ref + Math.fround(v));
        expect(s32[0]).toBe(ref);
        const [s64] = run((t) => sum(t), [{ shape: [n] }])(x);
        expect(s64[0]).not.toBe(ref); // float64 really is a different (wider) computation
      }),
      { numRuns: 20 },
    );
  });

  it('elementwise chains round after every op: exp(x)·y + z/x − min(x, y)', () => {
    fc.assert(
      fc.property(seedArb, (seed) => {
        const rng = prng(seed);
        const n = int(rng, 1, 16);
        const [x, y, z] = [uniform(rng, n, 0.5, 2), uniform(rng, n, -2, 2), uniform(rng, n, -2, 2)];
        const spec = { shape: [n] };
        const [out] = run(
          (a, b, c) => sub(add(mul(exp(a), b), div(c, a)), minimum(a, b)),
          [spec, spec, spec],
          'f32',
        )(x, y, z);
        const r = Math.fround;
        expect(plain(out)).toEqual(
          Array.from(x, (xv, i) => {
            const [a, b, c] = [r(xv), r(y[i]), r(z[i])];
            return r(r(r(r(Math.exp(a)) * b) + r(c / a)) - Math.min(a, b)) + 0;
          }),
        );
      }),
      { numRuns: RUNS },
    );
  });

  it('i32 values are not touched by f32 rounding', () => {
    const [s] = run(
      (t) => [add(t, 0)],
      [{ shape: [2], dtype: 'i32' }],
      'f32',
    )(Float64Array.of(16777217, -2147483647));
    expect(plain(s)).toEqual([16777217, -2147483647]);
  });
});

// ---------------------------------------------------------------------------------------------
// The public path: jit + createDevice({ kind: 'cpu' }) + array + read/shape

function leaf(x: unknown): DeviceArray {
  expect(x).toBeTypeOf('object');
  expect(x).toHaveProperty('read');
  return x as DeviceArray;
}

describe('jit on the CPU device', () => {
  it('runs tree-shaped arguments and results; read() and shape work', async () => {
    const device = await createDevice({ kind: 'cpu' });
    const f = (params: { w: Tensor; b: Tensor }, batch: [Tensor, Tensor]) => {
      const [x, scale] = batch;
      const y = add(matmul(x, params.w), params.b);
      return { y, stats: [sum(y), max(y).mul(scale)], count: cast(x.gt(0), 'i32').sum() };
    };
    const step = jit(f, { device });
    const w = [
      [1, 2],
      [3, 4],
      [5, 6],
    ];
    const xv = [0.5, -1, 2, 1, 0, -0.25];
    const result = await step({ w: array(w), b: array([0.5, -0.5]) }, [array(xv, [2, 3]), 3]);
    const tree = result as { y: unknown; stats: unknown[]; count: unknown };
    const y = leaf(tree.y);
    expect(y.shape).toEqual([2, 2]);
    const ref = [0, 1].flatMap((i) =>
      [0, 1].map(
        (j) =>
          xv[i * 3] * w[0][j] + xv[i * 3 + 1] * w[1][j] + xv[i * 3 + 2] * w[2][j] + [0.5, -0.5][j],
      ),
    );
    expect(Array.from(await y.read())).toEqual(ref);
    expect(leaf(tree.stats[0]).shape).toEqual([]);
    expect((await leaf(tree.stats[0]).read())[0]).toBe(ref.reduce((s, v) => s + v, 0));
    expect((await leaf(tree.stats[1]).read())[0]).toBe(Math.max(...ref) * 3);
    const count = leaf(tree.count);
    expect(count.dtype).toBe('i32');
    expect(Array.from(await count.read())).toEqual([xv.filter((v) => v > 0).length]);

    // Device arrays from an earlier call can be passed back in.
    const again = jit((t: Tensor) => t.mul(2), { device });
    const doubled = leaf(await again(y));
    expect(Array.from(await doubled.read())).toEqual(ref.map((v) => 2 * v));
  });

  it('float32 CPU device rounds like interpret(..., { precision: f32 })', async () => {
    const device = await createDevice({ kind: 'cpu', precision: 'f32' });
    const out = leaf(await jit((t: Tensor) => add(t, 1e-8), { device })(array([1, 0.1])));
    expect(Array.from(await out.read())).toEqual([
      1,
      Math.fround(Math.fround(0.1) + Math.fround(1e-8)),
    ]);
  });

  it('traces once per input signature (tree structure, shapes, dtypes)', async () => {
    const device = await createDevice({ kind: 'cpu' });
    let traces = 0;
    const f = jit(
      (x: Tensor, extra: { s: Tensor }) => {
        traces++;
        return add(sum(x), sum(extra.s).cast('f32'));
      },
      { device },
    );
    const read = async (p: Promise<unknown>): Promise<number> => (await leaf(await p).read())[0];
    expect(await read(f(array([1, 2, 3]), { s: array([1]) }))).toBe(7);
    expect(traces).toBe(1);
    expect(await read(f(array([4, 5, 6]), { s: array([2]) }))).toBe(17); // same signature: cached
    expect(traces).toBe(1);
    expect(await read(f(array([1, 2, 3, 4]), { s: array([1]) }))).toBe(11); // new shape
    expect(traces).toBe(2);
    // new dtype (i32)
    expect(await read(f(array([1, 2, 3]), { s: array(Int32Array.of(5)) }))).toBe(11);
    expect(traces).toBe(3);
    // back to the first: still cached
    expect(await read(f(array([1, 2, 3]), { s: array([1]) }))).toBe(7);
    expect(await read(f(array([[1, 2, 3]]), { s: array([1]) }))).toBe(7); // rank 2: new signature
    expect(traces).toBe(4);
    expect(await read(f(2, { s: array([1]) }))).toBe(3); // a number is an f32 scalar
    expect(traces).toBe(5);
  });

  it('array() builds from nested arrays, flat arrays + shape, and typed arrays', () => {
    const a = array([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(a.shape).toEqual([2, 3]);
    expect(Array.from(a.data)).toEqual([1, 2, 3, 4, 5, 6]);
    const b = array([1, 2, 3, 4, 5, 6], [3, 2]);
    expect(b.shape).toEqual([3, 2]);
    expect(array(Int32Array.of(1, 2)).dtype).toBe('i32');
    expect(array(Float32Array.of(1, 2)).dtype).toBe('f32');
  });
});
