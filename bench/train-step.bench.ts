// Issue 4's measurement: one compiled training step of an MLP (784-128-10, batch 128, the
// Fashion-MNIST shape) per optimizer: dispatches per step and time per step, the step's loss read
// back each time (as a training loop does). Prints; asserts nothing.
import { test } from 'vitest';
import { adam, adamw, array, compileTrainStep, createDevice, crossEntropy, nn, sgd, WebGpuDevice } from '../index.js';
import { interleavedMedians } from './timing.js';

test('MLP training step per optimizer', async () => {
  const device = await createDevice();
  if (!(device instanceof WebGpuDevice)) throw new Error('the benchmarks need a WebGPU device');
  const B = 128;
  const x = array(Float64Array.from({ length: B * 784 }, (_, i) => Math.abs(Math.sin(i * 0.37))), [B, 784]);
  const y = array(Int32Array.from({ length: B }, (_, n) => (n * 7) % 10), [B], 'i32');
  const model = nn.mlp([784, 128, 10]);
  const common = { model, loss: crossEntropy, params: model.init(0), device };
  const names = ['sgd (momentum 0.9)', 'adam', 'adamw'];
  const steps = [
    await compileTrainStep({ ...common, optimizer: sgd({ lr: 0.05, momentum: 0.9 }) }),
    await compileTrainStep({ ...common, optimizer: adam({ lr: 1e-3 }) }),
    await compileTrainStep({ ...common, optimizer: adamw({ lr: 1e-3 }) }),
  ];
  const dispatches: number[] = [];
  for (const s of steps) {
    await s.run({ x, y }); // compile
    const before = device.stats.dispatches;
    await s.run({ x, y });
    dispatches.push(device.stats.dispatches - before);
  }
  const times = await interleavedMedians(steps.map((s) => async () => void (await s.run({ x, y }))), 15);
  console.log(`adapter: ${device.description}`);
  names.forEach((name, i) => console.log(`MLP 784-128-10, batch ${B}, ${name}: ${dispatches[i]} dispatches per step, ${times[i].toFixed(2)} ms per step (median of 15)`));
});
