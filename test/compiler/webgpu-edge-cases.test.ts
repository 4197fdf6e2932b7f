// Regressions found by the compiler fuzz (scripts/fuzz-compiler.ts): graphs the DSL accepts that
// compiled to WGSL the device rejected, or ran to answers other than the interpreter's.
//
// Every result here is exact (casts, movement, integer maxima, sums of zero terms, products over
// k = 0), so WebGPU must match the float32 interpreter bit for bit.
import { describe, expect, test } from 'vitest';
import {
  add,
  array,
  cast,
  flatten,
  GrngError,
  input,
  jit,
  log,
  matmul,
  max,
  mean,
  mT,
  mul,
  pad,
  reshape,
  sum,
  windows,
  type DeviceArray,
  type Tensor,
} from '../../index.js';
import { CpuDevice } from '../../runtime/cpu-device.js';
import { compileProgram } from '../../compiler/program.js';
import { interpret } from '../../runtime/interpreter.js';
import { DEFAULT_KERNEL_LIMITS, gpuDevice } from '../support/gpu.js';
import { plain } from '../support/random.js';

/** `outputs` of the inputs on WebGPU (under a validation error scope) and in the interpreter. */
async function both(
  build: (...xs: Tensor[]) => Tensor[],
  inputs: readonly { shape: number[]; dtype?: 'f32' | 'i32'; data: number[] }[],
) {
  const xs = inputs.map((x, i) => input(`e${i}`, x.shape, x.dtype ?? 'f32'));
  const outs = build(...xs).map((t) => t.node);
  const values = new Map(inputs.map((x, i) => [`e${i}`, Float64Array.from(x.data)] as const));
  const want = interpret(outs, values, { precision: 'f32' });
  const gpu = await gpuDevice();
  gpu.gpu.pushErrorScope('validation');
  const arrays = new Map(
    inputs.map(
      (x, i) =>
        [`e${i}`, gpu.upload(Float64Array.from(x.data), x.shape, x.dtype ?? 'f32')] as const,
    ),
  );
  const got = await Promise.all((await gpu.execute(outs, arrays)).map((a) => a.read()));
  const rejected = await gpu.gpu.popErrorScope();
  return { want, got, rejected: rejected?.message };
}

describe('arrays with a zero-size axis', () => {
  // Kernels over zero elements used to be generated anyway: a product's tile of 0 rows (NaN
  // invocations in the WGSL) and a reshape's index divided by a literal 0i stride; reads of an
  // empty operand under a guard clamped to [0, −1].
  const cases: {
    name: string;
    shapes: number[][];
    build: (...xs: Tensor[]) => Tensor[];
  }[] = [
    { name: '[0, 1] @ [1, 0]', shapes: [[0, 1]], build: (a) => [matmul(a, mT(a))] },
    {
      name: 'batched product with an empty batch',
      shapes: [[0, 3, 2]],
      build: (a) => [matmul(a, mT(a))],
    },
    {
      name: 'a flattened empty array beside log of it',
      shapes: [[2, 0]],
      build: (a) => [flatten(a), log(add(mul(a, a), 1))],
    },
    // an empty operand read (never, under the pad's guard) by a kernel over non-empty elements
    {
      name: 'padding an empty reshape',
      shapes: [[2, 0]],
      build: (a) => [pad(reshape(a, [0, 3]), [1, 0], [1, 0])],
    },
    // padding around an empty image gives windows of zeros
    {
      name: 'padded windows of an empty image',
      shapes: [[1, 0, 1, 1]],
      build: (a) => [windows(a, [1, 1], { padding: 1 })],
    },
    {
      name: 'sums, means and maxima over an empty axis',
      shapes: [[3, 0]],
      build: (a) => [sum(a, 1), max(a, 1), mean(a, 1)],
    },
    {
      name: 'a product over k = 0',
      shapes: [
        [3, 0],
        [0, 2],
      ],
      build: (a, b) => [matmul(a, b)],
    },
  ];
  test.each(cases)('$name', async ({ shapes, build }) => {
    const { want, got, rejected } = await both(
      build,
      shapes.map((shape) => ({
        shape,
        data: Array.from({ length: shape.reduce((a, d) => a * d, 1) }, (_, i) => i),
      })),
    );
    expect(rejected).toBeUndefined();
    // exact: no arithmetic reaches these values (NaN means are NaN on both sides)
    got.forEach((g, k) => expect(plain(g)).toEqual(plain(want[k])));
  });

  test('the maximum of an empty i32 group is the smallest i32, as in the kernel', async () => {
    const { want, got, rejected } = await both(
      (a) => [max(a, 1)],
      [{ shape: [2, 0], dtype: 'i32', data: [] }],
    );
    expect(rejected).toBeUndefined();
    expect(plain(want[0])).toEqual([-2147483648, -2147483648]);
    expect(plain(got[0])).toEqual(plain(want[0]));
  });
});

