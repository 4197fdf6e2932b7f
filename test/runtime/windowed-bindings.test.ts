// Arrays longer than one storage binding: a kernel binds their buffer as several windows
// (compiler/wgsl/windowed-bindings.ts). A device planning within small bindings (64 bytes to
// 1 KiB) must compute what the device with whole buffers computes, bit for bit — random programs
// over every op and dtype, AdamW and RING training steps on a model whose weights straddle window
// boundaries, and ahead-of-time plans — and an array past the adapter's own 128 MiB binding runs
// on it. Only an array past maxBufferSize, or a kernel needing more windows than the stage has
// bindings, is refused, with a GrngError saying so.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  add,
  adamw,
  array,
  broadcastTo,
  cast,
  input,
  createDevice,
  jit,
  matmul,
  max,
  mul,
  nn,
  reshape,
  ring,
  sum,
  crossEntropy,
  valueAndGrad,
  type DeviceArray,
  type Tensor,
} from '../../index.js';
import type { Tree } from '../../core/tree.js';
import { compileProgram } from '../../compiler/program.js';
import { loadTrainStep } from '../../aot/load-optimizer.js';
import { WebGpuDevice } from '../../runtime/webgpu-device.js';
import { fuzzProgramArb } from '../support/fuzz-programs.js';
import { runOnGpu } from '../support/fuzz-run.js';
import { DEFAULT_KERNEL_LIMITS, gpuDevice } from '../support/gpu.js';
import { prng, uniform } from '../support/random.js';
import { batchesOf, compiledTrainStep, readAll, trainModel } from '../support/split-runs.js';

const whole = await gpuDevice();
/** Devices planning within bindings of 64 bytes, 256 bytes and 1 KiB (16, 64 and 256 f32). */
const BINDINGS = [64, 256, 1024] as const;
const devices = new Map<number, WebGpuDevice>();
for (const maxBindingBytes of [...BINDINGS, 4096, 16384]) {
  const device = await createDevice({ maxBindingBytes });
  if (!(device instanceof WebGpuDevice)) throw new Error('expected a WebGPU device');
  devices.set(maxBindingBytes, device);
}
/** 1 KiB bindings: 256 f32 per window. */
const TINY_BINDING = 1024;
const tiny = devices.get(TINY_BINDING) as WebGpuDevice;

/** Kernels `device` compiled that bind an array as windows (its pipelines, keyed by WGSL). */
const windowedKernels = (device: WebGpuDevice) =>
  [...(device as unknown as { pipelines: Map<string, unknown> }).pipelines.keys()].filter((code) =>
    /_w1: array/.test(code),
  ).length;

/** Bit for bit, NaN equal to NaN (toEqual would also take −0 for +0). */
const sameBits = (a: readonly Float64Array[], b: readonly Float64Array[]) =>
  a.length === b.length &&
  a.every(
    (x, i) =>
      x.length === b[i].length &&
      x.every((v, j) => Object.is(v, b[i][j]) || (Number.isNaN(v) && Number.isNaN(b[i][j]))),
  );

