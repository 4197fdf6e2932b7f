// Issues 4 and 5: one compiled training step of an MLP (784-128-10, batch 128, the Fashion-MNIST
// shape) per optimizer: dispatches per step, median time per step (the step's loss read back each
// time, as a training loop does) and the ratio to AdamW. K-FAC runs lazily (its defaults: factors
// every 10 steps, inverses every 100, so the median is a step without a refresh) and eagerly
// (both every step); so do RING and RENG (their default Lazy Fisher period S = 10, and S = 1).
// R-Kalman works at batch 1 (its innovation covariance has B·(C − 1) rows), so it is timed
// against AdamW at batch 1 on the same MLP. Also: optimizer-state bytes, and compile time cold
// (the first step of a new program) and cached (the same step compiled again in this process:
// tracing and planning redone, pipelines reused). Prints a Markdown table; asserts nothing.
import { test } from 'vitest';
import { flattenTree } from '../dsl/tree.js';
import { isArrayLeaf } from '../runtime/jit.js';
import { adam, adamw, array, compileTrainStep, createDevice, crossEntropy, kfac, nn, reng, ring, rkalman, sgd, sophia, WebGpuDevice, type TrainStep } from '../index.js';

test('MLP training step per optimizer', async () => {
  const device = await createDevice();
  if (!(device instanceof WebGpuDevice)) throw new Error('the benchmarks need a WebGPU device');
  const B = 128;
  const x = array(Float64Array.from({ length: B * 784 }, (_, i) => Math.abs(Math.sin(i * 0.37))), [B, 784]);
  const y = array(Int32Array.from({ length: B }, (_, n) => (n * 7) % 10), [B], 'i32');
  const model = nn.mlp([784, 128, 10]);
  const common = { model, loss: crossEntropy, params: model.init(0), device };
  const runs = {
    'adamw': () => compileTrainStep({ ...common, optimizer: adamw({ lr: 1e-3 }) }),
    'sgd (momentum 0.9)': () => compileTrainStep({ ...common, optimizer: sgd({ lr: 0.05, momentum: 0.9 }) }),
    'adam': () => compileTrainStep({ ...common, optimizer: adam({ lr: 1e-3 }) }),
    'sophia-h (h every 10)': () => compileTrainStep({ ...common, optimizer: sophia({ lr: 1e-3 }) }),
    'sophia-g (h every 10)': () => compileTrainStep({ ...common, optimizer: sophia({ lr: 1e-3, estimator: 'gnb' }) }),
    'kfac (lazy: factors /10, inverses /100)': () => compileTrainStep({ ...common, optimizer: kfac({ lr: 1e-2 }) }),
    'kfac (factors and inverses every step)': () => compileTrainStep({ ...common, optimizer: kfac({ lr: 1e-2, covEvery: 1, inverseEvery: 1 }) }),
    'ring (lazy: inverses /10)': () => compileTrainStep({ ...common, optimizer: ring() }),
    'ring (inverses every step)': () => compileTrainStep({ ...common, optimizer: ring({ inverseEvery: 1 }) }),
    'reng (lazy: inverses /10)': () => compileTrainStep({ ...common, optimizer: reng() }),
  };
  console.log(`adapter: ${device.description}`);
  console.log('| optimizer | ms per step | × AdamW | dispatches | state | first step (cold) | first step (cached) |');
  console.log('|---|---|---|---|---|---|---|');
  let adamwMs = 0;
  for (const [name, make] of Object.entries(runs)) {
    const result = await time(device, await make(), { x, y });
    if (name === 'adamw') adamwMs = result.median;
    report(name, { ...result, cachedMs: await firstStep(await make(), { x, y }) }, adamwMs);
  }

  // Batch 1: R-Kalman on the head (10 classes: 9 observation rows) against AdamW.
  const one = { x: array(x.data.slice(0, 784), [1, 784]), y: array(y.data.slice(0, 1), [1], 'i32') };
  const base = await time(device, await compileTrainStep({ ...common, optimizer: adamw({ lr: 1e-3 }) }), one);
  report('adamw, batch 1', { ...base, cachedMs: await firstStep(await compileTrainStep({ ...common, optimizer: adamw({ lr: 1e-3 }) }), one) }, base.median);
  const kalman = () => compileTrainStep({ ...common, optimizer: rkalman() });
  report('rkalman (head, diagonal P), batch 1', { ...(await time(device, await kalman(), one)), cachedMs: await firstStep(await kalman(), one) }, base.median);
});

/** Wall time of a new step's first run (tracing, planning, pipelines, the step itself). */
async function firstStep(train: TrainStep, batch: { x: ReturnType<typeof array>; y: ReturnType<typeof array> }): Promise<number> {
  const t0 = performance.now();
  await train.run(batch);
  return performance.now() - t0;
}

/** First-step time (compile), median step time over 9 steps and dispatches per step. */
async function time(device: WebGpuDevice, train: TrainStep, batch: { x: ReturnType<typeof array>; y: ReturnType<typeof array> }) {
  const compileStarted = performance.now();
  await train.run(batch); // compiles (and, for lazy optimizers, runs the refresh variant)
  const compileMs = performance.now() - compileStarted;
  await train.run(batch);
  const before = device.stats.dispatches;
  const times: number[] = [];
  for (let i = 0; i < 9; i++) {
    const t0 = performance.now();
    await train.run(batch);
    times.push(performance.now() - t0);
  }
  const state = flattenTree('bench', await train.state(), isArrayLeaf, 'an array').leaves as { shape: readonly number[] }[];
  const stateBytes = 4 * state.reduce((n, a) => n + a.shape.reduce((p, d) => p * d, 1), 0);
  return { median: times.sort((a, b) => a - b)[4], dispatches: Math.round((device.stats.dispatches - before) / 9), compileMs, stateBytes };
}

function report(name: string, r: { median: number; dispatches: number; compileMs: number; cachedMs: number; stateBytes: number }, adamwMs: number): void {
  const mb = (r.stateBytes / 2 ** 20).toFixed(2);
  console.log(`| ${name} | ${r.median.toFixed(1)} | ${(r.median / adamwMs).toFixed(2)} | ${r.dispatches} | ${mb} MiB | ${(r.compileMs / 1000).toFixed(2)} s | ${(r.cachedMs / 1000).toFixed(2)} s |`);
}
