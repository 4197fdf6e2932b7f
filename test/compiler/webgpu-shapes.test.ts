// Odd sizes on WebGPU vs the float32 interpreter: matmuls whose sizes are not multiples of the
// register tile (8×16 of the general kernel: n is never a multiple of 4 there), batched and
// through transposed operands; the vec4 matmul kernel (16×16 tiles) on its edges, operand
// layouts and fallbacks; reductions over every axis set; broadcasts of 257-long vectors.
//
// Bounds: matmul and sums accumulate in the same sequential order as the interpreter, so the
// results agree to a few f32 roundings of the partial sums: |Δ| ≤ 8·2^-24·Σ|terms| (K ≤ 65).
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  add,
  exp,
  input,
  matmul,
  max,
  mul,
  pad,
  pow,
  slice,
  sub,
  sum,
  tanh,
  type Tensor,
} from '../../index.js';
import { interpret } from '../../runtime/interpreter.js';
import { gpuDevice } from '../support/gpu.js';
import { prng, seedArb, uniform } from '../support/random.js';

/** Unit roundoff of f32: each rounding errs by at most this fraction of the value. */
const ULP = 2 ** -24;
const SIZES = [1, 3, 17, 65];

async function check(
  build: (...xs: Tensor[]) => Tensor,
  shapes: readonly number[][],
  seed: number,
  bound: (ref: Float64Array, abs: Float64Array) => (i: number) => number,
) {
  const rng = prng(seed);
  const names = shapes.map((_, i) => `s${i}`);
  const xs = shapes.map((s, i) => input(names[i], s));
  const out = build(...xs);
  const values = shapes.map((s) =>
    uniform(
      rng,
      s.reduce((a, d) => a * d, 1),
      -1,
      1,
    ),
  );
  const ref = interpret([out.node], new Map(names.map((n, i) => [n, values[i]] as const)), {
    precision: 'f32',
  })[0];
  // Σ|terms|: the same program on absolute values bounds every partial sum.
  const abs = interpret(
    [out.node],
    new Map(names.map((n, i) => [n, values[i].map(Math.abs)] as const)),
  )[0];
  const gpu = await gpuDevice();
  const [got] = await gpu.execute(
    [out.node],
    new Map(names.map((n, i) => [n, gpu.upload(values[i], shapes[i], 'f32')] as const)),
  );
  const g = await got.read();
  const tol = bound(ref, abs);
  expect(g.length).toBe(ref.length);
  ref.forEach((r, i) => expect(Math.abs(g[i] - r)).toBeLessThanOrEqual(tol(i)));
}

describe('WebGPU on odd sizes', () => {
  test('matmul (plain, batched, transposed) for sizes 1, 3, 17, 65', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...SIZES),
        fc.constantFrom(...SIZES),
        fc.constantFrom(...SIZES),
        fc.constantFrom(1, 2),
        fc.boolean(),
        seedArb,
        async (m, k, n, batch, transposed, seed) => {
          const bShape = transposed ? [batch, n, k] : [batch, k, n];
          await check(
            (a, b) => matmul(a, transposed ? b.mT : b),
            [[batch, m, k], bShape],
            seed,
            (_r, abs) => (i) => 8 * ULP * abs[i],
          );
        },
      ),
      { numRuns: 30 },
    );
  });

  test('sum and max over every axis set of a [17, 3, 65] tensor', async () => {
    const axesSets = [[0], [1], [2], [0, 1], [0, 2], [1, 2], [0, 1, 2]];
    for (const axes of axesSets) {
      // 17·3·65 terms at most: sequential f32 sums round at most once per term.
      await check(
        (x) => sum(x, axes),
        [[17, 3, 65]],
        axes.length,
        (_r, abs) => (i) => 3315 * ULP * abs[i],
      );
      await check(
        (x) => max(x, axes),
        [[17, 3, 65]],
        10 + axes.length,
        () => () => 0,
      ); // max is exact
    }
  });

  test('broadcasts of a 257-long vector against a [3, 257] matrix, fused with exp', async () => {
    // WGSL allows exp an error of 3 + 2·|x| ULP; here |x| ≤ 2, so 7 ULP (one ULP ≤ 2^-23·|r|).
    await check(
      (a, v) => exp(add(a, v)),
      [[3, 257], [257]],
      5,
      (ref) => (i) => 7 * 2 ** -23 * Math.abs(ref[i]),
    );
  });
});

