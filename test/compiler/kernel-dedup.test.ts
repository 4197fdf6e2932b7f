// Kernels that differ only in where their data lives are one WGSL text, hence one pipeline for
// the driver to compile: array offsets and scalars-uniform cells are read from each dispatch's
// `offsets` uniform, bindings are named in the order the kernel reads them, and the scalars
// uniform has a size that does not depend on the program; a plain product reads its sizes there
// too. Each case checks the texts (or the
// device's pipeline count) and that the shared kernels still compute each call site's values.
//
// Bounds: any summation order of a depth-k product is within k·2^-24·Σ|terms| of the exact sum
// (first order), so the GPU and the interpreter agree to 2k·2^-24·Σ|terms|, Σ|terms| the product
// of the operands' absolute values; a product by a scalar rounds once on both sides: exact.
import { describe, expect, test } from 'vitest';
import { input, matmul, mul, relu } from '../../index.js';
import { compileProgram } from '../../compiler/program.js';
import { interpret } from '../../runtime/interpreter.js';
import { DEFAULT_KERNEL_LIMITS, gpuDevice } from '../support/gpu.js';
import { prng, uniform } from '../support/random.js';

const ULP = 2 ** -24;
const LIMITS = DEFAULT_KERNEL_LIMITS;

/** relu(aᵢ·b) for three inputs aᵢ: three matmul kernels of one shape over different arrays. */
function products(n: number) {
  const as = ['a0', 'a1', 'a2'].map((name) => input(name, [n, n]));
  const b = input('b', [n, n]);
  return { as, b, outs: as.map((a) => relu(matmul(a, b))) };
}

