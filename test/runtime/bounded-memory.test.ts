// Long runs lose nothing: a WebGPU device with small bounds compiles many programs yet keeps at
// most its bound of them, an evicted program compiles again with the same results, idle pooled
// buffers stay under their cap, and evicting a program while its work is queued leaves that work
// intact. Expected values are computed here on the host, exactly (small integers and quarters).
import { describe, expect, test } from 'vitest';
import {
  add,
  constant,
  createDevice,
  GrngError,
  jit,
  matmul,
  mul,
  type Tensor,
} from '../../index.js';
import { LruCache } from '../../runtime/lru-cache.js';
import { WebGpuDevice } from '../../runtime/webgpu-device.js';

const MAX_EXECUTABLES = 4;
const MAX_PIPELINES = 8;
const POOL_BYTES = 256 * 1024;
const opened = await createDevice({
  maxExecutables: MAX_EXECUTABLES,
  maxPipelines: MAX_PIPELINES,
  maxPooledBytes: POOL_BYTES,
});
if (!(opened instanceof WebGpuDevice))
  throw new Error(`expected WebGPU, got ${opened.description}`);
const gpu = opened;

/** Resolves once the GPU has finished all work submitted so far (and what waited on it ran). */
const drain = () => gpu.gpu.queue.onSubmittedWorkDone();

/** 64 KiB (and a little more per n) of values: evicting or pooling a few dozen is measurable. */
const BASE = 16384;

/** Program n: x ↦ x² + c_n over BASE + 4n elements, c_n a data constant in the program. */
function program(n: number) {
  const length = BASE + 4 * n;
  const x = Float64Array.from({ length }, (_, i) => ((i + n) % 13) / 4 - 1);
  const c = Float64Array.from({ length }, (_, i) => ((7 * i + n) % 11) - 5);
  const want = x.map((v, i) => v * v + c[i]);
  const f = jit((t: Tensor) => add(mul(t, t), constant(c, [length])), { device: gpu });
  const run = async () => {
    const input = gpu.upload(x, [length], 'f32');
    const y = await f(input);
    const got = await y.read();
    input.dispose();
    y.dispose();
    return got;
  };
  return { length, x, want, f, run };
}

describe('bounded caches on WebGPU', () => {
  test('compiling more programs than the bound keeps at most the bound, results right', async () => {
    const before = gpu.programCount;
    for (let n = 0; n < 12; n++) {
      const p = program(n);
      expect(await p.run()).toEqual(p.want);
      const stats = gpu.memoryStats();
      expect(stats.executables).toBeLessThanOrEqual(MAX_EXECUTABLES);
      expect(stats.pipelines).toBeLessThanOrEqual(MAX_PIPELINES);
    }
    expect(gpu.programCount - before).toBe(12);
    expect(gpu.memoryStats().executables).toBe(MAX_EXECUTABLES);
  });

  test('an evicted program compiles again with the same results; a cached one does not', async () => {
    const programs = Array.from({ length: 6 }, (_, k) => program(20 + k));
    for (const p of programs) await p.run();
    const before = gpu.programCount;
    // The latest is cached: no compile.
    expect(await programs[5].run()).toEqual(programs[5].want);
    expect(gpu.programCount).toBe(before);
    // The first was evicted by the four after it: it compiles again and computes the same.
    expect(await programs[0].run()).toEqual(programs[0].want);
    expect(gpu.programCount).toBe(before + 1);
  });

  test('evicted programs free their buffers; idle pooled buffers stay under the cap', async () => {
    // 20 programs, each releasing an input and a result of its own size (~64 KiB each) and holding
    // a ~64 KiB constant: 3.8 MiB made in all.
    for (let n = 40; n < 60; n++) {
      const p = program(n);
      expect(await p.run()).toEqual(p.want);
    }
    await drain();
    const stats = gpu.memoryStats();
    expect(stats.pooledBytes).toBeLessThanOrEqual(POOL_BYTES);
    // What remains: the pool's idle buffers and the constants and uniforms of the programs kept.
    const perProgram = 4 * (BASE + 4 * 60) + 4096;
    expect(stats.liveBytes).toBeLessThanOrEqual(POOL_BYTES + MAX_EXECUTABLES * perProgram);
    expect(stats.liveBytes).toBeGreaterThan(0);
  });

  test('evicting a program while its work is queued leaves that work intact', async () => {
    // A 512³ matmul (tens of ms on a software adapter) against a 1 MiB constant, not awaited; then
    // enough new programs to evict it at once. Entries are -1, 0 or 1: sums are exact in f32.
    const size = 512;
    const a = Float64Array.from({ length: size * size }, (_, i) => ((i * 5) % 3) - 1);
    const b = Float64Array.from({ length: size * size }, (_, i) => ((i * 7 + 1) % 3) - 1);
    const heavy = jit((x: Tensor) => matmul(x, constant(b, [size, size])), { device: gpu });
    const input = gpu.upload(a, [size, size], 'f32');
    const queued = await heavy(input);
    const others = Array.from({ length: MAX_EXECUTABLES }, (_, k) => program(80 + k));
    const pending = [];
    for (const p of others) {
      const x = gpu.upload(p.x, [p.length], 'f32');
      pending.push({ p, x, y: await p.f(x) });
    }
    const got = await queued.read();
    // A sample of entries, computed on the host.
    for (let k = 0; k < 64; k++) {
      const [i, j] = [(k * 97) % size, (k * 389) % size];
      let want = 0;
      for (let t = 0; t < size; t++) want += a[i * size + t] * b[t * size + j];
      expect(got[i * size + j]).toBe(want);
    }
    for (const { p, x, y } of pending) {
      expect(await y.read()).toEqual(p.want);
      [x, y].forEach((arr) => arr.dispose());
    }
    // It was evicted: calling it again compiles it again, and computes the same.
    const before = gpu.programCount;
    const again = await heavy(input);
    expect(gpu.programCount).toBe(before + 1);
    expect(await again.read()).toEqual(got);
    input.dispose();
  });

  test('a bound that is not a positive count is refused before an adapter is opened', async () => {
    await expect(createDevice({ maxExecutables: 0 })).rejects.toBeInstanceOf(GrngError);
    await expect(createDevice({ maxPooledBytes: -1 })).rejects.toBeInstanceOf(GrngError);
    await expect(createDevice({ maxPipelines: 1.5 })).rejects.toBeInstanceOf(GrngError);
  });
});

describe('LruCache', () => {
  test('evicts the least recently used entry, where a read counts as a use', () => {
    const evicted: string[] = [];
    const cache = new LruCache<string, number>(2, (value, key) => evicted.push(`${key}=${value}`));
    cache.set('a', 1);
    cache.set('b', 2);
    expect(cache.get('a')).toBe(1);
    cache.set('c', 3);
    expect(evicted).toEqual(['b=2']);
    expect(cache.get('b')).toBeUndefined();
    expect([...cache.values()]).toEqual([1, 3]);
    expect(cache.size).toBe(2);
  });
});
