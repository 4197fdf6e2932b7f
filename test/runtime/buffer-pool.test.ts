// The buffer pool's scratch reuse: a program's arena takes the smallest idle buffer that fits
// (within the binding limit) instead of one of its exact size, so programs that alternate — a
// training step and its refresh step — share one buffer; and on a real device, a small program
// run after a large one makes no arena of its own.
import { describe, expect, test } from 'vitest';
import { createDevice, jit, matmul, tanh, type Tensor } from '../../index.js';
import { BufferPool } from '../../runtime/buffer-pool.js';
import { WebGpuDevice } from '../../runtime/webgpu-device.js';

/** A stand-in for GPUDevice that records the buffers created (the pool only creates them). */
function fakeGpu() {
  const created: number[] = [];
  const gpu = {
    createBuffer: ({ size }: { size: number }) => {
      created.push(size);
      return { size, destroy: () => undefined };
    },
    queue: { onSubmittedWorkDone: () => new Promise<void>(() => undefined) },
  };
  return { gpu: gpu as unknown as GPUDevice, created };
}

describe('BufferPool.acquireScratch', () => {
  test('takes the smallest idle buffer that fits within the limit, else makes one', () => {
    const { gpu, created } = fakeGpu();
    const pool = new BufferPool(gpu, 0);
    const [small, large] = [pool.acquire(1000), pool.acquire(8000)];
    pool.release(large);
    pool.release(small);
    expect(pool.acquireScratch(600, 1 << 20)).toBe(small);
    // The small one is taken: the next fits only in the large one.
    expect(pool.acquireScratch(600, 1 << 20)).toBe(large);
    expect(created).toEqual([1000, 8000]);
    pool.release(large);
    // Over the limit a kernel can bind: a new buffer of the size asked for.
    const fresh = pool.acquireScratch(600, 4000);
    expect(fresh).not.toBe(large);
    expect(created).toEqual([1000, 8000, 600]);
    // Too small to fit: a new one too.
    expect(pool.acquireScratch(9000, 1 << 20).size).toBe(9000);
  });
});

describe('arenas on WebGPU', () => {
  test('a program run after a larger one uses its arena buffer, not one of its own', async () => {
    const device = await createDevice();
    if (!(device instanceof WebGpuDevice)) throw new Error(`expected WebGPU, got ${device.kind}`);
    // tanh(x·x) is an operand of the next product: stored in the arena (n² elements).
    const chain = (x: Tensor) => tanh(matmul(tanh(matmul(x, x)), x));
    const run = async (n: number) => {
      const x = device.upload(new Float64Array(n * n).fill(0.01), [n, n], 'f32');
      const y = await jit(chain, { device })(x);
      await y.read();
      x.dispose();
      y.dispose();
    };
    await run(128);
    await device.gpu.queue.onSubmittedWorkDone();
    const before = device.memoryStats().liveBytes;
    await run(64);
    // The 64² program makes its input and result buffers (16 KiB each) and a few bytes of
    // uniforms: less than the three 16 KiB buffers it would with an arena of its own.
    expect(device.memoryStats().liveBytes - before).toBeLessThan(3 * 4 * 64 * 64);
  });
});