describe('kernels that differ only in where their data lives share one pipeline', () => {
  test('equal-shaped products compile to one WGSL text with different placements', () => {
    for (const n of [8, 9]) {
      // 8: the vec4 kernel; 9: the scalar one
      const program = compileProgram(
        products(n).outs.map((t) => t.node),
        { limits: LIMITS },
      );
      const sources = program.kernels.map((k) => k.source);
      expect(sources).toHaveLength(3);
      expect(new Set(sources.map((s) => s.code)).size).toBe(1);
      // each stores its result elsewhere: the placements differ
      expect(new Set(sources.map((s) => s.offsets.join(','))).size).toBe(3);
    }
  });

  test('on the device: one pipeline for the three, each product its own values', async () => {
    const gpu = await gpuDevice();
    const n = 12;
    const { outs } = products(n);
    const names = ['a0', 'a1', 'a2', 'b'];
    const rng = prng(7);
    const values = names.map(() => uniform(rng, n * n, -1, 1));
    const before = { ...gpu.stats };
    const results = await gpu.execute(
      outs.map((t) => t.node),
      new Map(names.map((name, i) => [name, gpu.upload(values[i], [n, n], 'f32')] as const)),
    );
    const got = await Promise.all(results.map((r) => r.read()));
    expect(gpu.stats.dispatches - before.dispatches).toBe(3);
    // what the bench's FLOP floor counts: 2·m·n·k per product
    expect(gpu.stats.matmulFlops - before.matmulFlops).toBe(3 * 2 * n ** 3);
    // at most one new pipeline (none when an earlier test compiled the same kernel)
    expect(gpu.stats.pipelines - before.pipelines).toBeLessThanOrEqual(1);
    const feed = (vs: readonly Float64Array[]) =>
      new Map(names.map((name, i) => [name, vs[i]] as const));
    const ref = interpret(
      outs.map((t) => t.node),
      feed(values),
      { precision: 'f32' },
    );
    const abs = interpret(
      products(n).outs.map((t) => t.node),
      feed(values.map((v) => v.map(Math.abs))),
    );
    // a depth-n product: within 2n·u·Σ|terms| (relu of non-negative terms is their sum)
    ref.forEach((r, k) =>
      r.forEach((v, i) =>
        expect(Math.abs(got[k][i] - v)).toBeLessThanOrEqual(2 * n * ULP * abs[k][i]),
      ),
    );
  });

  test('plain products of different sizes are one text: sizes and strides are uniforms too', async () => {
    // m and n multiples of the 16×16 tile (no edge clamps), k anything: the 'rows' vec4 kernel.
    const sizes = [
      [16, 8, 16],
      [32, 20, 48],
      [48, 36, 32],
    ];
    const cases = sizes.map(([m, k, n], i) => {
      const [a, b] = [input(`a${i}`, [m, k]), input(`b${i}`, [k, n])];
      return { m, k, n, names: [`a${i}`, `b${i}`], out: matmul(a, b) };
    });
    const texts = cases.map((c) =>
      compileProgram([c.out.node], { limits: LIMITS }).kernels.map((k) => k.source.code),
    );
    texts.forEach((t) => expect(t).toHaveLength(1));
    expect(new Set(texts.flat()).size).toBe(1);
    const gpu = await gpuDevice();
    const rng = prng(5);
    for (const { m, k, n, names, out } of cases) {
      const [av, bv] = [uniform(rng, m * k, -1, 1), uniform(rng, k * n, -1, 1)];
      const [result] = await gpu.execute(
        [out.node],
        new Map([
          [names[0], gpu.upload(av, [m, k], 'f32')],
          [names[1], gpu.upload(bv, [k, n], 'f32')],
        ]),
      );
      const got = await result.read();
      const feed = (x: Float64Array, y: Float64Array) =>
        new Map([
          [names[0], x],
          [names[1], y],
        ]);
      const [want] = interpret([out.node], feed(av, bv), { precision: 'f32' });
      const [scale] = interpret([out.node], feed(av.map(Math.abs), bv.map(Math.abs)));
      // a depth-k product: within 2k·u·Σ|terms|
      want.forEach((w, i) =>
        expect(Math.abs(got[i] - w)).toBeLessThanOrEqual(2 * k * ULP * scale[i]),
      );
    }
  });

  test('a kernel reading a per-call scalar is one text in programs with more scalars', async () => {
    // x·s alone, and beside y·u (y of another size, so not one segment with it, and no merging:
    // this is about one kernel's text): `s` is the first scalar of one program, the second of the
    // other.
    const [x, y] = [input('x', [20_000]), input('y', [20_004])];
    const [s, u] = [input('s', []), input('u', [])];
    const options = { limits: LIMITS, maxMergedInvocations: 0 };
    const one = compileProgram([mul(x, s).node], options);
    const two = compileProgram([mul(y, u).node, mul(x, s).node], options);
    expect(two.kernels).toHaveLength(2);
    const xs = two.kernels.filter((k) => k.segments[0].roots[0].shape[0] === 20_000);
    expect(xs).toHaveLength(1);
    expect(xs[0].source.code).toBe(one.kernels[0].source.code);
    expect(xs[0].source.offsets).not.toEqual(one.kernels[0].source.offsets); // another cell
    const gpu = await gpuDevice();
    const rng = prng(11);
    const [xv, yv] = [uniform(rng, 20_000, -1, 1), uniform(rng, 20_004, -1, 1)];
    const results = await gpu.execute(
      [mul(y, u).node, mul(x, s).node],
      new Map([
        ['x', gpu.upload(xv, [20_000], 'f32')],
        ['y', gpu.upload(yv, [20_004], 'f32')],
        ['s', gpu.upload(Float64Array.of(0.5), [], 'f32')],
        ['u', gpu.upload(Float64Array.of(-3), [], 'f32')],
      ]),
    );
    const [gy, gx] = await Promise.all(results.map((r) => r.read()));
    // one f32 product each, as the interpreter rounds it: exact
    const round = (v: number) => Math.fround(v);
    yv.forEach((v, i) => expect(gy[i]).toBe(round(round(v) * -3)));
    xv.forEach((v, i) => expect(gx[i]).toBe(round(round(v) * 0.5)));
  });
});
