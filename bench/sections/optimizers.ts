// Sections 3 and 4: every optimizer's training step on the benchmark MLP (784-256-256-10, batch
// 128), relative to AdamW: the median step, the step amortized over a whole refresh period (what
// training pays), the refresh step alone, optimizer-state bytes, and compile time cold (a new
// program) and cached (the same optimizer compiled again in this process, pipelines reused), each
// as the first call minus a steady refresh step so the refresh's own compute is not counted.
// R-Kalman observes B·(C − 1) rows, so it is timed at batch 1 against AdamW at batch 1.
import {
  adamw,
  compileTrainStep,
  crossEntropy,
  jit,
  matmul,
  nn,
  type Tensor,
  type TrainStep,
  type WebGpuDevice,
} from '../../index.js';
import { flattenTree } from '../../core/tree.js';
import { isArrayLeaf } from '../../runtime/jit.js';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ColdStart } from '../cold-start.js';
import { progress, type OptimizerFigures, type Row, type Section } from '../report.js';
import type { Timing } from '../timing.js';
import type { BenchContext } from './contenders.js';
import { benchBatch, MLP } from './mlp-step.js';
import { squareOperands } from './matmul.js';
import { CASES } from './optimizer-cases.js';

type Batch = Parameters<TrainStep['run']>[0];

export async function optimizersSection(ctx: BenchContext): Promise<Section> {
  // A device of its own: its pipeline cache starts empty, so the first steps here are cold.
  const device = await ctx.openDevice();
  const model = nn.mlp(MLP.sizes);
  const common = { model, loss: crossEntropy, params: model.init(0), device };
  const matmulGflops = await matmulRate(device);
  const rows: Row[] = [];
  // AdamW at each batch, stepped between the optimizer's steps: the ratio compares the same moments
  // of a noisy machine.
  const baselines = new Map<number, TrainStep>();
  for (const c of CASES) {
    progress(c.name);
    const batch = benchBatch(c.batch);
    try {
      const train = await c.compile(common);
      const firstColdMs = await timed(() => train.run(batch));
      let baseline = baselines.get(c.batch);
      if (baseline === undefined) {
        baseline = await compileTrainStep({ ...common, optimizer: adamw({ lr: 1e-3 }) });
        for (let t = 0; t < 3; t++) await baseline.run(batch);
        baselines.set(c.batch, baseline);
      }
      const { timing, dispatches, amortizedMs, timesAdamW, refreshMs, flops } = await timePeriods(
        device,
        train,
        baseline,
        batch,
        c.period,
        c.periods,
      );
      const firstCachedMs = await timed(async () => (await c.compile(common)).run(batch));
      rows.push({
        workload: c.name,
        library: 'grng',
        timing,
        dispatches,
        optimizer: {
          amortizedMs,
          timesAdamW,
          stateBytes: await stateBytes(train),
          refreshMs,
          period: c.period,
          firstColdMs,
          firstCachedMs,
          flops: { ...flops, matmulGflops },
          ...(c.cold ? { newMachine: newMachine(c.name, ctx.backend) } : {}),
        },
      });
    } catch (error) {
      rows.push({
        workload: c.name,
        library: 'grng',
        error: (error instanceof Error ? error.message : String(error)).split('\n')[0],
      });
    }
  }
  return {
    title: 'Optimizers on the MLP (784-256-256-10, batch 128)',
    about: [
      'Median and amortized ms per step: the amortized figure is the mean ' +
        'over whole refresh periods (after a first period that compiled every ' +
        'variant), what training pays per step.',
      '× AdamW divides it by the mean of AdamW steps (same batch) taken ' +
        "between the optimizer's steps.",
      'The first step of a new training step is a refresh step: it traces, ' +
        'plans, compiles and runs one; "cold" on a fresh device, "cached" when ' +
        'the same optimizer is compiled again (pipelines reused).',
      'Compile time ≈ first step − a steady refresh step.',
      'First 2 steps, new machine: the first two steps of a new process with ' +
        "the driver's shader cache disabled (MESA_SHADER_CACHE_DISABLE=true, " +
        'bench/cold-start.ts), which is what a user pays on first contact; ' +
        'pipelines and KiB of WGSL are what the driver compiled for them.',
      `GFLOP/s: the step's matmul FLOPs (2·m·n·k per product, counted by the device; of gated ` +
        'dispatches — a fallback or polish the device may skip — only those that ran) over its ' +
        "amortized time, and the refresh step's over its time; × FLOP floor: the amortized time " +
        'over the time those FLOPs take at the plain 512³ matmul rate measured on this device ' +
        `in this run (${matmulGflops.toFixed(1)} GFLOP/s).`,
      'Target: RING (S = 10) ≤ 1.3× AdamW; every curvature step within 2× its FLOP floor.',
    ].join(' '),
    rows,
    kind: 'optimizers',
  };
}

/** GFLOP/s of a plain 512³ product on `device` (median of 7, after a compiling call). */
async function matmulRate(device: WebGpuDevice): Promise<number> {
  const k = 512;
  const [a, b] = squareOperands(device, k);
  const mm = jit((x: Tensor, y: Tensor) => matmul(x, y), { device });
  const run = async () => {
    const c = await mm(a, b);
    await c.read();
    c.dispose();
  };
  await run();
  const times: number[] = [];
  for (let i = 0; i < 7; i++) times.push(await timed(run));
  times.sort((x, y) => x - y);
  return (2 * k ** 3) / (times[3] * 1e6);
}

