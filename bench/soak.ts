// `npm run soak [-- --steps 20000 --every 1000 --programs 2000 --backend auto]`: does a long run
// lose nothing? Phase 1 trains an MLP with AdamW (compileTrainStep) on random batches uploaded
// each step, as a data loader would, and samples the host's RSS and heap and the device's
// memoryStats every `--every` steps. Phase 2 jits `--programs` distinct shapes, more than the
// device keeps, to show its caches stay within their bounds. Prints each phase's table and the
// growth from its first sample (after warm-up) to its last; exits 1 if a bound was exceeded.
// Run with --expose-gc (the npm script does) so each sample follows a full collection.
import { parseArgs } from 'node:util';
import {
  add,
  adamw,
  array,
  compileTrainStep,
  createDevice,
  crossEntropy,
  jit,
  mul,
  nn,
} from '../index.js';
import type { Tensor } from '../index.js';
import type { DeviceOptions } from '../runtime/create-device.js';
import {
  DEFAULT_MAX_EXECUTABLES,
  DEFAULT_MAX_PIPELINES,
  WebGpuDevice,
  type MemoryStats,
} from '../runtime/webgpu-device.js';
import { DEFAULT_POOL_BYTES } from '../runtime/buffer-pool.js';

const { values: opts } = parseArgs({
  options: {
    steps: { type: 'string', default: '20000' },
    every: { type: 'string', default: '1000' },
    programs: { type: 'string', default: '2000' },
    sizes: { type: 'string', default: '32,32,10' },
    batch: { type: 'string', default: '64' },
    backend: { type: 'string', default: 'auto' },
  },
});
const steps = Number(opts.steps);
const every = Number(opts.every);
const programs = Number(opts.programs);
const sizes = opts.sizes.split(',').map(Number);
const batchSize = Number(opts.batch);
const counts = { steps, every, programs, batch: batchSize };
for (const [name, n] of Object.entries(counts)) {
  const min = name === 'every' || name === 'batch' ? 1 : 0;
  if (!Number.isInteger(n) || n < min) {
    console.error(`npm run soak: --${name} must be a whole number ≥ ${min}, got ${n}`);
    process.exit(2);
  }
}

const opened = await createDevice({ backend: opts.backend as DeviceOptions['backend'] });
if (!(opened instanceof WebGpuDevice)) throw new Error('soak: needs a WebGPU device');
const device = opened;
console.log(`soak on ${device.description}, node ${process.version}`);

interface Sample {
  readonly at: number;
  readonly rss: number;
  readonly heap: number;
  readonly device: MemoryStats;
  readonly ms: number;
  readonly note: string;
}

const MiB = 2 ** 20;
const gc = (globalThis as { gc?: () => void }).gc;
let exceeded = false;

/** One sample: after a full collection (when exposed), so dropped arrays went back to the pool. */
async function sample(at: number, ms: number, note: string): Promise<Sample> {
  gc?.();
  // Finalizers run in a later task; let them, then let the GPU finish what they released.
  await new Promise((resolve) => setImmediate(resolve));
  await device.gpu.queue.onSubmittedWorkDone();
  const stats = device.memoryStats();
  if (
    stats.executables > DEFAULT_MAX_EXECUTABLES ||
    stats.pipelines > DEFAULT_MAX_PIPELINES ||
    stats.pooledBytes > DEFAULT_POOL_BYTES
  )
    exceeded = true;
  const { rss, heapUsed } = process.memoryUsage();
  return { at, rss, heap: heapUsed, device: stats, ms, note };
}

