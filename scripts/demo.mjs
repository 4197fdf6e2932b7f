#!/usr/bin/env node
// `npm run demo`: trains an MLP (784-256-10) on Fashion-MNIST with RING on WebGPU — one compiled
// program per step, parameters and optimizer state resident on the device — and reports test
// accuracy. GRNG_DEMO_OPTIMIZER=adamw (or sgd, kfac, reng) swaps the optimizer. The Trainer and
// CLI (issue 7) add progress bars, checkpoints and plots. The pre-script installs what is missing
// and builds dist/.
import { adamw, array, compileTrainStep, createDevice, crossEntropy, jit, kfac, nn, reng, ring, sgd } from '../dist/index.js';
import { loadIdxImages } from '../dist/runtime/data/index.js';

const EPOCHS = Number(process.env.GRNG_DEMO_EPOCHS ?? 2);
const BATCH = 128;
const SEED = 0;
const RING_LR = Number(process.env.GRNG_DEMO_LR ?? 1e-2);
// Lazy Fisher period: refreshing the 785×785 first-layer inverse costs seconds on a software
// adapter, so the demo refreshes every 50 steps (spec default 10; GRNG_DEMO_EVERY overrides).
const RING_EVERY = Number(process.env.GRNG_DEMO_EVERY ?? 50);

const data = loadIdxImages();
const device = await createDevice();
console.log(`grng demo: Fashion-MNIST (${data.train.count} train / ${data.test.count} test images) on ${device.description}`);

// Each optimizer with the settings this demo uses (spec §7's defaults unless noted).
const OPTIMIZERS = {
  ring: () => ring({ lr: RING_LR, rho: 1e-2, inverseEvery: RING_EVERY }),
  reng: () => reng({ lr: RING_LR, rho: 1e-2, inverseEvery: RING_EVERY }),
  kfac: () => kfac({ lr: 1e-2 }),
  adamw: () => adamw({ lr: 1e-3 }),
  sgd: () => sgd({ lr: 1e-2, momentum: 0.9, weightDecay: 5e-4 }),
};
const name = process.env.GRNG_DEMO_OPTIMIZER ?? 'ring';
if (!(name in OPTIMIZERS)) {
  console.error(`grng demo: GRNG_DEMO_OPTIMIZER must be one of ${Object.keys(OPTIMIZERS).join(', ')}, got '${name}'`);
  process.exit(2);
}
const optimizer = OPTIMIZERS[name]();
console.log(`optimizer: ${name} ${JSON.stringify(optimizer.hyper)}`);
const model = nn.mlp([data.train.features, 256, data.classes]);
const train = await compileTrainStep({ model, loss: crossEntropy, optimizer, params: model.init(SEED), device, metrics: ['loss', 'accuracy'] });

/** A seeded permutation (mulberry32 + Fisher–Yates), so runs are reproducible. */
function permutation(n, seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const p = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

function batchOf(split, indices) {
  const f = split.features;
  const x = new Float64Array(indices.length * f);
  const y = new Int32Array(indices.length);
  indices.forEach((k, n) => {
    x.set(split.x.subarray(k * f, (k + 1) * f), n * f);
    y[n] = split.y[k];
  });
  return { x: array(x, [indices.length, f]), y: array(y, [indices.length], 'i32') };
}

// Test accuracy with the current parameters: a jitted forward pass per batch of 1000.
const batchAccuracy = jit((params, x, y) => nn.accuracy(model.apply(params, x), y), { device });

async function testAccuracy() {
  const params = await train.params();
  let right = 0;
  for (let start = 0; start < data.test.count; start += 1000) {
    const idx = Int32Array.from({ length: Math.min(1000, data.test.count - start) }, (_, i) => start + i);
    const b = batchOf(data.test, idx);
    right += (await (await batchAccuracy(params, b.x, b.y)).read())[0] * idx.length;
  }
  return right / data.test.count;
}

const stepsPerEpoch = Math.floor(data.train.count / BATCH);
for (let epoch = 1; epoch <= EPOCHS; epoch++) {
  const order = permutation(data.train.count, SEED + epoch);
  const started = performance.now();
  let pending = [];
  let lossSum = 0;
  for (let s = 0; s < stepsPerEpoch; s++) {
    pending.push(train.run(batchOf(data.train, order.subarray(s * BATCH, (s + 1) * BATCH))));
    // Read metrics a few steps behind, so the GPU never waits for the host.
    if (pending.length >= 4) lossSum += (await pending.shift()).loss;
    if ((s + 1) % 100 === 0) console.log(`  epoch ${epoch} step ${s + 1}/${stepsPerEpoch}  loss ${(lossSum / (s - 2)).toFixed(4)}`);
  }
  for (const p of pending) lossSum += (await p).loss;
  const seconds = (performance.now() - started) / 1000;
  const accuracy = await testAccuracy();
  console.log(`epoch ${epoch}: mean train loss ${(lossSum / stepsPerEpoch).toFixed(4)}, test accuracy ${(100 * accuracy).toFixed(2)} %, ${seconds.toFixed(1)} s (${((1000 * seconds) / stepsPerEpoch).toFixed(1)} ms/step)`);
}
