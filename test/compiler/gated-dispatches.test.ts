// Work needed only under a condition computed on the device (a branch of `where` on a one-element
// bool) is gated on it: the device skips the dispatch when the condition does not hold, through an
// indirect dispatch whose workgroup counts a gate kernel zeroes. Checked: which nodes the analysis
// gates and on what, the plans the compiler makes of it, the gate kernel's output, and that gated
// programs compute the interpreter's values on either side of the condition.
//
// Bounds: a depth-k product summed in any order is within k·u·Σ|terms| of the exact value (first
// order, u = 2^-24), so the GPU and the float32 interpreter agree within 2k·u·Σ|terms|.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { add, input, le, lt, matmul, mul, sqnorm, where, type Tensor } from '../../index.js';
import { gatesOf } from '../../compiler/kernels/gates.js';
import { compileProgram } from '../../compiler/program.js';
import { GATE_WGSL } from '../../runtime/gpu/gates.js';
import { interpret } from '../../runtime/interpreter.js';
import { DEFAULT_KERNEL_LIMITS, gpuDevice, recordDispatch } from '../support/gpu.js';
import { prng, seedArb, uniform } from '../support/random.js';

const U = 2 ** -24;
const LIMITS = DEFAULT_KERNEL_LIMITS;

/** where(‖a‖² < t, a·b, b·(b·a)) + 1: one product on one side, two on the other. */
function branches(n: number) {
  const [a, b, t] = [input('a', [n, n]), input('b', [n, n]), input('t', [])];
  const condition = lt(sqnorm(a), t);
  const yes = matmul(a, b);
  const inner = matmul(b, a);
  const no = matmul(b, inner);
  return { condition, yes, inner, no, out: add(where(condition, yes, no), 1) };
}

const gateOf = (gates: ReturnType<typeof gatesOf>, t: Tensor) => {
  const g = gates.get(t.node.id);
  return g === undefined ? undefined : { node: g.node.id, when: g.when };
};

describe('gatesOf: the condition each node is needed under', () => {
  test("a branch is needed under its side of the condition; the condition's inputs always", () => {
    const { condition, yes, inner, no, out } = branches(4);
    const gates = gatesOf([out.node]);
    const c = condition.node.id;
    expect(gateOf(gates, yes)).toEqual({ node: c, when: true });
    expect(gateOf(gates, no)).toEqual({ node: c, when: false });
    expect(gateOf(gates, inner)).toEqual({ node: c, when: false });
    expect(gateOf(gates, condition)).toBeUndefined();
    expect(gateOf(gates, out)).toBeUndefined();
  });

  test('work both branches read, or an output reads, is always needed', () => {
    const [a, t] = [input('a', [4, 4]), input('t', [])];
    const shared = matmul(a, a);
    const c = lt(sqnorm(a), t);
    const out = where(c, add(shared, 1), mul(shared, 2));
    expect(gateOf(gatesOf([out.node]), shared)).toBeUndefined();
    const returned = matmul(a, mul(a, 3));
    const gated = where(c, returned, a);
    expect(gateOf(gatesOf([gated.node]), returned)).toEqual({ node: c.node.id, when: true });
    expect(gateOf(gatesOf([gated.node, returned.node]), returned)).toBeUndefined();
  });

  test('an element-wise condition gates nothing', () => {
    const [a, b] = [input('a', [4, 4]), input('b', [4, 4])];
    const out = where(lt(a, b), matmul(a, b), matmul(b, a));
    for (const g of gatesOf([out.node]).values()) expect(g).toBeUndefined();
  });

  test('a chain of "still going" flags gates each step on the latest flag it needs', () => {
    // xⱼ₊₁ = xⱼ², and flag j + 1 = flag j and ‖xⱼ₊₁‖² ≤ t: the result is the last kept x.
    const [x0, t] = [input('x0', [4, 4]), input('t', [])];
    const x1 = matmul(x0, x0);
    const going1 = le(sqnorm(x1), t);
    const x2 = matmul(x1, x1);
    const going2 = where(going1, le(sqnorm(x2), t), 0);
    const x3 = matmul(x2, x2);
    const going3 = where(going2, le(sqnorm(x3), t), 0);
    const result = where(going3, x3, where(going2, x2, where(going1, x1, x0)));
    const gates = gatesOf([result.node]);
    // x₃ decides flag 3, which is read only when flag 2 holds (flag 2 implies flag 1: the later
    // one is the one to gate on); x₂ decides flag 2, read when flag 1 holds
    expect(gateOf(gates, x3)).toEqual({ node: going2.node.id, when: true });
    expect(gateOf(gates, x2)).toEqual({ node: going1.node.id, when: true });
    // x₁ decides flag 1 itself: always needed
    expect(gateOf(gates, x1)).toBeUndefined();
    expect(gateOf(gates, going1)).toBeUndefined();
  });
});

