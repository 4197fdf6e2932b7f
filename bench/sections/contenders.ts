// What every section shares: the loaded peers, and running a workload's contenders interleaved
// into rows (a peer that cannot load becomes a row with its error, never a silent gap).
import type * as TfCore from '@tensorflow/tfjs-core';
import type * as Jax from '@jax-js/jax';
import type { WebGpuDevice } from '../../index.js';
import type { DeviceOptions } from '../../runtime/create-device.js';
import type { Peer } from '../peers/peers.js';
import type { TorchResult } from '../peers/torch.js';
import { progress, type Row } from '../report.js';
import { interleavedStats, type Timing } from '../timing.js';

export interface BenchContext {
  readonly device: WebGpuDevice;
  /** Another device on the same adapter, with empty caches (for cold compile times). */
  openDevice(): Promise<WebGpuDevice>;
  /** createDevice's backend for that adapter (for child processes that open their own). */
  readonly backend: NonNullable<DeviceOptions['backend']>;
  /** Resolves when the GPU has finished everything queued so far. */
  done(): Promise<void>;
  readonly tf: Peer<typeof TfCore>;
  readonly jax: readonly Peer<typeof Jax>[];
  /** PyTorch CPU, timed in its own process beforehand (rows by workload name). */
  readonly torch: TorchResult;
}

export interface Contender {
  readonly library: string;
  run(): Promise<void>;
  readonly dispatches?: number;
}

/** A peer's workload, built once; `note` says which variant of the math it runs, if it matters. */
export interface PeerRun {
  run(): Promise<void>;
  /** Shown in the row's library name, e.g. 'tf.erf GELU'. */
  readonly note?: string;
}

export interface Workload {
  readonly name: string;
  readonly grng: readonly Contender[];
  tf?(tf: typeof TfCore): PeerRun;
  jax?(jax: typeof Jax): PeerRun;
  plain?(): PeerRun;
  /** Formats the rate column from a median in ms. */
  rate(ms: number): string;
}

/**
 * Runs grng and every peer on `w` interleaved (`reps` timed rounds after `warmup`); PyTorch's row
 * is appended from its own run.
 */
export async function measure(
  ctx: BenchContext,
  w: Workload,
  reps: number,
  warmup = 2,
): Promise<Row[]> {
  progress(w.name);
  const rows: Row[] = [];
  const runs: Contender[] = [...w.grng];
  if (w.tf !== undefined) {
    if (ctx.tf.ok) {
      const work = w.tf(ctx.tf.lib);
      runs.push({ library: `TF.js webgpu${work.note ? ` (${work.note})` : ''}`, run: work.run });
    } else rows.push({ workload: w.name, library: 'TF.js webgpu', error: ctx.tf.error });
  }
  if (w.jax !== undefined) {
    for (const jax of ctx.jax) {
      if (!jax.ok) {
        rows.push({ workload: w.name, library: 'jax-js', error: jax.error });
        continue;
      }
      // jax-js keeps one default device: each of its runs selects its own first.
      const on = () => jax.lib.defaultDevice(jax.device as 'webgpu' | 'wasm');
      on();
      const work = w.jax(jax.lib); // built (and jitted) once, on its device
      runs.push({
        library: `jax-js ${jax.device} (jit${work.note ? `, ${work.note}` : ''})`,
        run: async () => {
          on();
          await work.run();
        },
      });
    }
  }
  if (w.plain !== undefined) runs.push({ library: 'plain JS (1 thread)', ...w.plain() });
  const timings = await interleavedStats(
    runs.map((r) => r.run),
    reps,
    warmup,
  );
  runs.forEach((r, i) => rows.push(row(w, r.library, timings[i], r.dispatches)));
  if (ctx.torch.ok) {
    const found = ctx.torch.rows.find((t) => t.workload === w.name);
    if (found !== undefined)
      rows.push(
        row(w, `PyTorch ${ctx.torch.version} CPU (${ctx.torch.threads} threads)`, found.timing),
      );
  } else rows.push({ workload: w.name, library: 'PyTorch CPU', error: ctx.torch.error });
  return rows;
}

function row(w: Workload, library: string, timing: Timing, dispatches?: number): Row {
  return {
    workload: w.name,
    library,
    timing,
    rate: w.rate(timing.median),
    ...(dispatches === undefined ? {} : { dispatches }),
  };
}

/** Compute dispatches one run of `run` records. */
export async function dispatchesOf(ctx: BenchContext, run: () => Promise<void>): Promise<number> {
  const before = ctx.device.stats.dispatches;
  await run();
  return ctx.device.stats.dispatches - before;
}
