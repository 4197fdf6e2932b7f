// R-Kalman with its defaults on a model past a tiny batch: compiling it once failed with a WGSL
// nesting-depth error (batch 16) or ran for minutes (batch 128); it must compile in seconds and
// train on WebGPU, its steps finite (none skipped by the non-finite guard).
import { expect, test } from 'vitest';
import { array, compileTrainStep, crossEntropy, nn, rkalman } from '../../index.js';
import { gpuDevice } from '../support/gpu.js';
import { prng, uniform } from '../support/random.js';

test.each([16, 128])('rkalman() on nn.mlp([64, 64, 10]), batch %i, on WebGPU', async (batch) => {
  const model = nn.mlp([64, 64, 10]);
  const x = uniform(prng(batch), batch * 64);
  const y = Int32Array.from({ length: batch }, (_, n) => (x[64 * n] > 0 ? n % 5 : 5 + (n % 5)));
  const train = await compileTrainStep({
    model,
    loss: crossEntropy,
    optimizer: rkalman(),
    params: model.init(0),
    device: await gpuDevice(),
  });
  const data = { x: array(x, [batch, 64]), y: array(y, [batch], 'i32') };
  const losses: number[] = [];
  for (let i = 0; i < 3; i++) {
    const m = await train.run(data);
    expect(m.skipped).toBe(0);
    losses.push(m.loss);
  }
  expect(losses.every(Number.isFinite)).toBe(true);
});
