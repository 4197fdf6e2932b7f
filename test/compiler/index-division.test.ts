// Kernels whose sizes come from their offsets uniform unravel a flat index with `grng_idiv`
// (compiler/wgsl/prelude.ts): x / d from a float estimate and two integer corrections. It must be
// exact — an index off by one reads the wrong element — for every 0 ≤ x < 2^30 and d ≥ 1, so it is
// checked on the device against integer division, at random points and where a float estimate is
// most likely to miss: at and beside multiples of d, near 2^30, and for d = 1, 2, 3 and large d.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { PRELUDE } from '../../compiler/wgsl/prelude.js';
import { gpuDevice, recordDispatch } from '../support/gpu.js';

const STORAGE = 0x80;
const COPY_SRC = 0x4;
const COPY_DST = 0x8;
const MAP_READ = 0x1;
const LIMIT = 2 ** 30;

const helper = PRELUDE.find((h) => h.name === 'grng_idiv');

/** grng_idiv(x, d, f32(1/d)) on the device for each pair. */
async function divide(pairs: readonly (readonly [number, number])[]): Promise<Int32Array> {
  const gpu = (await gpuDevice()).gpu;
  if (helper === undefined) throw new Error('grng_idiv is not in the prelude');
  const code = `${helper.code('f32')}
@group(0) @binding(0) var<storage, read> xs: array<i32>;
@group(0) @binding(1) var<storage, read> ds: array<i32>;
@group(0) @binding(2) var<storage, read> rs: array<f32>;
@group(0) @binding(3) var<storage, read_write> qs: array<i32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x;
  if (i >= arrayLength(&qs)) { return; }
  qs[i] = grng_idiv(xs[i], ds[i], rs[i]);
}`;
  const n = pairs.length;
  const upload = (data: Int32Array<ArrayBuffer> | Float32Array<ArrayBuffer>) => {
    const b = gpu.createBuffer({ size: data.byteLength, usage: STORAGE | COPY_DST });
    gpu.queue.writeBuffer(b, 0, data);
    return b;
  };
  const xs = upload(Int32Array.from(pairs, ([x]) => x));
  const ds = upload(Int32Array.from(pairs, ([, d]) => d));
  // what the kernels get: f32(1/d), rounded on the host
  const rs = upload(Float32Array.from(pairs, ([, d]) => 1 / d));
  const qs = gpu.createBuffer({ size: 4 * n, usage: STORAGE | COPY_SRC });
  const pipeline = gpu.createComputePipeline({
    layout: 'auto',
    compute: { module: gpu.createShaderModule({ code }), entryPoint: 'main' },
  });
  const encoder = gpu.createCommandEncoder();
  recordDispatch(gpu, encoder, pipeline, [xs, ds, rs, qs], Math.ceil(n / 64));
  const read = gpu.createBuffer({ size: 4 * n, usage: MAP_READ | COPY_DST });
  encoder.copyBufferToBuffer(qs, 0, read, 0, 4 * n);
  gpu.queue.submit([encoder.finish()]);
  await read.mapAsync(MAP_READ);
  const got = new Int32Array(read.getMappedRange().slice(0));
  read.unmap();
  [xs, ds, rs, qs, read].forEach((b) => b.destroy());
  return got;
}

const expectExact = async (pairs: readonly (readonly [number, number])[]) => {
  const got = await divide(pairs);
  const wrong = pairs.filter(([x, d], i) => got[i] !== Math.floor(x / d));
  expect(wrong.slice(0, 5)).toEqual([]);
};

describe('grng_idiv: the flat-index division of size-free kernels', () => {
  test('exact at and beside multiples of d, near 2^30, for small and large d', async () => {
    const divisors = [1, 2, 3, 4, 5, 7, 10, 12, 255, 256, 257, 785, 788, 4097, 65535, 65537];
    divisors.push(1_000_003, 2 ** 24 - 1, 2 ** 24 + 1, 2 ** 29 - 3);
    const pairs: [number, number][] = [];
    for (const d of divisors)
      for (const q of [0, 1, 2, 1000, Math.floor((LIMIT - 1) / d) - 1, Math.floor((LIMIT - 1) / d)])
        for (const offset of [-1, 0, 1, d - 1])
          if (q * d + offset >= 0 && q * d + offset < LIMIT) pairs.push([q * d + offset, d]);
    await expectExact(pairs);
  });

  test('exact for random x < 2^30 and d (fast-check, shrinking)', async () => {
    const pair = fc
      .tuple(fc.integer({ min: 0, max: LIMIT - 1 }), fc.integer({ min: 1, max: LIMIT }))
      .map(([x, d]) => [x, 1 + (d % (x + 1))] as const); // d ≤ x + 1: quotients of all sizes
    await fc.assert(
      fc.asyncProperty(fc.array(pair, { minLength: 1, maxLength: 512 }), async (pairs) => {
        await expectExact(pairs);
      }),
      { numRuns: 20 },
    );
  });
});
