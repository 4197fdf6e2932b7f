// Matmuls with fused elementwise epilogues: relu(a·b + bias) and the like compile to one
// dispatch that evaluates the epilogue on each accumulator before storing it. Checked on all
// three matmul kernels (vec4 rows, dot for a transposed b, scalar fallback), odd sizes, batches,
// biases broadcast from [n] (also packed into one buffer with the operands), one-element inputs
// read from the scalars uniform and tanh/exp, against the float32 interpreter. A product read
// elsewhere too is stored beside its epilogue; cases that must not fuse (product and epilogue
// both returned, or the product read transposed) still compute the right values.
//
// Bounds. c = a·b sums `depth` products; any summation order (sequential, or dot products of
// 4 terms, with or without fused multiply-adds) is within depth·u·S of the exact sum, S = Σ|aᵢbᵢ|
// (u = 2^-24, first order: the (depth·u)² terms are below 1e-4 of it), so the GPU and the
// interpreter agree on c to E = 2·depth·u·S. Each epilogue adds what it makes of E and its own
// roundings on both sides, derived next to it below.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { add, exp, gt, input, matmul, mul, relu, slice, tanh, type Tensor } from '../../index.js';
import { packedInputs } from '../../compiler/memory/layout.js';
import { compileProgram, explainProgram } from '../../compiler/program.js';
import { interpret } from '../../runtime/interpreter.js';
import { gpuDevice } from '../support/gpu.js';
import { prng, seedArb, uniform } from '../support/random.js';

const ULP = 2 ** -24;
const SIZES = [1, 3, 17, 65];
const DEFAULTS = {
  maxStorageBuffersPerShaderStage: 8,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
};

type Layout = 'rows' | 'dot' | 'scalar';

/**
 * Operands that select each matmul kernel: 'rows' (n % 4 = 0: b's rows as vec4s), 'dot' (b
 * given transposed, k % 4 = 0), 'scalar' (n odd: the general kernel).
 */
function operands(layout: Layout, m: number, k: number, n: number, batch: number) {
  const lead = batch === 1 ? [] : [batch];
  if (layout === 'rows')
    return {
      a: [...lead, m, k],
      b: [...lead, k, 4 * n],
      cols: 4 * n,
      depth: k,
      product: (a: Tensor, b: Tensor) => matmul(a, b),
    };
  // A transposed b is stored transposed first (a 'rows' product); a slice of one is read in place,
  // along k: the 'dot' kernel.
  if (layout === 'dot')
    return {
      a: [...lead, m, 4 * k],
      b: [...lead, 4 * n, 4 * k + 4],
      cols: 4 * n,
      depth: 4 * k,
      product: (a: Tensor, b: Tensor) =>
        matmul(a, slice(b.mT, [...lead.map(() => 0), 0, 0], [...lead, 4 * k, 4 * n])),
    };
  return {
    a: [...lead, m, k],
    b: [...lead, k, n],
    cols: n,
    depth: k,
    product: (a: Tensor, b: Tensor) => matmul(a, b),
  };
}

/**
 * How each kernel's WGSL is recognized (storage declarations only: the scalars uniform is a vec4
 * array too).
 */
const kernelIs: Record<Layout, (wgsl: string) => boolean> = {
  rows: (k) => /var<storage[^;]*array<vec4<f32>>/.test(k) && !k.includes('dot('),
  dot: (k) => k.includes('dot('),
  scalar: (k) => !/var<storage[^;]*vec4/.test(k),
};

interface Extras {
  readonly bias: Tensor; // [cols], broadcast over rows and batches
  readonly s: Tensor; // [], read from the scalars uniform
  readonly other: Tensor; // c's shape, read at the element's own index
}

interface Epilogue {
  readonly name: string;
  readonly uses: readonly (keyof Extras)[];
  readonly build: (c: Tensor, x: Extras) => Tensor;
  /** The allowed |gpu − interpreter| given c's bound E, S = Σ|terms| and the reference value. */
  readonly tol: (E: number, S: number, ref: number) => number;
}