describe('a device with small bindings computes what one with whole buffers does', () => {
  test('random programs over every op and dtype, bit for bit', async () => {
    let [windowed, refused] = [0, 0];
    await fc.assert(
      fc.asyncProperty(
        fuzzProgramArb({ weights: { medium: 0, large: 0, huge: 0 } }),
        fc.constantFrom(...BINDINGS),
        async (p, binding) => {
          const xs = p.inputValues();
          const a = await runOnGpu(p, xs, whole);
          if (!Array.isArray(a)) return; // refused on whole buffers: the fuzz sample's concern
          const b = await runOnGpu(p, xs, devices.get(binding) as WebGpuDevice);
          if (!Array.isArray(b)) {
            // Only a kernel needing more bindings than the stage has (windows count one each).
            expect(b).toMatchObject({ kind: 'refused' });
            expect((b as { message: string }).message).toMatch(/is bound as one buffer per window/);
            refused++;
            return;
          }
          if (p.largestArray > binding / 4) windowed++;
          expect(sameBits(b, a)).toBe(true);
        },
      ),
      { numRuns: 80, unbiased: true },
    );
    console.log(`${windowed} of 80 programs held arrays past one binding; ${refused} refused`);
    // The property must have met windows (15 at the default seed), and not mostly refusals.
    expect(windowed).toBeGreaterThan(10);
    expect(refused).toBeLessThan(20);
  });

  test.each([
    ['AdamW', () => adamw({ lr: 0.05 })],
    ['RING', () => ring({ lr: 0.05 })],
  ])(
    '%s training steps on an MLP whose weights and factors straddle windows, bit for bit',
    async (_, make) => {
      // With 4 KiB bindings (1024 f32), weights of 40·40 f32 and RING's Kronecker factors of 41²
      // are two windows each; their updates read several such arrays in one kernel.
      const sizes = [40, 40, 4];
      const batches = batchesOf(11, 40);
      const split = devices.get(4096) as WebGpuDevice;
      const a = await trainModel(whole, sizes, make, batches);
      const b = await trainModel(split, sizes, make, batches);
      expect(windowedKernels(split)).toBeGreaterThan(0);
      expect(b).toEqual(a);
    },
  );

  // 16 KiB bindings (4096 f32): MLP weights of 32·160 f32 are two windows, a token table of 300·32
  // three, the MLP activations of 8·17·160 six; the attention and everything else fit.
  const TRANSFORMER = { dim: 32, depth: 1, heads: 2, classes: 4, mlpDim: 160 };
  const labels = (k: number) =>
    array(
      Int32Array.from({ length: 8 }, (_, i) => (i + k) % 4),
      [8],
      'i32',
    );

  test('ViT training steps whose weights and activations straddle windows, bit for bit', async () => {
    const split = devices.get(16384) as WebGpuDevice;
    const model = nn.vit({ ...TRANSFORMER, image: [8, 8, 1], patch: 2 });
    const rng = prng(13);
    const batches = [0, 1].map((k) => ({
      x: array(uniform(rng, 8 * 64), [8, 8, 8, 1]),
      y: labels(k),
    }));
    const before = windowedKernels(split);
    const a = await trainModel(whole, model, () => adamw({ lr: 0.01 }), batches);
    const b = await trainModel(split, model, () => adamw({ lr: 0.01 }), batches);
    expect(windowedKernels(split)).toBeGreaterThan(before);
    expect(b).toEqual(a);
  });

  test("a text transformer's loss and gradients, its token table three windows, bit for bit", async () => {
    // (Its whole training step is cut into kernels at other places when windows count, and an
    // expression split over two kernels may round differently: the shader compiler fuses a·b + c
    // into one multiply-add only within a kernel. The gradients are one program on both devices.)
    const split = devices.get(16384) as WebGpuDevice;
    const model = nn.textTransformer({ ...TRANSFORMER, vocab: 300, length: 16 });
    const ids = Int32Array.from({ length: 8 * 16 }, (_, i) => (i * 37 + 101) % 300);
    const run = async (device: WebGpuDevice) => {
      const f = (p: Tree<Tensor>, x: Tensor, y: Tensor) =>
        valueAndGrad((q: Tree<Tensor>) => crossEntropy(model.apply(q as never, x), y))(p);
      const out = await jit(f, { device })(
        model.init(0) as never,
        array(ids, [8, 16], 'i32'),
        labels(1),
      );
      return readAll(out);
    };
    const before = windowedKernels(split);
    const [a, b] = [await run(whole), await run(split)];
    expect(windowedKernels(split)).toBeGreaterThan(before);
    expect(b).toEqual(a);
  });

  test('an ahead-of-time AdamW training step compiled for 1 KiB bindings runs as the whole one, bit for bit', async () => {
    const sizes = [16, 40, 4];
    // llvmpipe's 16 storage buffers: windows take a binding each
    const compiled = (maxStorageBufferBindingSize: number) =>
      compiledTrainStep(sizes, adamw({ lr: 0.05 }), {
        ...DEFAULT_KERNEL_LIMITS,
        maxStorageBuffersPerShaderStage: 16,
        maxStorageBufferBindingSize,
      });
    const small = compiled(TINY_BINDING);
    expect(small.steps.some((s) => s.plan.kernels.some((k) => k.windows !== undefined))).toBe(true);
    const a = await loadTrainStep(compiled(2 ** 27), whole, nn.mlp(sizes).init(0));
    const b = await loadTrainStep(small, tiny, nn.mlp(sizes).init(0));
    for (const batch of batchesOf(12, 16)) expect(await b.run(batch)).toEqual(await a.run(batch));
    expect(await readAll(b.params())).toEqual(await readAll(a.params()));
    expect(await readAll(b.state())).toEqual(await readAll(a.state()));
  });
});

