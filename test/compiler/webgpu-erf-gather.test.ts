// erf and gather on WebGPU: grng_erf (compiler/wgsl/prelude.ts) against the correctly rounded
// f32 erf on a dense sweep, and gather's value-dependent index (the ids' values pick the rows)
// against the float32 interpreter, fused and unfused: in every kind of kernel that can inline it,
// with ids out of range, computed ids, computed tables, its scatter-add gradient, and a donated
// table that the result must not overwrite in place.
import { describe, expect, test } from 'vitest';
import {
  add,
  cast,
  constant,
  erf,
  floor,
  gelu,
  grad,
  input,
  matmul,
  mul,
  pad,
  reshape,
  sin,
  slice,
  sum,
  take,
  tanh,
  type Tensor,
} from '../../index.js';
import type { DType } from '../../core/ir/index.js';
import { erf as erf64 } from '../../core/ops/erf.js';
import { interpret } from '../../runtime/interpreter.js';
import { gpuDevice } from '../support/gpu.js';
import { int, prng, uniform } from '../support/random.js';

/** One f32 ULP of the (normal) value y: 2^(⌊log₂|y|⌋ − 23). */
const ulpOf = (y: number): number => 2 ** (Math.floor(Math.log2(Math.abs(y))) - 23);

interface Arg {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype?: DType;
  readonly data: Float64Array;
}

/** The outputs on WebGPU and on the float32 interpreter. */
async function both(
  outputs: readonly Tensor[],
  args: readonly Arg[],
  fuse: boolean,
  donated: readonly string[] = [],
  backend: 'auto' | 'swiftshader' = 'auto',
): Promise<{ got: Float64Array[]; want: Float64Array[] }> {
  const nodes = outputs.map((t) => t.node);
  const want = interpret(nodes, new Map(args.map((a) => [a.name, a.data] as const)), {
    precision: 'f32',
  });
  const gpu = await gpuDevice(backend);
  gpu.fuse = fuse;
  try {
    const inputs = new Map(
      args.map((a) => [a.name, gpu.upload(a.data, a.shape, a.dtype ?? 'f32')] as const),
    );
    const results = await gpu.execute(nodes, inputs, { donated: new Set(donated) });
    return { got: await Promise.all(results.map((r) => r.read())), want };
  } finally {
    gpu.fuse = true;
  }
}

