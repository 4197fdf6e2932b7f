// GR-Adam beside Adam on Fashion-MNIST: the 784-256-10 MLP of `grng train`, both from the same
// initial parameters on the same batches, one step of each in turn (so a loaded machine slows
// both alike), the test set evaluated every --eval-every steps.
// Run it: npx tsx examples/regularized-optimizer/train.ts [--steps 468] [--eval-every 100]
//   [--lr 0.001] [--rho 0.01] [--batch 128] [--seed 0] [--data DIR]   (468 steps = 1 epoch)
// In your project, import from 'grng' instead of '../../index.js'.
import { parseArgs } from 'node:util';
import {
  adam,
  compileTrainStep,
  createDevice,
  crossEntropy,
  jit,
  nn,
  type DeviceArray,
  type HyperDefaults,
  type Optimizer,
  type Tensor,
  type TrainStep,
} from '../../index.js';
import { batchOf, FASHION_MNIST, loadFashionMnist, permutation } from './fashion-mnist.js';
import { grAdam } from './gr-adam.js';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '468' },
    'eval-every': { type: 'string', default: '100' },
    lr: { type: 'string', default: '0.001' },
    rho: { type: 'string', default: '0.01' },
    batch: { type: 'string', default: '128' },
    seed: { type: 'string', default: '0' },
    data: { type: 'string', default: FASHION_MNIST },
  },
});
const [steps, evalEvery, lr, rho, batch, seed] = (
  ['steps', 'eval-every', 'lr', 'rho', 'batch', 'seed'] as const
).map((name) => {
  const n = Number(values[name]);
  if (!Number.isFinite(n) || (name !== 'lr' && name !== 'rho' && !Number.isInteger(n)))
    throw new Error(
      `--${name} must be ${name === 'lr' || name === 'rho' ? 'a number' : 'an integer'}`,
    );
  return n;
});

const data = loadFashionMnist(values.data);
const device = await createDevice();
const model = nn.mlp([784, 256, 10]);
const evaluateBatch = jit(
  (p: Parameters<typeof model.apply>[0], x: Tensor, y: Tensor) => {
    const logits = model.apply(p, x);
    return [crossEntropy(logits, y), nn.accuracy(logits, y)];
  },
  { device },
);

/** Mean test loss and accuracy of a step's current parameters. */
async function evaluate(train: TrainStep): Promise<{ loss: number; accuracy: number }> {
  const params = await train.params();
  let [loss, right] = [0, 0];
  for (let start = 0; start < data.test.count; start += 1000) {
    const n = Math.min(1000, data.test.count - start);
    const { x, y } = batchOf(
      data.test,
      Array.from({ length: n }, (_, i) => start + i),
    );
    const [l, a] = (await evaluateBatch(params, x, y)) as DeviceArray[];
    loss += (await l.read())[0] * n;
    right += (await a.read())[0] * n;
  }
  return { loss: loss / data.test.count, accuracy: right / data.test.count };
}

interface Run {
  readonly name: string;
  readonly train: TrainStep;
  /** Seconds of the first step: compileTrainStep traces and compiles on it. */
  firstSeconds: number;
  /** Milliseconds of the steps after the first, and their losses since the last evaluation. */
  ms: number;
  lossSum: number;
}

async function start<H extends HyperDefaults, S>(
  name: string,
  optimizer: Optimizer<H, S>,
): Promise<Run> {
  const train = await compileTrainStep({
    model,
    loss: crossEntropy,
    optimizer,
    params: model.init(seed),
    device,
    metrics: ['loss'],
    seed,
  });
  return { name, train, firstSeconds: 0, ms: 0, lossSum: 0 };
}
const runs = [await start('GR-Adam', grAdam({ lr, rho })), await start('Adam', adam({ lr }))];

console.log(
  `GR-Adam (lr ${lr}, ρ ${rho}) beside Adam (lr ${lr}): MLP 784-256-10, batch ${batch}, ` +
    `${steps} steps, seed ${seed}, on ${device.description}\n`,
);
const columns = (name: string) => [`${name} train loss`, 'test loss', 'test acc'];
console.log(`| step | epoch | ${runs.flatMap((r) => columns(r.name)).join(' | ')} |`);
console.log(`|---:|---:|${runs.flatMap((r) => columns(r.name).map(() => '---:')).join('|')}|`);
const perEpoch = Math.floor(data.train.count / batch);
let order: Int32Array = new Int32Array(0);
let since = 0;
for (let step = 1; step <= steps; step++) {
  const position = (step - 1) % perEpoch;
  const epoch = Math.floor((step - 1) / perEpoch) + 1;
  if (position === 0) order = permutation(data.train.count, seed * 1000003 + epoch);
  const b = batchOf(data.train, order.subarray(position * batch, (position + 1) * batch));
  // Each step is awaited (its loss read back) before the next: ms/step includes that round trip.
  for (const run of runs) {
    const t0 = performance.now();
    run.lossSum += (await run.train.run(b)).loss ?? Number.NaN;
    const ms = performance.now() - t0;
    if (step === 1) run.firstSeconds = ms / 1000;
    else run.ms += ms;
  }
  since++;
  if (step % evalEvery === 0 || step === steps) {
    const cells: string[] = [];
    for (const run of runs) {
      const test = await evaluate(run.train);
      cells.push(
        (run.lossSum / since).toFixed(4),
        test.loss.toFixed(4),
        `${(100 * test.accuracy).toFixed(2)} %`,
      );
      run.lossSum = 0;
    }
    since = 0;
    console.log(`| ${step} | ${(step / perEpoch).toFixed(2)} | ${cells.join(' | ')} |`);
  }
}
console.log('');
for (const run of runs)
  console.log(
    `${run.name}: ${steps > 1 ? (run.ms / (steps - 1)).toFixed(1) : '–'} ms/step after the ` +
      `first; the first (tracing, autodiff, WGSL, pipelines) ${run.firstSeconds.toFixed(1)} s`,
  );