describe('f32 → i32 casts of values outside i32', () => {
  test('NaN, ±∞ and values past 2^31 convert as the interpreter does', async () => {
    // WGSL's own i32(x) clamps to [−2^31, 2^31 − 128] and leaves NaN to the implementation:
    // llvmpipe gave −2^31 for NaN and 2^31 − 128 for 3e9 and +∞.
    const data = [NaN, Infinity, -Infinity, 3e9, -3e9, 2147483520, 2147483648, -2147483904, -2.5];
    const { want, got, rejected } = await both(
      (a) => [cast(a, 'i32')],
      [{ shape: [data.length], data }],
    );
    expect(rejected).toBeUndefined();
    expect(plain(want[0])).toEqual([
      0, 2147483647, -2147483648, 2147483647, -2147483648, 2147483520, 2147483647, -2147483648, -2,
    ]);
    expect(plain(got[0])).toEqual(plain(want[0]));
  });
});

describe("loops past llvmpipe's 65535 iterations per invocation", () => {
  // llvmpipe stops an invocation's loops after 65535 iterations in all, silently: a sum over 5M
  // ones came out as 131070, a product over k = 65537 as 65535 in its first row and 0 in its
  // second. Sums of small integers below 2^24 are exact in any order, so these must match exactly.
  test('a sum and a maximum over 4194319 elements per output (64 lanes × 65535 + 79)', async () => {
    const n = 4194319;
    const data = Array.from({ length: n }, (_, i) => (i % 7) - 3 + (i === 1234567 ? 50 : 0));
    const { want, got, rejected } = await both(
      (a) => [sum(a), max(a), sum(add(mul(a, 0), 1))],
      [{ shape: [n], data }],
    );
    expect(rejected).toBeUndefined();
    expect(plain(want[2])).toEqual([n]);
    expect(plain(want[1])).toEqual([data.reduce((m, v) => Math.max(m, v), -Infinity)]);
    got.forEach((g, k) => expect(plain(g)).toEqual(plain(want[k])));
  });

  test('products over k = 65537 and k = 200003, f32 and i32', async () => {
    for (const k of [65537, 200003]) {
      const data = (n: number) =>
        Array.from({ length: n }, (_, i) => (i % 5) - 2 + (i % 11 === 0 ? 1 : 0));
      const { want, got, rejected } = await both(
        (a, b, ai, bi) => [matmul(a, b), matmul(ai, bi), matmul(add(mul(a, 0), 1), b)],
        [
          { shape: [2, k], data: data(2 * k) },
          { shape: [k, 3], data: data(3 * k) },
          { shape: [2, k], dtype: 'i32', data: data(2 * k) },
          { shape: [k, 3], dtype: 'i32', data: data(3 * k) },
        ],
      );
      expect(rejected).toBeUndefined();
      got.forEach((g, j) => expect(plain(g)).toEqual(plain(want[j])));
    }
  });
});

describe('donated arguments', () => {
  test('a result returned twice and copied back into its donated argument', async () => {
    // A scalar argument is read from the scalars uniform, so its result cannot be stored in place:
    // it is computed in the arena and copied back. The repeat's copy read the arena's region
    // before the memory plan had made it (the device then read `.slot` of undefined).
    const gpu = await gpuDevice();
    for (const shape of [[], [5]]) {
      const n = shape.length === 0 ? 1 : 5;
      const data = Float64Array.from({ length: n }, (_, i) => 0.5 + i);
      const f = (t: Tensor) => [log(add(mul(t, t), 1)), log(add(mul(t, t), 1))];
      const want = await Promise.all(
        ((await jit(f, { device: new CpuDevice('f32') })(array(data, shape))) as DeviceArray[]).map(
          (a) => a.read(),
        ),
      );
      const out = (await jit(f, { device: gpu, donate: 0 })(
        gpu.upload(data, shape, 'f32'),
      )) as DeviceArray[];
      const got = await Promise.all(out.map((a) => a.read()));
      // log within a few ULP on the software adapters: 8 ULP of values below 4
      got.forEach((g, k) =>
        g.forEach((v, i) => expect(Math.abs(v - want[k][i])).toBeLessThanOrEqual(8 * 2 ** -22)),
      );
    }
  });
});

describe('arrays past maxStorageBufferBindingSize', () => {
  test('an input past a binding is bound as windows, and one past maxBufferSize refused when compiling', () => {
    const limits = {
      ...DEFAULT_KERNEL_LIMITS,
      maxStorageBufferBindingSize: 4096,
      maxBufferSize: 16384,
    };
    // 2000 f32 (8000 bytes): two windows of 4096 bytes (1024 f32, a multiple of 256 bytes)
    const program = compileProgram([sum(input('big', [2000])).node], { limits });
    expect([...program.memory.windows.values()]).toEqual([2]);
    expect(program.memory.windowElements).toBe(1024);
    expect(program.kernels.some((k) => k.source.windows !== undefined)).toBe(true);
    // 5000 f32 (20000 bytes) fit no buffer of this device
    const compile = () => compileProgram([sum(input('huge', [5000])).node], { limits });
    expect(compile).toThrow(GrngError);
    expect(compile).toThrow(
      /the input "huge" f32\[5000\] needs 20000 bytes, over the largest buffer this device allows \(16384 bytes, its maxBufferSize\)/,
    );
  });
});
