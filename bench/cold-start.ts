// `node --import tsx bench/cold-start.ts <case> <backend>`: one optimizer case of the optimizers
// section (optimizers.ts) as a new user's machine first runs it. The parent starts it with Mesa's
// on-disk shader cache disabled (MESA_SHADER_CACHE_DISABLE=true), so every pipeline is compiled
// by the driver again; it compiles the case's training step on a fresh device, takes two steps
// (a refresh step, then the other every() variant) and prints one JSON line: both times, the
// pipelines created and the WGSL characters handed to the driver.
import { createDevice, crossEntropy, nn, WebGpuDevice } from '../index.js';
import type { DeviceOptions } from '../runtime/create-device.js';
import { CASES } from './sections/optimizer-cases.js';
import { benchBatch, MLP } from './sections/mlp-step.js';

export interface ColdStart {
  readonly firstMs: number;
  readonly secondMs: number;
  readonly pipelines: number;
  readonly shaderChars: number;
}

const [name, backend] = process.argv.slice(2);
const c = CASES.find((k) => k.name === name);
if (c === undefined) throw new Error(`cold-start: no case named "${name}"`);
const device = await createDevice({ backend: backend as DeviceOptions['backend'] });
if (!(device instanceof WebGpuDevice)) throw new Error('cold-start: needs a WebGPU device');
const model = nn.mlp(MLP.sizes);
const train = await c.compile({ model, loss: crossEntropy, params: model.init(0), device });
const batch = benchBatch(c.batch);
const timed = async () => {
  const t0 = performance.now();
  await train.run(batch);
  return performance.now() - t0;
};
const result: ColdStart = {
  firstMs: await timed(),
  secondMs: await timed(),
  pipelines: device.stats.pipelines,
  shaderChars: device.stats.shaderChars,
};
console.log(JSON.stringify(result));
process.exit(0);