const epilogues: Epilogue[] = [
  {
    name: 'relu(c + bias)',
    uses: ['bias'],
    build: (c, { bias }) => relu(add(c, bias)),
    // relu is exact and 1-Lipschitz; the add rounds once on each side, ≤ u·|c + bias| ≤ u·(S + 1).
    tol: (E, S) => E + 3 * ULP * (S + 1),
  },
  {
    name: 'tanh(c·s) + bias',
    uses: ['bias', 's'],
    build: (c, { bias, s }) => add(tanh(mul(c, s)), bias),
    // |s| ≤ 1: the product carries E and rounds once each side (2u·S); tanh is 1-Lipschitz, WGSL's
    // within 8·2^-23 of |tanh| ≤ 1 (as on the software adapters), the interpreter's within u;
    // the add of values ≤ 2 rounds once each side (4u): 16u + u + 4u ≤ 24u.
    tol: (E, S) => E + 2 * ULP * S + 24 * ULP,
  },
  {
    name: 'exp(c·0.05)·other',
    uses: ['other'],
    build: (c, { other }) => mul(exp(mul(c, 0.05)), other),
    // x = c·0.05 differs by 0.05·E plus 3 roundings of ≤ 0.05·S (0.05 itself and the product);
    // exp turns Δx into a relative error Δx (|Δx| ≪ 1), WGSL's exp errs by (3 + 2|x|)·2^-23
    // relative, |x| ≤ 0.05·S; the interpreter's exp and both sides' final mul by u each (3u).
    // 1.01 covers e^Δx − 1 ≤ 1.01·Δx.
    tol: (E, S, ref) =>
      1.01 * Math.abs(ref) * (0.05 * E + 0.15 * ULP * S + 2 * (3 + 0.1 * S) * 2 * ULP + 3 * ULP),
  },
];

interface Run {
  readonly got: readonly Float64Array[];
  readonly ref: readonly Float64Array[];
  readonly dispatches: number;
}

/**
 * Runs `outs` on the GPU (the f32 inputs packed into one buffer when `packed`, as uploadAll
 * does with parameters) and on the f32 interpreter; counts the GPU dispatches of the call.
 */
async function run(
  outs: readonly Tensor[],
  inputs: readonly { name: string; shape: readonly number[] }[],
  seed: number,
  packed: boolean,
  donated?: ReadonlySet<string>,
): Promise<Run & { values: Float64Array[] }> {
  const gpu = await gpuDevice();
  const rng = prng(seed);
  const values = inputs.map(({ shape }) =>
    uniform(
      rng,
      shape.reduce((x, d) => x * d, 1),
      -1,
      1,
    ),
  );
  const ref = interpret(
    outs.map((t) => t.node),
    new Map(inputs.map(({ name }, i) => [name, values[i]] as const)),
    { precision: 'f32' },
  );
  const items = inputs.map(({ shape }, i) => ({ data: values[i], shape, dtype: 'f32' as const }));
  const arrays = packed
    ? gpu.uploadAll(items)
    : items.map((it) => gpu.upload(it.data, it.shape, it.dtype));
  const before = gpu.stats.dispatches;
  const results = await gpu.execute(
    outs.map((t) => t.node),
    new Map(inputs.map(({ name }, i) => [name, arrays[i]] as const)),
    { donated },
  );
  const got = await Promise.all(results.map((r) => r.read()));
  return { got, ref, values, dispatches: gpu.stats.dispatches - before };
}

/** Σ|terms| of c at each element: the product of the operands' absolute values, in float64. */
function termSums(
  c: Tensor,
  names: readonly string[],
  values: readonly Float64Array[],
): Float64Array {
  return interpret(
    [c.node],
    new Map(names.map((n, i) => [n, values[i].map(Math.abs)] as const)),
  )[0];
}

