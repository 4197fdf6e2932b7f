// Programs larger than one storage binding: a device that plans within a small binding
// (maxBindingBytes) spreads packed inputs, results, constants and intermediates over many buffers,
// and must compute exactly what the device with whole-program buffers computes — the packed
// update, the training step (AdamW and RING, whose arenas outgrow the binding and get buffers of
// their own, shared by lifetime) and the ahead-of-time plans. (Arrays longer than a binding:
// windowed-bindings.test.ts.)
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  adamw,
  array,
  compileOptimizer,
  createDevice,
  GrngError,
  input,
  jit,
  mul,
  nn,
  ring,
  type Tensor,
} from '../../index.js';
import { compileProgram, type Program } from '../../compiler/program.js';
import { loadTrainStep } from '../../aot/load-optimizer.js';
import { flattenTree } from '../../core/tree.js';
import { isArrayLeaf } from '../../runtime/jit.js';
import { WebGpuDevice } from '../../runtime/webgpu-device.js';
import type { GpuArray } from '../../runtime/gpu-array.js';
import { DEFAULT_KERNEL_LIMITS, gpuDevice } from '../support/gpu.js';
import { expectNoSharedLiveMemory } from '../support/live-memory.js';
import { programArb } from '../support/programs.js';
import { prng, uniform } from '../support/random.js';
import { batchesOf, compiledTrainStep, readAll, trainModel } from '../support/split-runs.js';

const whole = await gpuDevice();
/** Bindings of 4 KiB (1024 f32): every array below fits, the programs do not. */
const SMALL_BINDING = 4096;
const split = await createDevice({ maxBindingBytes: SMALL_BINDING });
if (!(split instanceof WebGpuDevice)) throw new Error('expected a WebGPU device');

const buffersOf = (tree: unknown) =>
  new Set(
    flattenTree('test', tree, isArrayLeaf, 'an array').leaves.map((a) => (a as GpuArray).buffer),
  );

/**
 * The length in elements of each buffer a program binds, by slot (input slots, the caller's, and
 * the scalars uniform: undefined).
 */
function slotLengths(program: Program): (number | undefined)[] {
  return program.memory.slots.map((s) =>
    s.kind === 'constants'
      ? s.data.length
      : s.kind === 'results' || s.kind === 'arena'
        ? s.length
        : undefined,
  );
}

