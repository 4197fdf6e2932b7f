// Packed memory: arrays as views of shared buffers, horizontal fusion of an optimizer update
// over many parameters into one dispatch, and the arena's liveness-based reuse.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  adam,
  add,
  array,
  compileOptimizer,
  createDevice,
  div,
  GrngError,
  input,
  jit,
  matmul,
  mul,
  sqrt,
  square,
  sub,
  sum,
  tanh,
  lt,
  where,
  zeros,
  type DeviceArray,
  type Tensor,
} from '../../index.js';
import { compileProgram } from '../../compiler/program.js';
import { firstNonFinite, keepIfFinite } from '../../runtime/finite-guard.js';
import type { GpuArray } from '../../runtime/webgpu-device.js';
import { gpuDevice } from '../support/gpu.js';
import { expectNoSharedLiveMemory } from '../support/live-memory.js';
import { programArb } from '../support/programs.js';
import { prng, uniform } from '../support/random.js';

const DEFAULTS = {
  maxStorageBuffersPerShaderStage: 8,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
};

/** AdamW with decoupled weight decay over lists of parameters (the same update per tensor). */
function adamw(theta: Tensor[], m: Tensor[], v: Tensor[], g: Tensor[], lr: Tensor): Tensor[][] {
  const m1 = m.map((mi, i) => add(mul(mi, 0.9), mul(g[i], 0.1)));
  const v1 = v.map((vi, i) => add(mul(vi, 0.999), mul(square(g[i]), 0.001)));
  const t1 = theta.map((t, i) =>
    sub(t, mul(lr, add(div(m1[i], add(sqrt(v1[i]), 1e-8)), mul(t, 0.01)))),
  );
  return [t1, m1, v1];
}

/** The arena length of the program computing `outputs`, checked to share no live memory. */
function arenaLength(outputs: readonly Tensor[]): number {
  const program = compileProgram(
    outputs.map((t) => t.node),
    { limits: DEFAULTS },
  );
  expectNoSharedLiveMemory(program);
  const arena = program.memory.slots.find((slot) => slot.kind === 'arena');
  return arena?.kind === 'arena' ? arena.length : Infinity;
}