describe('erf on WebGPU', () => {
  // Bound: grng_erf is within 1.44 ULP of erf with a correctly rounded exp (its comment); WGSL
  // allows exp 3 + 2|p| ULP, and each ULP of exp is ≤ ¼ ULP of the result near |x| = 0.92
  // (|p| ≈ 1.6: 6.2 ULP of exp, 1.55 ULP of erf), less further out where e^p shrinks faster than
  // |p| grows. 1.44 + 1.55 < 3 ULP of the correctly rounded f32 result (the float32 interpreter's).
  const MAX_ULP = 3;

  for (const backend of ['auto', 'swiftshader'] as const) {
    test(`within 3 ULP of the correctly rounded erf on [-6, 6], vec4 and scalar (${backend})`, async () => {
      const n = 1 << 16;
      const xs = new Float64Array(n + 2048);
      for (let i = 0; i < n; i++) xs[i] = Math.fround(-6 + (12 * (i + 0.5)) / n);
      // Tiny magnitudes down to 1e-30 (normal f32s), both signs.
      for (let i = 0; i < 2048; i++)
        xs[n + i] = Math.fround((i % 2 ? -1 : 1) * 10 ** (-30 + i / 70));
      const x = input('erf_x', [xs.length]);
      // erf(x) runs on vec4s; through a pad and slice (identity values) the kernel is scalar.
      const scalar = erf(slice(pad(x, [1], [0]), [1], [xs.length + 1]));
      const { got } = await both(
        [erf(x), scalar],
        [{ name: 'erf_x', shape: [xs.length], data: xs }],
        true,
        [],
        backend,
      );
      for (const g of got) {
        let worst = 0;
        let at = 0;
        xs.forEach((v, i) => {
          const want = Math.fround(erf64(v));
          const e = want === 0 ? Math.abs(g[i]) : Math.abs(g[i] - want) / ulpOf(want);
          if (e > worst) [worst, at] = [e, v];
        });
        console.log(`grng_erf (${backend}): worst ${worst.toFixed(2)} ULP at x = ${at}`);
        expect(worst).toBeLessThanOrEqual(MAX_ULP);
        // Past |x| ≈ 3.83 erf rounds to ±1 in f32, and the clamp at 4 keeps it there.
        expect([g[0], g[n - 1]]).toEqual([-1, 1]);
      }
    });
  }

  test('gelu (both forms) matches the float32 interpreter', async () => {
    const xs = uniform(prng(3), 4096, -8, 8);
    const x = input('gelu_x', [4096]);
    const { got, want } = await both(
      [gelu(x), gelu(x, 'tanh')],
      [{ name: 'gelu_x', shape: [4096], data: xs }],
      true,
    );
    // gelu = ½x·(1 + erf(x/√2)): erf's 3 ULP (of a value ≤ 1) plus the interpreter's and the
    // kernel's own roundings (x/√2, 1 + ·, two products: ≤ 4 half-ULPs each side) is ≤ 8·2^-24
    // relative to |x|; the tanh form likewise (WGSL tanh here: grng_tanh, a few ULP). Absolute
    // in |x| because 1 + erf cancels for negative x.
    for (let k = 0; k < 2; k++)
      xs.forEach((v, i) =>
        expect(Math.abs(got[k][i] - want[k][i])).toBeLessThanOrEqual(
          8 * 2 ** -24 * (1 + Math.abs(v)),
        ),
      );
  });
});

