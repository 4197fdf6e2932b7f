// Issue 9: grng against its peers on the same adapter in one process — an Adam(W) update over
// 1,048,576 parameters (one flat tensor), square matmuls and an MLP training step — with the hand-written
// vec4 WGSL AdamW as the bandwidth reference. Each figure: warm-up, then median / min / max of
// interleaved runs, GPU completion awaited. A peer that cannot run is reported with its error.
// GRNG_BENCH_ADAPTER=llvmpipe (default) | swiftshader | gpu picks the adapter for everyone.
// Prints a Markdown table and writes bench/results/<date>-<adapter>.json. Asserts nothing.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'vitest';
import { add, adamw as adamwOptimizer, array, compileTrainStep, createDevice, crossEntropy, div, jit, matmul, mul, nn, sqrt, sub, WebGpuDevice, type Tensor } from '../index.js';
import { handWrittenAdamW } from './hand-written-adamw.js';
import { installNavigatorGpu, PEER_ADAPTERS, type PeerAdapter } from './peers/navigator-gpu.js';
import { jaxAdamW, jaxMatmul, jaxMlpStep, loadJax, loadTfjs, tfAdam, tfMatmul, tfMlpStep } from './peers/peers.js';
import { interleavedStats, type Timing } from './timing.js';

const N = 1 << 20;
const BYTES_PER_PARAM = 7 * 4; // θ, m, v, g read; θ, m, v written
const HYPER = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-2, step: 10 };
const REPS = 15;

interface Row {
  readonly workload: string;
  readonly library: string;
  readonly timing?: Timing;
  readonly rate?: string;
  readonly error?: string;
}

function adamw(theta: Tensor, m: Tensor, v: Tensor, g: Tensor, lr: Tensor): Tensor[] {
  const { beta1, beta2, eps, weightDecay, step } = HYPER;
  const m1 = add(mul(m, beta1), mul(g, 1 - beta1));
  const v1 = add(mul(v, beta2), mul(mul(g, g), 1 - beta2));
  const update = add(div(div(m1, 1 - beta1 ** step), add(sqrt(div(v1, 1 - beta2 ** step)), eps)), mul(theta, weightDecay));
  return [sub(theta, mul(lr, update)), m1, v1];
}