describe('packed arrays', () => {
  test(
    'uploadAll packs arrays into one buffer per type; each view reads back ' + 'its own values',
    async () => {
      const gpu = await gpuDevice();
      const [a, b, c] = gpu.uploadAll([
        { data: Float64Array.of(1, 2, 3), shape: [3], dtype: 'f32' },
        { data: Float64Array.of(7, 8), shape: [2], dtype: 'i32' },
        { data: Float64Array.of(4, 5, 6, 7, 8), shape: [5], dtype: 'f32' },
      ]);
      expect(a.buffer).toBe(c.buffer);
      expect(b.buffer).not.toBe(a.buffer);
      expect(c.offset).toBe(4); // regions start on vec4 boundaries
      expect(Array.from(await a.read())).toEqual([1, 2, 3]);
      expect(Array.from(await b.read())).toEqual([7, 8]);
      expect(Array.from(await c.read())).toEqual([4, 5, 6, 7, 8]);
    },
  );

  test(
    'an AdamW step over 5 parameters of different shapes is one dispatch, ' +
      'in place, matching the interpreter',
    async () => {
      const gpu = await gpuDevice();
      const cpu = await createDevice({ kind: 'cpu', precision: 'f32' });
      const shapes = [[17, 5], [5], [64, 3, 3], [1], [257]];
      const rng = prng(11);
      const values = (scale: number, positive = false) =>
        shapes.map((s) =>
          uniform(
            rng,
            s.reduce((x, y) => x * y, 1),
            positive ? 0 : -scale,
            scale,
          ),
        );
      const init = [values(1), values(0.1), values(0.01, true)];
      const grads = [values(1), values(1)];
      const step = (theta: Tensor[], m: Tensor[], v: Tensor[], g: Tensor[], lr: Tensor) =>
        adamw(theta, m, v, g, lr);
      const onGpu = jit(step, { device: gpu, donate: [0, 1, 2] });
      const onCpu = jit(step, { device: cpu });
      const pack = (device: typeof gpu | typeof cpu, xs: Float64Array[]) =>
        device.uploadAll(xs.map((data, i) => ({ data, shape: shapes[i], dtype: 'f32' as const })));
      let state = init.map((xs) => pack(gpu, xs));
      let want: DeviceArray[][] = init.map((xs) => pack(cpu, xs));
      for (let t = 0; t < 4; t++) {
        const before = { ...gpu.stats };
        const buffers = state.map((group) => group.map((a) => (a as GpuArray).buffer));
        const g = pack(gpu, grads[t % 2]);
        state = (await onGpu(state[0], state[1], state[2], g, 1e-2)) as GpuArray[][];
        expect(gpu.stats.dispatches - before.dispatches).toBe(1);
        expect(gpu.stats.submits - before.submits).toBe(1);
        // Updated in place: θ, m and v stay in the buffers they were uploaded to.
        expect(state.map((group) => group.map((a) => (a as GpuArray).buffer))).toEqual(buffers);
        want = (await onCpu(
          want[0],
          want[1],
          want[2],
          pack(cpu, grads[t % 2]),
          1e-2,
        )) as DeviceArray[][];
      }
      for (let k = 0; k < 3; k++) {
        for (let i = 0; i < shapes.length; i++) {
          const [got, ref] = [await state[k][i].read(), await want[k][i].read()];
          // As in the one-parameter donation test: WGSL sqrt/division within ~3 ULP of the
          // correctly rounded interpreter, 4 steps with O(1) factors: 1e-6 relative (~16 ULP).
          got.forEach((x, j) =>
            expect(Math.abs(x - ref[j])).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(ref[j]))),
          );
        }
      }
    },
  );

  test(
    'donated results land where their own argument was: many same-shaped ' +
      'tensors, one program for every step',
    async () => {
      const gpu = await gpuDevice();
      const opt = await compileOptimizer(
        adam({ lr: 0.05 }),
        [0, 1, 2, 3, 4].map((k) => array([k, 1, 2, 3])),
        { device: gpu },
      );
      const first = (opt.params() as GpuArray[]).map((a) => [a.buffer, a.offset]);
      const before = gpu.programCount;
      for (let i = 0; i < 12; i++) await opt.step([0, 1, 2, 3, 4].map(() => array([1, -2, 3, -4])));
      // Pairing outputs with donated inputs in order keeps θᵢ in θᵢ's region (not m's or v's), so
      // the layout, part of a program's identity, never changes: no recompiles after the first
      // step.
      expect(gpu.programCount - before).toBe(1);
      expect((opt.params() as GpuArray[]).map((a) => [a.buffer, a.offset])).toEqual(first);
    },
  );

  test("a call's results are views of one results buffer", async () => {
    const gpu = await gpuDevice();
    const f = jit((x: Tensor) => [mul(x, 2), tanh(x), matmul(x, x)], { device: gpu });
    const [a, b, c] = (await f(
      gpu.upload(Float64Array.of(1, 2, 3, 4), [2, 2], 'f32'),
    )) as GpuArray[];
    expect(new Set([a.buffer, b.buffer, c.buffer]).size).toBe(1);
    expect(Array.from(await a.read())).toEqual([2, 4, 6, 8]);
    expect(Array.from(await c.read())).toEqual([7, 10, 15, 22]);
    // tanh in f32 (grng's accurate helper): within a few ULP of the true value.
    (await b.read()).forEach((y, i) =>
      expect(Math.abs(y - Math.tanh(i + 1))).toBeLessThanOrEqual(1e-6),
    );
  });

  test(
    'results never share memory: a value returned twice and a returned ' +
      'input are arrays of their own',
    async () => {
      const gpu = await gpuDevice();
      const f = jit(
        (x: Tensor) => {
          const y = mul(x, 3);
          return [y, y, x];
        },
        { device: gpu },
      );
      const x = gpu.upload(Float64Array.of(1, 2), [2], 'f32');
      const [a, b, c] = (await f(x)) as GpuArray[];
      expect(new Set([a, b, c, x]).size).toBe(4);
      // Donating all three to a later call updates each in place without disturbing the others.
      const g = jit((p: Tensor, q: Tensor, r: Tensor) => [add(p, 1), add(q, 2), add(r, 3)], {
        device: gpu,
        donate: [0, 1, 2],
      });
      const [p, q, r] = (await g(a, b, c)) as GpuArray[];
      expect([
        Array.from(await p.read()),
        Array.from(await q.read()),
        Array.from(await r.read()),
      ]).toEqual([
        [4, 7],
        [5, 8],
        [4, 5],
      ]);
      expect(Array.from(await x.read())).toEqual([1, 2]);
    },
  );

  test('an input array of the wrong shape is a GrngError naming the input', async () => {
    const gpu = await gpuDevice();
    const x = input('x', [3]);
    const err = await gpu
      .execute([mul(x, 2).node], new Map([['x', gpu.upload(Float64Array.of(1, 2), [2], 'f32')]]))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GrngError);
    expect((err as GrngError).message).toContain('input "x" must be f32[3], got f32[2]');
  });
});