describe('elementwise kernels over long arrays run window by window', () => {
  // 3000 f32 are 12 windows of 256: any kernel over four of them would need 48 bindings (the
  // stage has 8 here), so each runs as 12 passes binding one window of each long array.
  const limits = {
    ...DEFAULT_KERNEL_LIMITS,
    maxStorageBufferBindingSize: TINY_BINDING,
    minStorageBufferOffsetAlignment: 16,
  };
  const rng = prng(21);
  const [a, b, c] = [0, 1, 2].map(() => uniform(rng, 3000));
  const ints = Int32Array.from({ length: 3000 }, (_, i) => (i * 7919) % 1000);
  const bias = uniform(rng, 30);
  test.each([
    // a vec4 kernel (every array read at its own vec4)
    ['a·b + c·a', (x: Tensor, y: Tensor, z: Tensor) => add(mul(x, y), mul(z, x)), [3000]],
    // a scalar kernel (a cast, a broadcast read at the element's own column: the global index)
    [
      'a + f32(k) + bias[column]',
      (x: Tensor, y: Tensor, _: Tensor, k: Tensor, w: Tensor) =>
        add(add(x, cast(k, 'f32')), broadcastTo(w, [100, 30])),
      [100, 30],
    ],
  ] as const)('%s: one pass per window, bit for bit', async (_, f, shape) => {
    const traced = [
      input('a', shape),
      input('b', shape),
      input('c', shape),
      input('k', shape, 'i32'),
      input('bias', [30]),
    ];
    const program = compileProgram([(f as (...t: Tensor[]) => Tensor)(...traced).node], { limits });
    expect(program.kernels).toHaveLength(12);
    program.kernels.forEach((k, j) => {
      const of = k.source.windows?.of ?? [];
      expect(new Set(of.filter((w) => w >= 0))).toEqual(new Set([j]));
      expect(k.source.bindings.length).toBeLessThanOrEqual(limits.maxStorageBuffersPerShaderStage);
    });
    const run = async (device: WebGpuDevice) => {
      const args = [
        device.upload(a, shape, 'f32'),
        device.upload(b, shape, 'f32'),
        device.upload(c, shape, 'f32'),
        device.upload(Float64Array.from(ints), shape, 'i32'),
        device.upload(bias, [30], 'f32'),
      ];
      const out = await jit(f as (...t: Tensor[]) => Tensor, { device })(...args);
      return (out as DeviceArray).read();
    };
    const [got, want] = [await run(tiny), await run(whole)];
    expect(sameBits([got], [want])).toBe(true);
  });
});

describe("past the adapter's own binding limit", () => {
  test('an array of 33554467 f32 (134,217,868 bytes, past 128 MiB) is bound as two windows and computes exactly', async () => {
    const n = 33_554_467;
    const binding = whole.maxBindingBytes;
    expect(4 * n).toBeGreaterThan(binding); // else this test tests nothing
    // Integers below 2^24: doubling, adding one and the maximum are exact in f32.
    const data = Float64Array.from({ length: n }, (_, i) => i % 1_000_003);
    const x = whole.upload(data, [n], 'f32');
    const f = jit((t: Tensor) => [add(mul(t, 2), 1), max(t)], { device: whole });
    const [y, m] = (await f(x)) as DeviceArray[];
    const got = await y.read();
    let wrong = 0;
    for (let i = 0; i < n; i++) if (got[i] !== 2 * data[i] + 1) wrong++;
    expect(wrong).toBe(0);
    expect(Array.from(await m.read())).toEqual([1_000_002]);
  });
});

describe('what no window helps', () => {
  test('an upload, a result and an intermediate past maxBufferSize are GrngErrors naming them', async () => {
    // Bindings of 4 KiB, buffers of at most 16 KiB (4096 f32).
    const capped = await createDevice({ maxBindingBytes: 4096, maxBufferBytes: 16384 });
    expect(() => capped.upload(new Float64Array(4097), [4097], 'f32')).toThrow(
      /an array of \[4097\] needs 16400 bytes, over the largest buffer this device allows \(16384 bytes, its maxBufferSize\)/,
    );
    const v = capped.upload(new Float64Array(70).fill(1), [70, 1], 'f32');
    const outer = (u: Tensor) => matmul(u, reshape(u, [1, 70]));
    // 70 × 70 f32 = 19600 bytes: returned, or stored between two kernels.
    await expect(jit(outer, { device: capped })(v)).rejects.toThrow(
      /a result f32\[70, 70\] needs 19600 bytes, over the largest buffer this device allows \(16384 bytes, its maxBufferSize\)/,
    );
    await expect(
      jit((u: Tensor) => sum(matmul(outer(u), outer(u))), { device: capped })(v),
    ).rejects.toThrow(/an intermediate f32\[70, 70\] needs 19600 bytes/);
    // 40 × 40 (6400 bytes) is past a binding but within a buffer: windows, the same values.
    const w = (d: typeof capped) => d.upload(new Float64Array(40).fill(0.5), [40, 1], 'f32');
    const square = (u: Tensor) => matmul(u, reshape(u, [1, 40]));
    const [got, want] = await Promise.all(
      [capped, whole].map(async (d) =>
        Array.from(await ((await jit(square, { device: d })(w(d))) as DeviceArray).read()),
      ),
    );
    expect(got).toEqual(want);
  });

  test('a kernel needing more windows than the stage has bindings is refused, saying why', async () => {
    // A 3000 × 3000 product is 35157 windows of 256 f32; the stage has 16 bindings on llvmpipe.
    const big = tiny.upload(new Float64Array(3000), [3000], 'f32');
    await expect(
      jit((u: Tensor) => matmul(reshape(u, [3000, 1]), reshape(u, [1, 3000])), { device: tiny })(
        big,
      ),
    ).rejects.toThrow(
      /binds \d+ storage buffers but the device allows \d+; no split was found \(an array longer than maxStorageBufferBindingSize is bound as one buffer per window/,
    );
  });
});