describe('matmul with a fused elementwise epilogue', () => {
  test(
    'one dispatch per kernel, layout, size, batch and epilogue; matches ' + 'the interpreter',
    async () => {
      const gpu = await gpuDevice();
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom<Layout>('rows', 'dot', 'scalar'),
          fc.constantFrom(...SIZES),
          fc.constantFrom(...SIZES),
          fc.constantFrom(...SIZES),
          fc.constantFrom(1, 2),
          fc.constantFrom(...epilogues),
          fc.boolean(),
          seedArb,
          async (layout, m, k, n, batch, epilogue, packed, seed) => {
            const shapes = operands(layout, m, k, n, batch);
            const [a, b] = [input('a', shapes.a), input('b', shapes.b)];
            const c = shapes.product(a, b);
            const extras: Extras = {
              bias: input('bias', [shapes.cols]),
              s: input('s', []),
              other: input('other', c.shape),
            };
            const out = epilogue.build(c, extras);
            const inputs = [
              { name: 'a', shape: shapes.a },
              { name: 'b', shape: shapes.b },
              ...epilogue.uses.map((u) => ({ name: u, shape: extras[u].shape })),
            ];
            const plan = gpu.explain([out.node], true);
            expect(plan.startsWith('1 dispatch'), plan.split('\n')[0]).toBe(true);
            expect(kernelIs[layout](plan), `${layout} kernel`).toBe(true);
            const { got, ref, values, dispatches } = await run([out], inputs, seed, packed);
            expect(dispatches).toBe(1);
            const S = termSums(c, inputs.map((x) => x.name).slice(0, 2), values.slice(0, 2));
            ref[0].forEach((r, i) => {
              const E = 2 * shapes.depth * ULP * S[i];
              expect(Math.abs(got[0][i] - r), `element ${i}`).toBeLessThanOrEqual(
                epilogue.tol(E, S[i], r),
              );
            });
          },
        ),
        { numRuns: 24 },
      );
    },
  );

  test(
    'a bias packed into one buffer with the operands is read by component ' +
      'from the vec4 binding',
    async () => {
      const [a, b, bias] = [input('a', [17, 3]), input('b', [3, 20]), input('bias', [20])];
      const c = matmul(a, b);
      const out = relu(add(c, bias));
      // Compiled as the call below lays the inputs out: one buffer, bound once, as vec4s (b's
      // rows).
      const program = compileProgram([out.node], {
        limits: DEFAULTS,
        inputs: packedInputs([[a.node, b.node, bias.node]]),
      });
      expect(program.kernels).toHaveLength(1);
      const wgsl = explainProgram(program, true);
      expect(wgsl).toMatch(/var<storage, read> b\d+: array<vec4<f32>>/);
      expect(wgsl).toContain('>> 2u]'); // a and the bias: scalar elements of the vec4 binding
      const inputs = [a, b, bias].map((t, i) => ({ name: ['a', 'b', 'bias'][i], shape: t.shape }));
      const { got, ref, values, dispatches } = await run([out], inputs, 5, true);
      expect(dispatches).toBe(1);
      const S = termSums(c, ['a', 'b'], values.slice(0, 2));
      ref[0].forEach((r, i) =>
        expect(Math.abs(got[0][i] - r)).toBeLessThanOrEqual(
          epilogues[0].tol(2 * 3 * ULP * S[i], S[i], r),
        ),
      );
    },
  );

  test('the vec4 kernel evaluates an epilogue on vec4s, four columns at once', async () => {
    // tanh(c·s) + bias with a per-call scalar s: the bias read as vec4s, tanh by its vec4 helper
    const [a, b, bias] = [input('a', [17, 3]), input('b', [3, 20]), input('bias', [20])];
    const scale = input('s', []);
    const c = matmul(a, b);
    const epilogue = epilogues.find((x) => x.name === 'tanh(c·s) + bias') as Epilogue;
    const out = epilogue.build(c, { bias, s: scale, other: bias });
    const wgsl = explainProgram(compileProgram([out.node], { limits: DEFAULTS }), true);
    expect(wgsl).toContain('grng_tanh_v(');
    expect(wgsl).not.toContain('grng_tanh(');
    const inputs = [
      { name: 'a', shape: a.shape },
      { name: 'b', shape: b.shape },
      { name: 'bias', shape: bias.shape },
      { name: 's', shape: scale.shape },
    ];
    const { got, ref, values } = await run([out], inputs, 9, false);
    // |s| ≤ 1 as the epilogue's bound assumes (uniform in [−1, 1])
    const S = termSums(c, ['a', 'b'], values.slice(0, 2));
    ref[0].forEach((r, i) =>
      expect(Math.abs(got[0][i] - r)).toBeLessThanOrEqual(
        epilogue.tol(2 * 3 * ULP * S[i], S[i], r),
      ),
    );
  });

  test('a bool epilogue (c > bias) on the scalar kernel is stored as 0/1', async () => {
    // Integer operands make c exact and half-integer biases leave no ties: the comparison is exact.
    const [a, b, bias] = [input('a', [2, 17, 5]), input('b', [2, 5, 12]), input('bias', [12])];
    const out = gt(matmul(a, b), bias);
    const gpu = await gpuDevice();
    expect(gpu.kernelCount([out.node])).toBe(1);
    const rng = prng(9);
    const ints = (n: number, half: number) =>
      Float64Array.from({ length: n }, () => Math.floor(rng() * 7) - 3 + half);
    const values = [ints(170, 0), ints(120, 0), ints(12, 0.5)];
    const names = ['a', 'b', 'bias'];
    const want = interpret([out.node], new Map(names.map((n, i) => [n, values[i]] as const)))[0];
    const [got] = await gpu.execute(
      [out.node],
      new Map(
        names.map((n, i) => [n, gpu.upload(values[i], [a, b, bias][i].shape, 'f32')] as const),
      ),
    );
    expect(Array.from(await got.read())).toEqual(Array.from(want));
  });

  test('a donated operand is not overwritten while the fused kernel still reads it', async () => {
    // w' = w − 0.1·tanh(w·w): every element of w' reads a row and a column of w, so the result
    // cannot be stored in w's region by the kernel itself (it is copied there after the dispatch).
    const w = input('w', [20, 20]);
    const c = matmul(w, w);
    const out = add(w, mul(tanh(c), -0.1));
    const { got, ref, values, dispatches } = await run(
      [out],
      [{ name: 'w', shape: w.shape }],
      17,
      false,
      new Set(['w']),
    );
    expect(dispatches).toBe(1);
    const S = termSums(c, ['w', 'w'], [values[0], values[0]]);
    // tanh: E plus 8·2^-23 (WGSL) and u (interpreter); ·0.1 (0.1 rounded, ≤ 0.1 of it) and the add
    // round once each side, values ≤ 2.
    ref[0].forEach((r, i) =>
      expect(Math.abs(got[0][i] - r)).toBeLessThanOrEqual(
        0.1 * (2 * 20 * ULP * S[i] + 17 * ULP) + 8 * ULP,
      ),
    );
  });

  test(
    'a product read elsewhere too is stored by the fused kernel beside its ' + 'epilogue',
    async () => {
      // h = relu(a·b + bias) feeds another matmul; z = a·b + other reads the product as well, so
      // the first kernel stores both a·b and h: 3 dispatches (the fused one, h·w2, z), not 4.
      const [a, b, bias, w2, other] = [
        input('a', [17, 3]),
        input('b', [3, 20]),
        input('bias', [20]),
        input('w2', [20, 8]),
        input('other', [17, 20]),
      ];
      const c = matmul(a, b);
      const y = matmul(relu(add(c, bias)), w2);
      const z = add(c, other);
      const program = compileProgram([y.node, z.node], { limits: DEFAULTS });
      expect(
        program.kernels.some(
          (k) => k.segments[0].matmul === c.node && k.segments[0].roots.length === 2,
        ),
      ).toBe(true);
      const names = ['a', 'b', 'bias', 'w2', 'other'];
      const { got, ref, values, dispatches } = await run(
        [y, z],
        names.map((name, i) => ({ name, shape: [a, b, bias, w2, other][i].shape })),
        8,
        false,
      );
      expect(dispatches).toBe(3);
      const S = termSums(c, ['a', 'b'], values.slice(0, 2));
      // h and z: c's E then one add each side (the relu bound above); |h| ≤ S + 1.
      const eh = (e: number) => 2 * 3 * ULP * S[e] + 3 * ULP * (S[e] + 1);
      ref[1].forEach((r, e) => expect(Math.abs(got[1][e] - r)).toBeLessThanOrEqual(eh(e)));
      // y = h·w2 over 20 terms: h's error carried through |w2|, plus y's own sums
      // (2·20·u·Σ|h||w2|).
      ref[0].forEach((r, e) => {
        const [i, j] = [Math.floor(e / 8), e % 8];
        let tol = 0;
        for (let k = 0; k < 20; k++)
          tol +=
            (eh(i * 20 + k) + 2 * 20 * ULP * (S[i * 20 + k] + 1)) * Math.abs(values[3][k * 8 + j]);
        expect(Math.abs(got[0][e] - r)).toBeLessThanOrEqual(tol);
      });
    },
  );

  test(
    'what must not fuse stays correct: the epilogue and the product both ' +
      'returned, or the product read transposed',
    async () => {
      const [a, b, bias, other] = [
        input('a', [17, 3]),
        input('b', [3, 20]),
        input('bias', [20]),
        input('other', [20, 17]),
      ];
      const c = matmul(a, b);
      const named = (pairs: Record<string, Tensor>) =>
        Object.entries(pairs).map(([name, t]) => ({ name, shape: t.shape }));
      // c's error bound at its element [i, j] (E, as above), then one add (u·(S + 1) each side).
      const bound = (values: readonly Float64Array[]) => {
        const S = termSums(c, ['a', 'b'], values.slice(0, 2));
        return (i: number, j: number) =>
          2 * 3 * ULP * S[i * 20 + j] + 3 * ULP * (S[i * 20 + j] + 1);
      };
      // Both returned: a returned epilogue stays with the updates it belongs beside (see
      // fuse-epilogues.ts) when the product is stored anyway: the matmul, then the epilogue.
      const returned = await run([c, relu(add(c, bias))], named({ a, b, bias }), 3, false);
      expect(returned.dispatches).toBe(2);
      const tolR = bound(returned.values);
      for (const k of [0, 1])
        returned.ref[k].forEach((r, e) =>
          expect(Math.abs(returned.got[k][e] - r)).toBeLessThanOrEqual(
            tolR(Math.floor(e / 20), e % 20),
          ),
        );
      // Transposed: (c + otherᵀ)ᵀ's element [j, i] reads c's [i, j], another invocation's
      // accumulator. (c.mT alone would not do: the DSL rewrites (a·b)ᵀ as bᵀ·aᵀ, which fuses.)
      const transposed = await run([add(c, other.mT).mT], named({ a, b, other }), 4, false);
      expect(transposed.dispatches).toBe(2);
      const tolT = bound(transposed.values);
      transposed.ref[0].forEach((r, e) =>
        expect(Math.abs(transposed.got[0][e] - r)).toBeLessThanOrEqual(
          tolT(e % 17, Math.floor(e / 17)),
        ),
      );
    },
  );

  test(
    'not fused when the fused kernel would bind more storage buffers than ' + 'the stage allows',
    () => {
      const [a, b, x1, x2] = [
        input('a', [9, 5]),
        input('b', [5, 8]),
        input('x1', [9, 8]),
        input('x2', [9, 8]),
      ];
      const out = relu(add(add(matmul(a, b), x1), x2));
      // Fused: a, b, x1, x2 and the result: 5 buffers.
      expect(compileProgram([out.node], { limits: DEFAULTS }).kernels).toHaveLength(1);
      const tight = compileProgram([out.node], {
        limits: { ...DEFAULTS, maxStorageBuffersPerShaderStage: 4 },
      });
      expect(tight.kernels).toHaveLength(2);
      for (const k of tight.kernels) expect(k.source.bindings.length).toBeLessThanOrEqual(4);
    },
  );
});