describe('planning within a binding limit (random programs, no GPU)', () => {
  test('buffers bound whole fit the binding, longer ones are bound as windows, every dispatch binds at most the allowed buffers, and intermediates sharing a buffer are never live together', () => {
    let [windowedPrograms, refused] = [0, 0];
    fc.assert(
      fc.property(
        programArb({ maxInstructions: 16 }),
        // Bindings of 4 to 256 f32: the random programs' buffers often do not fit, and their
        // larger arrays (up to a few dozen elements) at the smallest bindings neither: those are
        // bound as windows.
        fc.constantFrom(4, 4, 8, 16, 32, 64, 256),
        (p, maxElements) => {
          const xs = p.shapes.map((s, i) => input(`x${i}`, s));
          const outs = [...p.scalarAndGradients(xs)];
          const limits = {
            ...DEFAULT_KERNEL_LIMITS,
            maxStorageBufferBindingSize: 4 * maxElements,
            // llvmpipe's: windows of any multiple of 4 elements
            minStorageBufferOffsetAlignment: 16,
          };
          let program: Program;
          try {
            program = compileProgram(
              outs.map((t) => t.node),
              { limits },
            );
          } catch (e) {
            // Only a kernel needing more bindings than allowed (windows count one each) may be
            // refused, and the message says why.
            expect(e).toBeInstanceOf(GrngError);
            expect((e as Error).message).toMatch(
              /binds \d+ storage buffers but the device allows 8; no split was found \(an array longer than maxStorageBufferBindingSize is bound as one buffer per window/,
            );
            refused++;
            return;
          }
          const { windows, windowElements } = program.memory;
          expect(windowElements).toBe(maxElements);
          slotLengths(program).forEach((length, i) => {
            if (length === undefined) return;
            // A buffer longer than a binding, and only such a buffer, is bound as windows.
            expect(windows.get(i)).toBe(
              length > maxElements ? Math.ceil(length / maxElements) : undefined,
            );
          });
          if (windows.size > 0) windowedPrograms++;
          for (const k of program.kernels) {
            const storage = k.source.bindings.filter(
              (s) => program.memory.slots[s].kind !== 'scalars',
            );
            expect(storage.length).toBeLessThanOrEqual(limits.maxStorageBuffersPerShaderStage);
            // A windowed slot is bound as each of its windows in order, or (a pass of an
            // elementwise kernel run window by window) as one window, the same for every windowed
            // slot of the dispatch; other slots once, whole.
            const of = k.source.windows?.of ?? k.source.bindings.map(() => -1);
            const pass = new Set<number>();
            for (const slot of new Set(k.source.bindings)) {
              const bound = k.source.bindings.flatMap((s, b) => (s === slot ? [of[b]] : []));
              const count = windows.get(slot);
              if (count === undefined) expect(bound).toEqual([-1]);
              else if (bound.length === 1) pass.add(bound[0]);
              else expect(bound).toEqual([...Array(count).keys()]);
            }
            expect(pass.size).toBeLessThanOrEqual(1);
          }
          expectNoSharedLiveMemory(program);
        },
      ),
      { numRuns: 150 },
    );
    // The property must have met windows, and not only refusals.
    console.log(`${windowedPrograms} of 150 programs bound windows, ${refused} were refused`);
    expect(windowedPrograms).toBeGreaterThan(5); // 11 at the default seed
    expect(refused).toBeLessThan(30); // 2 at the default seed
  });
});

describe('a device with 4 KiB bindings computes what one with whole buffers does', () => {
  test('a packed AdamW update over parameters straddling the binding boundary, bit for bit', async () => {
    // 300 + 500 + 700 + 90 + 1000 f32: several packs of at most 1024, arrays never cut.
    const shapes = [[300], [20, 25], [7, 100], [90], [1000]];
    const rng = prng(3);
    const params = shapes.map((s) => array(uniform(rng, s[0] * (s[1] ?? 1)), s));
    const grads = [0, 1, 2].map(() =>
      shapes.map((s) => array(uniform(rng, s[0] * (s[1] ?? 1)), s)),
    );
    const run = async (device: typeof whole) => {
      const opt = await compileOptimizer(adamw({ lr: 0.01 }), params, { device });
      for (const g of grads) await opt.step(g);
      return { params: await readAll(opt.params()), state: await readAll(opt.state()), opt };
    };
    const [a, b] = [await run(whole), await run(split)];
    expect(buffersOf(a.opt.params()).size).toBe(1);
    expect(buffersOf(b.opt.params()).size).toBeGreaterThan(1);
    expect(b.params).toEqual(a.params);
    expect(b.state).toEqual(a.state);
  });

  test.each([
    ['AdamW', () => adamw({ lr: 0.05 })],
    ['RING', () => ring({ lr: 0.05 })],
  ])('%s training steps on an MLP whose arenas outgrow a binding, bit for bit', async (_, make) => {
    // Weights of 16·24, 24·24 and 24·4 f32 (Kronecker factors of 24² for RING): each fits a
    // binding, the step's results, state and intermediates together do not.
    const sizes = [16, 24, 24, 4];
    const batches = batchesOf(5, 16);
    const a = await trainModel(whole, sizes, make, batches);
    const b = await trainModel(split, sizes, make, batches);
    expect(b).toEqual(a);
  });

  test('an ahead-of-time RING training step compiled for 4 KiB bindings runs as the whole one, bit for bit', async () => {
    const sizes = [16, 24, 4];
    const model = nn.mlp(sizes);
    const compiled = (maxStorageBufferBindingSize: number) =>
      compiledTrainStep(sizes, ring({ lr: 0.05 }), {
        ...DEFAULT_KERNEL_LIMITS,
        maxStorageBufferBindingSize,
      });
    const small = compiled(SMALL_BINDING);
    const bindings = small.steps.flatMap((p) => p.plan.slots).filter((s) => s.kind !== 'scalars');
    expect(bindings.some((s) => s.kind === 'arena' && s.buffer !== undefined)).toBe(true);
    const batches = batchesOf(9, 16);
    const a = await loadTrainStep(compiled(2 ** 27), whole, model.init(0));
    const b = await loadTrainStep(small, split, model.init(0));
    for (const batch of batches) expect(await b.run(batch)).toEqual(await a.run(batch));
    expect(await readAll(b.params())).toEqual(await readAll(a.params()));
    expect(await readAll(b.state())).toEqual(await readAll(a.state()));
    expect(buffersOf(b.state()).size).toBeGreaterThan(buffersOf(a.state()).size);
    // A plan for larger bindings than the device plans with is refused before it runs.
    await expect(loadTrainStep(compiled(2 ** 27), split, model.init(0))).rejects.toThrow(
      /maxStorageBufferBindingSize ≥ 134217728; this adapter offers 4096/,
    );
  });
});

describe('memory errors', () => {
  test('a GPU out of memory is a GrngError saying what the program needed and the device held', async () => {
    // The real device behind a proxy that hands grng's error listener to the test: the event is
    // what WebGPU raises when an allocation fails, which this machine's memory cannot provoke.
    const real = whole.gpu;
    let report: ((event: { error: GPUError }) => void) | undefined;
    const proxied = new Proxy(real, {
      get(target, key) {
        if (key === 'addEventListener')
          return (type: string, listener: (event: { error: GPUError }) => void) => {
            if (type === 'uncapturederror') report = listener;
          };
        const value: unknown = Reflect.get(target, key);
        return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
      },
    });
    const gpu = new WebGpuDevice({ device: proxied, description: 'a device that runs out' });
    const double = jit((u: Tensor) => mul(u, 2), { device: gpu });
    const x = gpu.upload(new Float64Array(2 ** 18).fill(1), [2 ** 18], 'f32');
    await double(x); // 1 MiB of results
    const OutOfMemory = (
      globalThis as unknown as { GPUOutOfMemoryError: new (m: string) => GPUError }
    ).GPUOutOfMemoryError;
    report?.({ error: new OutOfMemory('Allocation failed') });
    await expect(double(x)).rejects.toThrow(
      /the GPU ran out of memory \(Allocation failed\): the latest program needed 1\.0 MiB for its results and intermediates while the device held [\d.]+ MiB in all/,
    );
    // Reported once: the device works again when memory does.
    await expect(double(x)).resolves.toBeDefined();
  });
});
