// Issue 3's measurements: an AdamW update over 1,048,576 parameters (effective GB/s, counting
// 4 reads + 3 writes of 4 bytes per parameter) against a hand-written single-kernel vec4 WGSL
// AdamW in the same process, and a 512×512×512 matmul in GFLOP/s. Prints; asserts nothing.
import { test } from 'vitest';
import { add, array, createDevice, div, input, jit, matmul, mul, sqrt, sub, WebGpuDevice, type Tensor } from '../index.js';
import { handWrittenAdamW } from './hand-written-adamw.js';
import { interleavedMedians } from './timing.js';

const N = 1 << 20;
const BYTES_PER_PARAM = 7 * 4;
const HYPER = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-2, step: 10 };

/** One AdamW step as grng expressions: returns [θ, m, v]. */
function adamw(theta: Tensor, m: Tensor, v: Tensor, g: Tensor, lr: Tensor): Tensor[] {
  const { beta1, beta2, eps, weightDecay, step } = HYPER;
  const m1 = add(mul(m, beta1), mul(g, 1 - beta1));
  const v1 = add(mul(v, beta2), mul(mul(g, g), 1 - beta2));
  const mHat = div(m1, 1 - beta1 ** step);
  const vHat = div(v1, 1 - beta2 ** step);
  const update = add(div(mHat, add(sqrt(vHat), eps)), mul(theta, weightDecay));
  return [sub(theta, mul(lr, update)), m1, v1];
}

test('AdamW 1M parameters and matmul 512³', async () => {
  const device = await createDevice();
  if (!(device instanceof WebGpuDevice)) throw new Error('the benchmarks need a WebGPU device');
  const gpu = device.gpu;
  const done = () => gpu.queue.onSubmittedWorkDone();
  const random = (n: number) => Float64Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 0.5);
  const [theta, m, v, g] = [random(N), random(N).map(Math.abs), random(N).map((x) => x * x), random(N)].map((x) => device.upload(x, [N], 'f32'));

  // θ, m, v are donated: updated in place, as a training step keeps them resident.
  const step = jit(adamw, { device, donate: [0, 1, 2] });
  let state = [theta, m, v];
  const grngStep = async () => {
    state = (await step(state[0], state[1], state[2], g, HYPER.lr)) as typeof state;
    await done();
  };
  const symbolic = ['theta', 'm', 'v', 'g'].map((name) => input(name, [N]));
  const kernelCount = device.kernelCount(adamw(symbolic[0], symbolic[1], symbolic[2], symbolic[3], input('lr', [])).map((t) => t.node));

  const hand = handWrittenAdamW(gpu, N, HYPER);
  const [grngMs, handMs] = await interleavedMedians([
    grngStep,
    async () => {
      hand.run();
      await done();
    },
  ], 60);

  const K = 512;
  const a = array(random(K * K), [K, K]);
  const b = array(random(K * K), [K, K]);
  const mm = jit((x: Tensor, y: Tensor) => matmul(x, y), { device });
  const [da, db] = [device.upload(a.data, a.shape, 'f32'), device.upload(b.data, b.shape, 'f32')];
  const [mmMs] = await interleavedMedians([
    async () => {
      await mm(da, db);
      await done();
    },
  ], 7, 1);

  const gbps = (ms: number) => (N * BYTES_PER_PARAM) / (ms * 1e6);
  console.log(`adapter: ${device.description}`);
  console.log(`AdamW ${N} params (${kernelCount} kernels): grng ${grngMs.toFixed(2)} ms (${gbps(grngMs).toFixed(2)} GB/s effective), hand-written vec4 ${handMs.toFixed(2)} ms (${gbps(handMs).toFixed(2)} GB/s); grng/hand speed ratio ${(handMs / grngMs).toFixed(2)}`);
  console.log(`matmul ${K}³: ${mmMs.toFixed(1)} ms, ${((2 * K ** 3) / (mmMs * 1e6)).toFixed(2)} GFLOP/s`);
  hand.destroy();
});