describe('the vec4 matmul kernel and its fallbacks', () => {
  // WGSL of the dispatches that compute matmuls.
  async function matmulKernels(out: Tensor): Promise<string[]> {
    const gpu = await gpuDevice();
    return gpu
      .explain([out.node], true)
      .split(/\ndispatch /)
      .filter((d) => /^\s*matmul#/.test(d.split('\n')[1] ?? ''));
  }
  // How the matmul dispatch reads its operands.
  const kernels = {
    // b's rows and c as vec4s, a one scalar at a time from its own binding
    rows: (k: string) =>
      k.includes('array<vec4<f32>>') && !k.includes('dot(') && !k.includes('>> 2u]'),
    // as rows, but a shares a vec4 binding (the arena) and is read by component
    component: (k: string) => k.includes('>> 2u]') && !k.includes('dot(') && !/array<f32>/.test(k),
    // b given transposed: a's rows and b's columns as vec4s along k
    dot: (k: string) => k.includes('dot(') && !/array<f32>/.test(k),
    // the general kernel: scalar bindings only
    scalar: (k: string) => !k.includes('vec4<f32>'),
  };
  // The 16×16 tile's edges (m, n not multiples of 16), batches, strided and inlined operands,
  // operands sharing the arena with each other and with c, and what falls back.
  const cases: {
    name: string;
    kernel: keyof typeof kernels;
    shapes: number[][];
    build: (...t: Tensor[]) => Tensor;
  }[] = [
    {
      name: 'multiples of the tile',
      kernel: 'rows',
      shapes: [
        [128, 256],
        [256, 144],
      ],
      build: (a, b) => matmul(a, b),
    },
    {
      name: 'edges, batched',
      kernel: 'rows',
      shapes: [
        [2, 19, 7],
        [2, 7, 36],
      ],
      build: (a, b) => matmul(a, b),
    },
    {
      name: 'n = 4, m = 1 (a vector)',
      kernel: 'rows',
      shapes: [[5], [5, 4]],
      build: (a, b) => matmul(a, b),
    },
    {
      name: 'b broadcast over the batch',
      kernel: 'rows',
      shapes: [
        [3, 17, 12],
        [12, 20],
      ],
      build: (a, b) => matmul(a, b),
    },
    {
      name: 'a transposed',
      kernel: 'rows',
      shapes: [
        [9, 20],
        [9, 24],
      ],
      build: (a, b) => matmul(a.mT, b),
    },
    {
      name: 'a sliced off the vec4 grid',
      kernel: 'rows',
      shapes: [
        [18, 11],
        [10, 8],
      ],
      build: (a, b) => matmul(slice(a, [0, 1]), b),
    },
    {
      name: 'b sliced on the vec4 grid',
      kernel: 'rows',
      shapes: [
        [6, 5],
        [7, 24],
      ],
      build: (a, b) => matmul(a, slice(b, [2, 4], [7, 20])),
    },
    {
      name: 'a padded (inlined index arithmetic)',
      kernel: 'rows',
      shapes: [
        [5, 6],
        [8, 12],
      ],
      build: (a, b) => matmul(pad(a, [1, 0], [0, 2]), b),
    },
    {
      name: 'operands in the arena',
      kernel: 'component',
      shapes: [
        [21, 10],
        [10, 28],
      ],
      build: (a, b) => matmul(tanh(a), tanh(b)),
    },
    {
      name: 'operands and c in the arena, batched',
      kernel: 'component',
      shapes: [
        [2, 33, 9],
        [2, 9, 20],
      ],
      build: (a, b) => add(matmul(tanh(a), tanh(b)), 1),
    },
    // A transposed b is stored transposed by a kernel of its own, then read along n.
    {
      name: 'b transposed, k % 4 = 0',
      kernel: 'rows',
      shapes: [
        [2, 18, 12],
        [2, 20, 12],
      ],
      build: (a, b) => matmul(a, b.mT),
    },
    {
      name: 'b transposed, k % 4 ≠ 0',
      kernel: 'rows',
      shapes: [
        [10, 7],
        [8, 7],
      ],
      build: (a, b) => matmul(a, b.mT),
    },
    // A slice of a transposed b is read in place, along k.
    {
      name: 'b a slice of a transpose, k % 4 = 0',
      kernel: 'dot',
      shapes: [
        [2, 18, 12],
        [2, 20, 16],
      ],
      build: (a, b) => matmul(a, slice(b.mT, [0, 0, 0], [2, 12, 20])),
    },
    // tanh(b) is a matmul operand, so a slice of tanh(b)ᵀ is index arithmetic over the arena.
    {
      name: 'b a slice of a transpose, in the arena with a',
      kernel: 'dot',
      shapes: [
        [17, 8],
        [8, 8],
      ],
      build: (a, b) =>
        add(
          slice(matmul(tanh(a), tanh(b)), [0, 0], [17, 4]),
          matmul(tanh(a), slice(tanh(b).mT, [0, 0], [8, 4])),
        ),
    },
    {
      name: 'b a slice of a transpose, k % 4 ≠ 0',
      kernel: 'scalar',
      shapes: [
        [10, 7],
        [8, 8],
      ],
      build: (a, b) => matmul(a, slice(b.mT, [0, 0], [7, 8])),
    },
    {
      name: 'n % 4 ≠ 0',
      kernel: 'scalar',
      shapes: [
        [5, 8],
        [8, 6],
      ],
      build: (a, b) => matmul(a, b),
    },
    {
      name: 'a padded, in the arena with b',
      kernel: 'scalar',
      shapes: [
        [5, 8],
        [8, 12],
      ],
      build: (a, b) =>
        add(
          pad(matmul(tanh(a), tanh(b)), [1, 0], [0, 0]),
          matmul(pad(tanh(a), [1, 0], [0, 0]), tanh(b)),
        ),
    },
  ];
  test.each(cases)(
    '$name: $kernel kernel, matches the interpreter',
    async ({ kernel, shapes, build }) => {
      const out = build(...shapes.map((s, i) => input(`s${i}`, s)));
      expect((await matmulKernels(out)).some(kernels[kernel])).toBe(true);
      // Dot products sum 4 terms before accumulating them, and tanh/add around some matmuls round
      // again: within (k + 16) roundings of Σ|terms| (tanh ≤ a few ULP; the longest axis bounds k).
      const longest = Math.max(...shapes.flat());
      await check(build, shapes, 31, (_r, abs) => (i) => (longest + 16) * ULP * abs[i]);
    },
  );
});

describe('vectorized elementwise kernels (vec4)', () => {
  test(
    'an elementwise update with a scalar hyperparameter runs on vec4s and ' +
      'matches the interpreter',
    async () => {
      const gpu = await gpuDevice();
      const build = (x: Tensor, y: Tensor, lr: Tensor) =>
        sub(x, mul(lr, add(tanh(mul(x, y)), pow(add(mul(y, y), 0.5), -1.5))));
      const shapes = [[3, 256], [3, 256], []];
      const xs = shapes.map((s, i) => input(`v${i}`, s));
      expect(gpu.explain([build(xs[0], xs[1], xs[2]).node], true)).toContain('array<vec4<f32>>');
      // tanh/pow within a few ULP on the software adapters; with the O(1) terms here, 8 ULP.
      await check(build, shapes, 11, (ref) => (i) => 8 * 2 ** -23 * (1 + Math.abs(ref[i])));
    },
  );
});

describe('long reductions (a workgroup per output)', () => {
  test('sums and maxima over thousands of elements, with a fused producer', async () => {
    const gpu = await gpuDevice();
    expect(gpu.explain([sum(input('w', [70000])).node], true)).toContain('workgroupBarrier');
    // Summation order differs from the interpreter's sequential one: |Δ| ≤ n·u·Σ|terms|.
    await check(
      (x) => sum(exp(mul(x, 0.5))),
      [[70000]],
      21,
      (_r, abs) => (i) => 70000 * ULP * abs[i],
    );
    await check(
      (x) => sum(x, 1),
      [[3, 4099]],
      22,
      (_r, abs) => (i) => 4099 * ULP * abs[i],
    );
    await check(
      (x) => max(x, [0, 2]),
      [[40, 3, 50]],
      23,
      () => () => 0,
    ); // max is exact in any order
  });
});