describe('memory planning', () => {
  test('intermediates that are live at the same time never share memory (random programs)', () => {
    fc.assert(
      fc.property(programArb({ maxInstructions: 10 }), (p) => {
        const xs = p.shapes.map((s, i) => input(`x${i}`, s));
        const outs = [...p.scalarAndGradients(xs)];
        const program = compileProgram(
          outs.map((t) => t.node),
          { limits: DEFAULTS },
        );
        expectNoSharedLiveMemory(program);
      }),
      { numRuns: 60 },
    );
  });

  test('a chain of matmuls reuses arena memory: the arena holds two intermediates, not all', () => {
    let x: Tensor = input('x', [32, 32]);
    const w = input('w', [32, 32]);
    for (let i = 0; i < 8; i++) x = tanh(matmul(x, w));
    const program = compileProgram([x.node], { limits: DEFAULTS });
    const arena = program.memory.slots.find((s) => s.kind === 'arena');
    // Each tanh (a matmul operand that is more than index arithmetic) is materialized, computed
    // as its product's fused epilogue (8 dispatches, 16 before epilogues fused): 7 intermediates
    // of 1024 elements, but a dispatch reads one and writes one, so two regions suffice.
    expect(program.kernels).toHaveLength(8);
    expect(arena?.kind === 'arena' ? arena.length : Infinity).toBe(2 * 1024);
  });

  test("a select over a loop's iterates holds a few of them at a time, not every one", () => {
    // best = where(s < k, x_k, best) over 12 iterates x_k = tanh(x_{k−1}·a) of 64×64: one
    // final kernel of the whole select chain would keep all 12 iterates until it runs. Stored
    // every few links (a kernel reads at most 6 large computed values) and each link run as soon
    // as its iterates exist, at most 6 are read together, plus the iterate being computed.
    const a = input('a', [64, 64]);
    const s = input('s', []);
    let x: Tensor = a;
    let best: Tensor = a;
    for (let k = 0; k < 12; k++) {
      x = tanh(matmul(x, a));
      best = where(lt(s, k), x, best);
    }
    expect(arenaLength([best])).toBeLessThanOrEqual(9 * 4096);
  });

  test('a guard over large updates stores and tests them one at a time', () => {
    // An Adam update of one 2^20-element parameter under the non-finite guard: isFinite reads the
    // new parameter and moments from memory. Stored side by side they take 3 · 2^20 elements of
    // the arena; one at a time, each freed by its test, 2^20 and the partial maxima (1/1000).
    const [theta, g, m, v] = ['theta', 'g', 'm', 'v'].map((n) => input(n, [1024, 1024]));
    const [[theta2], [m2], [v2]] = adamw([theta], [m], [v], [g], input('lr', []));
    const mark = firstNonFinite(
      [g, theta2, m2, v2].map((value, i) => ({ name: `quantity ${i}`, value })),
    );
    const kept = [
      keepIfFinite(mark, theta2, theta),
      keepIfFinite(mark, m2, m),
      keepIfFinite(mark, v2, v),
    ];
    expect(arenaLength([...kept, mark])).toBeLessThan(1.01 * 2 ** 20);
  });

  test("a guard checks large quantities first, so one layer's iteration ends before the next starts", () => {
    // Two layers, each a loop of 8 iterates x ← tanh(x·a) (64×64) with a select over them (as a
    // guarded Newton–Schulz keeps its best iterate) and a scalar flag read from its 4th iterate.
    // Kernels are ordered depth first from the first check: flags first would run both layers'
    // first iterates before either select chain, holding both layers' iterates at once.
    const s = input('s', []);
    const checked = [0, 1].flatMap((layer) => {
      const a = input(`a${layer}`, [64, 64]);
      let x: Tensor = a;
      let best: Tensor = a;
      let flag: Tensor = s;
      for (let k = 0; k < 8; k++) {
        x = tanh(matmul(x, a));
        best = where(lt(s, k), x, best);
        if (k === 3) flag = sum(x);
      }
      return [
        { name: `flag ${layer}`, value: flag },
        { name: `result ${layer}`, value: best },
      ];
    });
    const mark = firstNonFinite(checked);
    const kept = checked.map((c) => keepIfFinite(mark, c.value, zeros(c.value.shape)));
    // One layer's loop at a time holds up to 6 iterates of 4096 read by a stored link, the link
    // before it and the iterate being computed (see the select test above), beside the other
    // layer's stored result: 9. Both layers' loops at once (flags first), or the last iterates of
    // each select held for a final select that recomputes it (compiler/kernels/partition.ts),
    // take 12 or more.
    expect(arenaLength([mark, ...kept])).toBeLessThan(10 * 4096);
  });

  test('an update that frees a large computed value runs as soon as it can, not with the rest', () => {
    // Adam updates of two 1024×1024 parameters from gradients computed here (products, stored:
    // three updates read each). Updates are returned (they live in the caller's buffers, not the
    // arena) and nothing reads them: deferred to one dispatch at the end, they would hold both
    // gradients at once; each run after its own gradient, one at a time.
    const lr = input('lr', []);
    const updates = [0, 1].flatMap((i) => {
      const g = matmul(input(`a${i}`, [1024, 64]), input(`b${i}`, [64, 1024]));
      const [theta, m, v] = ['theta', 'm', 'v'].map((n) => input(`${n}${i}`, [1024, 1024]));
      return adamw([theta], [m], [v], [g], lr).flat();
    });
    expect(arenaLength(updates)).toBeLessThan(2 * 2 ** 20);
  });
});