function printTable(title: string, unit: string, rows: readonly Sample[]): void {
  console.log(`\n${title}`);
  const header = [unit, 'RSS MiB', 'heap MiB', 'programs', 'pipelines', 'pooled KiB', 'live KiB'];
  console.log([...header, 'ms/each', 'note'].map((h) => h.padStart(10)).join(' '));
  for (const r of rows) {
    const cells = [
      String(r.at),
      (r.rss / MiB).toFixed(1),
      (r.heap / MiB).toFixed(1),
      String(r.device.executables),
      String(r.device.pipelines),
      (r.device.pooledBytes / 1024).toFixed(0),
      (r.device.liveBytes / 1024).toFixed(0),
      r.ms.toFixed(2),
      r.note,
    ];
    console.log(cells.map((c) => c.padStart(10)).join(' '));
  }
  const [first, last] = [rows[0], rows[rows.length - 1]];
  const grew = (a: number, b: number) => `${((b - a) / MiB).toFixed(2)} MiB`;
  console.log(
    `growth ${first.at} → ${last.at}: RSS ${grew(first.rss, last.rss)}, heap ` +
      `${grew(first.heap, last.heap)}, device live ${grew(first.device.liveBytes, last.device.liveBytes)}, ` +
      `programs ${first.device.executables} → ${last.device.executables}, pipelines ` +
      `${first.device.pipelines} → ${last.device.pipelines}`,
  );
}

/** A deterministic pseudo-random stream (mulberry32): the same batches every run. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

// Phase 1: training. Eight host batches, cycled; labels follow a fixed rule so the loss falls.
const rand = random(1);
const [inputs, classes] = [sizes[0], sizes[sizes.length - 1]];
const batches = Array.from({ length: 8 }, () => {
  const x = Float64Array.from({ length: batchSize * inputs }, () => rand() * 2 - 1);
  const y = Int32Array.from(
    { length: batchSize },
    (_, n) => Math.floor(((x[n * inputs] + 1) / 2) * classes) % classes,
  );
  return { x: array(x, [batchSize, inputs]), y: array(y, [batchSize], 'i32') };
});
const model = nn.mlp(sizes);
const train = await compileTrainStep({
  model,
  loss: crossEntropy,
  optimizer: adamw({ lr: 1e-3 }),
  params: model.init(0),
  device,
});
const trained: Sample[] = [];
let t0 = performance.now();
for (let step = 1; step <= steps; step++) {
  const { loss } = await train.run(batches[step % batches.length]);
  if (step % every === 0) {
    const ms = (performance.now() - t0) / every;
    trained.push(await sample(step, ms, `loss ${loss.toFixed(3)}`));
    t0 = performance.now();
  }
}
if (trained.length > 0)
  printTable(`training ${sizes.join('-')}, batch ${batchSize}, AdamW`, 'step', trained);

// Phase 2: distinct programs, x ↦ x² + (k + 1) over 4(k + 1) elements: each shape its own program,
// each constant its own WGSL (a literal in the kernel), so both caches fill up.
const compiled: Sample[] = [];
const programEvery = Math.max(1, Math.floor(programs / 10));
t0 = performance.now();
for (let k = 0; k < programs; k++) {
  const length = 4 * (k + 1);
  const f = jit((x: Tensor) => add(mul(x, x), k + 1), { device });
  const x = Float64Array.from({ length }, (_, i) => (i % 8) - 4);
  const y = await f(array(x, [length]));
  if ((k + 1) % programEvery !== 0) {
    y.dispose();
    continue;
  }
  // Check a result per sample: evictions must never change what a program computes.
  const got = await y.read();
  const wrong = got.findIndex((v, i) => v !== x[i] * x[i] + k + 1);
  if (wrong >= 0) throw new Error(`soak: program ${k} computed ${got[wrong]} at ${wrong}`);
  y.dispose();
  const ms = (performance.now() - t0) / programEvery;
  compiled.push(await sample(k + 1, ms, `n=${length}`));
  t0 = performance.now();
}
if (compiled.length > 0) printTable('distinct programs (jit per shape)', 'programs', compiled);
console.log(
  `\ncompiled ${device.programCount} programs; pipelines created ${device.stats.pipelines}`,
);
if (exceeded) {
  console.error('soak: a device cache exceeded its bound');
  process.exit(1);
}
process.exit(0);