/**
 * The first two steps of a case as a new machine pays them: bench/cold-start.ts in a child process
 * with Mesa's on-disk shader cache disabled (without that, only a machine's first run ever sees
 * the driver compile its pipelines).
 */
function newMachine(name: string, backend: string): NonNullable<OptimizerFigures['newMachine']> {
  const script = fileURLToPath(new URL('../cold-start.ts', import.meta.url));
  const child = spawnSync(process.execPath, ['--import', 'tsx', script, name, backend], {
    env: { ...process.env, MESA_SHADER_CACHE_DISABLE: 'true' },
    encoding: 'utf8',
    timeout: 1_800_000,
  });
  const last = child.stdout.trim().split('\n').pop() ?? '';
  if (child.status !== 0 || !last.startsWith('{'))
    throw new Error(`cold-start ${name}: ${child.stderr.trim().split('\n').pop() ?? child.status}`);
  const r = JSON.parse(last) as ColdStart;
  return { firstTwoMs: r.firstMs + r.secondMs, pipelines: r.pipelines, shaderChars: r.shaderChars };
}

/** What timing whole refresh periods of a training step gives (times in ms). */
export interface PeriodTimes {
  /** Median, min and max of the timed steps. */
  readonly timing: Timing;
  /** Dispatches of the first timed step (a plain one when the period is longer than 1). */
  readonly dispatches: number;
  /** The mean of the timed steps: what training pays per step. */
  readonly amortizedMs: number;
  /** amortizedMs over the mean of the baseline steps taken between them. */
  readonly timesAdamW: number;
  /** The last timed step, a refresh step. */
  readonly refreshMs: number;
  /** Matmul FLOPs dispatched per timed step (mean) and by the refresh step. */
  readonly flops: { readonly perStep: number; readonly refresh: number };
  /** Programs compiled during the timed steps (0 unless they never settled). */
  readonly compiled: number;
}

/**
 * Times `periods` whole refresh periods of `train` (`period` steps each), a `baseline` step after
 * each of its steps so the ratio compares the same moments of a noisy machine. `train` has taken
 * its first step: steps 1 … P compile every variant where parameters and state stay from then on
 * (step 0's arrays sit where they were uploaded); steps P + 1 … P + P·periods are timed, ending on
 * a refresh. Where the arrays settle somewhere new once more (a ViT's RING step: after the first
 * refresh in place), a variant compiles inside the timed steps; those are then timed again, up to
 * `attempts` times in all, and the figures say if the last ones still compiled.
 */
export async function timePeriods(
  device: WebGpuDevice,
  train: TrainStep,
  baseline: TrainStep,
  batch: Batch,
  period: number,
  periods: number,
  attempts = 3,
): Promise<PeriodTimes> {
  for (let t = 1; t <= period; t++) await train.run(batch);
  let times: number[] = [];
  let baselineTimes: number[] = [];
  let dispatches = 0;
  let compiled = 0;
  let flops = { perStep: 0, refresh: 0 };
  for (let attempt = 0; attempt < attempts && (attempt === 0 || compiled > 0); attempt++) {
    [times, baselineTimes] = [[], []];
    const programs = programsCompiled(device);
    let stepFlops = 0;
    for (let t = 0; t < period * periods; t++) {
      const before = { ...device.stats };
      times.push(await timed(() => train.run(batch)));
      // a plain step (or, for P = 1, every step)
      if (t === 0) dispatches = device.stats.dispatches - before.dispatches;
      // products that always run, and those of the gated ones (a fallback, a polish) that ran
      const gated = await device.gatedWork();
      const mine = device.stats.matmulFlops - before.matmulFlops + gated.matmulFlops;
      stepFlops += mine;
      flops = { perStep: stepFlops / (t + 1), refresh: mine };
      baselineTimes.push(await timed(() => baseline.run(batch)));
    }
    compiled = programsCompiled(device) - programs;
  }
  const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const sorted = [...times].sort((a, b) => a - b);
  return {
    timing: {
      median: sorted[Math.floor(sorted.length / 2)],
      min: sorted[0],
      max: sorted[sorted.length - 1],
      runs: sorted.length,
    },
    dispatches,
    amortizedMs: mean(times),
    timesAdamW: mean(times) / mean(baselineTimes),
    refreshMs: times[times.length - 1],
    flops,
    compiled,
  };
}

/**
 * Programs `device` has compiled so far. WebGpuDevice keeps them in a private map, read here (for
 * the benchmark only) to tell timed steps from steps that compiled; 0 if it is not there.
 */
function programsCompiled(device: WebGpuDevice): number {
  const programs = (device as unknown as { executables?: ReadonlyMap<string, unknown> })
    .executables;
  return programs?.size ?? 0;
}

/** Wall time (ms) of one awaited call. */
export async function timed(run: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await run();
  return performance.now() - t0;
}

/** Optimizer-state bytes (f32) of a training step. */
export async function stateBytes(train: TrainStep): Promise<number> {
  const leaves = flattenTree('bench', await train.state(), isArrayLeaf, 'an array').leaves as {
    shape: readonly number[];
  }[];
  return 4 * leaves.reduce((n, a) => n + a.shape.reduce((p, d) => p * d, 1), 0);
}