test('grng against TF.js and jax-js: AdamW 1M, matmul, MLP training step', async () => {
  const adapter = (process.env.GRNG_BENCH_ADAPTER ?? 'llvmpipe') as PeerAdapter;
  if (!(adapter in PEER_ADAPTERS)) throw new Error(`GRNG_BENCH_ADAPTER must be one of ${Object.keys(PEER_ADAPTERS).join(', ')}`);
  const device = await createDevice({ backend: adapter === 'llvmpipe' ? 'opengles' : adapter === 'swiftshader' ? 'swiftshader' : 'vulkan' });
  if (!(device instanceof WebGpuDevice)) throw new Error('the benchmarks need a WebGPU device');
  installNavigatorGpu(adapter);
  const [tf, jaxGpu] = [await loadTfjs(), await loadJax('webgpu')];
  const jaxWasm = await loadJax('wasm');
  const gpu = device.gpu;
  const done = () => gpu.queue.onSubmittedWorkDone();
  const rows: Row[] = [];
  const gbps = (ms: number) => `${((N * BYTES_PER_PARAM) / (ms * 1e6)).toFixed(2)} GB/s`;

  // AdamW over one flat tensor of 1M parameters.
  const random = (n: number) => Float64Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 0.5);
  const step = jit(adamw, { device, donate: [0, 1, 2] });
  let state = [random(N), random(N).map(Math.abs), random(N).map((x) => x * x)].map((x) => device.upload(x, [N], 'f32'));
  const g = device.upload(random(N), [N], 'f32');
  const hand = handWrittenAdamW(gpu, N, HYPER);
  const adam: { library: string; run: () => Promise<void> }[] = [
    { library: 'grng (jit, 1 dispatch)', run: async () => { state = (await step(state[0], state[1], state[2], g, HYPER.lr)) as typeof state; await done(); } },
    { library: 'hand-written vec4 WGSL', run: async () => { hand.run(); await done(); } },
  ];
  if (tf.ok) adam.push({ library: 'TF.js webgpu (tf.train.adam)', ...tfAdam(tf.lib, N, HYPER) });
  else rows.push({ workload: 'AdamW 1M', library: 'TF.js webgpu', error: tf.error });
  for (const jax of [jaxGpu, jaxWasm]) {
    if (jax.ok) {
      const on = () => jax.lib.defaultDevice(jax.device as 'webgpu' | 'wasm');
      on();
      const work = jaxAdamW(jax.lib, N, HYPER);
      adam.push({ library: `jax-js ${jax.device} (jit)`, run: async () => { on(); await work.run(); } });
    } else rows.push({ workload: 'AdamW 1M', library: 'jax-js', error: jax.error });
  }
  // jax-js keeps one default device: each of its runs selects its own first.
  const timings = await interleavedStats(adam.map((a) => a.run), REPS);
  adam.forEach((a, i) => rows.push({ workload: 'AdamW 1M', library: a.library, timing: timings[i], rate: gbps(timings[i].median) }));
  hand.destroy();

  for (const k of [256, 512, 1024]) {
    const a = device.upload(random(k * k), [k, k], 'f32');
    const b = device.upload(random(k * k), [k, k], 'f32');
    const mm = jit((x: Tensor, y: Tensor) => matmul(x, y), { device });
    const runs: { library: string; run: () => Promise<void> }[] = [{ library: 'grng', run: async () => { await mm(a, b); await done(); } }];
    if (tf.ok) runs.push({ library: 'TF.js webgpu', ...tfMatmul(tf.lib, k) });
    for (const jax of [jaxGpu, jaxWasm]) {
      if (!jax.ok) continue;
      const on = () => jax.lib.defaultDevice(jax.device as 'webgpu' | 'wasm');
      on();
      const work = jaxMatmul(jax.lib, k); // built (and jitted) once, on its device
      runs.push({ library: `jax-js ${jax.device}`, run: async () => { on(); await work.run(); } });
    }
    const t = await interleavedStats(runs.map((r) => r.run), k >= 1024 ? 5 : 9, 1);
    runs.forEach((r, i) => rows.push({ workload: `matmul ${k}³`, library: r.library, timing: t[i], rate: `${((2 * k ** 3) / (t[i].median * 1e6)).toFixed(2)} GFLOP/s` }));
  }

  // MLP training step: 784-256-256-10, ReLU, softmax cross-entropy, batch 128, Adam(W); the loss read back each step.
  const setup = { sizes: [784, 256, 256, 10], batch: 128 };
  const model = nn.mlp(setup.sizes);
  const train = await compileTrainStep({ model, loss: crossEntropy, optimizer: adamwOptimizer({ lr: 1e-3 }), params: model.init(0), device });
  const batchX = array(random(setup.batch * 784).map((v) => v + 0.5), [setup.batch, 784]);
  const batchY = array(Int32Array.from({ length: setup.batch }, (_, i) => i % 10), [setup.batch], 'i32');
  const before = device.stats.dispatches;
  await train.run({ x: batchX, y: batchY });
  const dispatches = device.stats.dispatches - before;
  const steps: { library: string; run: () => Promise<void> }[] = [{ library: `grng (compileTrainStep, ${dispatches} dispatches)`, run: async () => void (await train.run({ x: batchX, y: batchY })) }];
  if (tf.ok) steps.push({ library: 'TF.js webgpu (minimize, adam)', ...tfMlpStep(tf.lib, setup) });
  for (const jax of [jaxGpu, jaxWasm]) {
    if (!jax.ok) continue;
    const on = () => jax.lib.defaultDevice(jax.device as 'webgpu' | 'wasm');
    on();
    const work = jaxMlpStep(jax.lib, setup);
    steps.push({ library: `jax-js ${jax.device} (jit)`, run: async () => { on(); await work.run(); } });
  }
  const stepTimes = await interleavedStats(steps.map((r) => r.run), 9, 2);
  steps.forEach((r, i) => rows.push({ workload: 'MLP 784-256-256-10 step, batch 128', library: r.library, timing: stepTimes[i], rate: `${(1000 / stepTimes[i].median).toFixed(1)} steps/s` }));

  const table = [
    `adapter: ${device.description} (GRNG_BENCH_ADAPTER=${adapter})`,
    '',
    '| workload | library | median ms | min | max | rate |',
    '|---|---|---|---|---|---|',
    ...rows.map((r) => (r.error !== undefined ? `| ${r.workload} | ${r.library} | cannot run: ${r.error} | | | |` : `| ${r.workload} | ${r.library} | ${r.timing?.median.toFixed(2)} | ${r.timing?.min.toFixed(2)} | ${r.timing?.max.toFixed(2)} | ${r.rate} |`)),
  ].join('\n');
  console.log(table);
  const dir = join('bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${new Date().toISOString().slice(0, 10)}-${adapter}.json`);
  writeFileSync(file, `${JSON.stringify({ adapter: device.description, date: new Date().toISOString(), rows }, null, 1)}\n`);
  console.log(`written: ${file}`);
});