describe('gather on WebGPU', () => {
  const V = 7;
  const D = 5;
  const rng = prng(11);
  const table = uniform(rng, V * D);
  // Ids [3, 4], a third of them out of range (−3…−1 and V…V+2 clamp to rows 0 and V − 1).
  const ids = Float64Array.from({ length: 12 }, () => int(rng, -3, V + 2));
  const xs = uniform(rng, 12, 0, 1);
  const w = uniform(rng, D * 6);
  const args: Arg[] = [
    { name: 'E', shape: [V, D], data: table },
    { name: 'ids', shape: [3, 4], dtype: 'i32', data: ids },
    { name: 'u', shape: [3, 4], data: xs },
    { name: 'W', shape: [D, 6], data: w },
    { name: 'Ei', shape: [V, D], dtype: 'i32', data: table.map((v) => Math.round(v * 100)) },
  ];
  const E = input('E', [V, D]);
  const I = input('ids', [3, 4], 'i32');
  const U = input('u', [3, 4]);
  const W = input('W', [D, 6]);
  const Ei = input('Ei', [V, D], 'i32');

  // Exact: copies of rows (and of i32 rows) involve no arithmetic.
  const copies: Record<string, Tensor> = {
    'take(E, ids)': take(E, I),
    'take(Ei, ids) (i32 table)': take(Ei, I),
    'take(E, 3) (one id)': take(E, 3),
    'take(E, 99) (one id, clamped)': take(E, 99),
    'take(take(E, ids), [2, 0, 1]) (gather of a gather)': take(
      take(E, I),
      constant([2, 0, 1], [3], 'i32'),
    ),
    // Ids computed inside the kernel: ⌊u·(V + 2)⌋ − 1 covers −1…V (products and floor are
    // correctly rounded on both sides, so the ids agree).
    'take(E, ⌊u·(V+2)⌋ − 1) (computed ids)': take(E, add(cast(floor(mul(U, V + 2)), 'i32'), -1)),
  };
  // With arithmetic around the gather; table entries and u are within [-1, 1]. Both sides round
  // (the interpreter ideally), so each bound counts the roundings of both.
  const computed: Record<string, { out: Tensor; tol: number }> = {
    // WGSL tanh (grng_tanh) within 8·2^-23 of |tanh| ≤ 1 on the software adapters, doubled.
    'tanh(take(E, ids))·2 (fused elementwise)': {
      out: mul(tanh(take(E, I)), 2),
      tol: 16 * 2 ** -23,
    },
    // 3·5 terms ≤ 1 summed one by one: each rounding ≤ 2^-24·15, on both sides.
    'sum(take(E, ids), [0, 2]) (inside a reduction)': {
      out: sum(take(E, I), [0, 2]),
      tol: 2 * 15 * 15 * 2 ** -24,
    },
    // Products over k = D = 5 terms ≤ 1: ≤ 2·k roundings of partial sums ≤ k, on both sides.
    'take(E·W, ids) (table from a matmul)': {
      out: take(matmul(E, W), I),
      tol: 2 * 2 * D * D * 2 ** -24,
    },
    'take(E, ids)·W (gathered matmul operand)': {
      out: matmul(take(E, I), W),
      tol: 2 * 2 * D * D * 2 ** -24,
    },
    // Row sums of ≤ 12 terms cos(e)·(1 + u) ≤ 2: cos within 8 ULP (as tanh), the product and the
    // one-hot matmul's sum rounding too: ≤ 12·2·(8 + 2 + 12)·2^-24.
    'd/dE Σ sin(take(E, ids))·(1 + u) (scatter-add gradient)': {
      out: grad((e: Tensor) => sum(mul(sin(take(e, I)), add(reshape(U, [3, 4, 1]), 1))))(E),
      tol: 12 * 2 * 22 * 2 ** -24,
    },
  };

  for (const fuse of [true, false]) {
    test(`row copies are exact (${fuse ? 'fused' : 'unfused'})`, async () => {
      const outs = Object.values(copies);
      const { got, want } = await both(outs, args, fuse);
      Object.keys(copies).forEach((name, k) =>
        expect(Array.from(got[k]), name).toEqual(Array.from(want[k])),
      );
    });

    test(`gathers inside other kernels match the interpreter (${fuse ? 'fused' : 'unfused'})`, async () => {
      const entries = Object.entries(computed);
      const { got, want } = await both(
        entries.map(([, c]) => c.out),
        args,
        fuse,
      );
      entries.forEach(([name, { tol }], k) => {
        expect(got[k].length, name).toBe(want[k].length);
        want[k].forEach((r, i) => expect(Math.abs(got[k][i] - r), name).toBeLessThanOrEqual(tol));
      });
    });
  }

  test('a wide reduction (one workgroup per output) over gathered rows', async () => {
    // 400·5 = 2000 elements per output: the workgroup-per-output kernel, lanes summing strided
    // shares. Quarter-integers of magnitude ≤ 2 keep every partial sum exact in f32 (≤ 4000 < 2^22
    // quarters), so any summation order gives the interpreter's result exactly.
    const q = table.map((v) => Math.round(v * 8) / 4);
    const many = Float64Array.from({ length: 400 }, (_, i) => ((i * 5) % (V + 3)) - 1);
    const Q = input('Q', [V, D]);
    const J = input('J', [400], 'i32');
    for (const fuse of [true, false]) {
      const { got, want } = await both(
        [sum(take(Q, J)), sum(mul(take(Q, J), 2), 0)],
        [
          { name: 'Q', shape: [V, D], data: q },
          { name: 'J', shape: [400], dtype: 'i32', data: many },
        ],
        fuse,
      );
      got.forEach((g, k) => expect(Array.from(g)).toEqual(Array.from(want[k])));
    }
  });

  test('a donated table is not overwritten while other rows still read it', async () => {
    // E' = E + take(E, reversed rows): element [i, j] reads row V−1−i, which another invocation
    // writes. Stored in place into E, rows would be read after they were overwritten.
    const reversed = constant(
      Array.from({ length: V }, (_, i) => V - 1 - i),
      [V],
      'i32',
    );
    const { got, want } = await both([add(E, take(E, reversed))], args, true, ['E']);
    expect(Array.from(got[0])).toEqual(Array.from(want[0]));
  });
});