describe('compiled gated programs', () => {
  test("each branch's products run when their side holds; the condition is stored first", () => {
    const { out } = branches(8);
    const program = compileProgram([out.node], { limits: LIMITS });
    const gated = program.kernels.filter((k) => k.source.gate !== undefined);
    // a·b on one side, b·a and b·(b·a) on the other
    expect(gated.map((k) => k.source.gate?.when).sort()).toEqual([false, false, true]);
    const condition = program.kernels.findIndex((k) =>
      k.segments.some((s) => s.roots.some((r) => r.op === 'lt')),
    );
    expect(condition).toBeGreaterThanOrEqual(0);
    const region = program.memory.regions.get(program.kernels[condition].segments[0].roots[0].id);
    for (const k of gated) {
      expect(program.kernels.indexOf(k)).toBeGreaterThan(condition);
      expect({ slot: k.source.gate?.slot, offset: k.source.gate?.offset }).toEqual(region);
    }
    // the unfused reference schedule runs everything
    const unfused = compileProgram([out.node], { limits: LIMITS, fuse: false });
    expect(unfused.kernels.every((k) => k.source.gate === undefined)).toBe(true);
  });

  test('on the device: the gate kernel writes the counts when the condition is `when`, else zeros', async () => {
    const gpu = (await gpuDevice()).gpu;
    const STORAGE = 0x80;
    const COPY_SRC = 0x4;
    const COPY_DST = 0x8;
    const UNIFORM = 0x40;
    const MAP_READ = 0x1;
    const buffer = (data: Uint32Array<ArrayBuffer> | Int32Array<ArrayBuffer>, usage: number) => {
      const b = gpu.createBuffer({ size: Math.max(16, data.byteLength), usage: usage | COPY_DST });
      gpu.queue.writeBuffer(b, 0, data);
      return b;
    };
    const pipeline = gpu.createComputePipeline({
      layout: 'auto',
      compute: { module: gpu.createShaderModule({ code: GATE_WGSL }), entryPoint: 'main' },
    });
    const conditions = buffer(Int32Array.of(0, 1, 0, 0), STORAGE); // false at 0, true at 1
    const counts = buffer(Uint32Array.of(9, 9, 5, 6, 1, 7, 8, 1), STORAGE);
    for (const at of [0, 1])
      for (const when of [false, true]) {
        const args = buffer(new Uint32Array(8).fill(3), STORAGE | COPY_SRC);
        // at, first word 2, 6 words, when
        const params = buffer(Uint32Array.of(at, 2, 6, when ? 1 : 0), UNIFORM);
        const encoder = gpu.createCommandEncoder();
        recordDispatch(gpu, encoder, pipeline, [conditions, counts, args, params], 1);
        const read = gpu.createBuffer({ size: 32, usage: MAP_READ | COPY_DST });
        encoder.copyBufferToBuffer(args, 0, read, 0, 32);
        gpu.queue.submit([encoder.finish()]);
        await read.mapAsync(MAP_READ);
        const got = Array.from(new Uint32Array(read.getMappedRange().slice(0)));
        read.unmap();
        const open = (at === 1) === when;
        // words outside [2, 8) untouched; inside, the counts or zeros
        expect(got).toEqual([3, 3, ...(open ? [5, 6, 1, 7, 8, 1] : [0, 0, 0, 0, 0, 0])]);
      }
  });

  test('gated programs compute the float32 interpreter’s values on either side', async () => {
    const gpu = await gpuDevice();
    const n = 12;
    const { out } = branches(n);
    const [a, b] = [input('a', [n, n]), input('b', [n, n])];
    const abs = { yes: matmul(a, b), no: matmul(b, matmul(b, a)) };
    await fc.assert(
      fc.asyncProperty(seedArb, fc.boolean(), async (seed, yes) => {
        const rng = prng(seed);
        const [av, bv] = [uniform(rng, n * n), uniform(rng, n * n)];
        // ‖a‖² ≥ 0: t = 0 takes the second branch, t = 1e30 the first
        const tv = Float64Array.of(yes ? 1e30 : 0);
        const values = new Map([
          ['a', av],
          ['b', bv],
          ['t', tv],
        ]);
        const before = { ...gpu.stats };
        const [result] = await gpu.execute(
          [out.node],
          new Map([
            ['a', gpu.upload(av, [n, n], 'f32')],
            ['b', gpu.upload(bv, [n, n], 'f32')],
            ['t', gpu.upload(tv, [], 'f32')],
          ]),
        );
        const got = await result.read();
        // three gated products: their FLOPs are counted apart from what surely ran
        expect(gpu.stats.gatedMatmulFlops - before.gatedMatmulFlops).toBe(3 * 2 * n ** 3);
        expect(gpu.stats.matmulFlops - before.matmulFlops).toBe(0);
        // and of those, the taken side's ran: a·b, or b·a and b·(b·a)
        expect(await gpu.gatedWork()).toEqual({
          dispatches: 3,
          ran: yes ? 1 : 2,
          matmulFlops: (yes ? 1 : 2) * 2 * n ** 3,
        });
        const [want] = interpret([out.node], values, { precision: 'f32' });
        const depth = yes ? n : 2 * n;
        const [scale] = interpret(
          [(yes ? abs.yes : abs.no).node],
          new Map([
            ['a', av.map(Math.abs)],
            ['b', bv.map(Math.abs)],
          ]),
        );
        // 2k·u·Σ|terms| for the products, and one rounding of the + 1 on each side
        want.forEach((w, i) =>
          expect(Math.abs(got[i] - w)).toBeLessThanOrEqual(
            2 * depth * U * scale[i] + 2 * U * (Math.abs(w) + 1),
          ),
        );
      }),
      { numRuns: 8 },
    );
  });
});
