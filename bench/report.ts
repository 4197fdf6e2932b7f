// The benchmark's results: rows grouped by section, printed as Markdown tables and written as JSON
// (bench/results/<date>-<adapter>.json and .md, ignored by git).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Timing } from './timing.js';

/** One measured (or failed) figure: a library on a workload. */
export interface Row {
  readonly workload: string;
  readonly library: string;
  readonly timing?: Timing;
  /** Throughput or ratio, already formatted (GB/s, GFLOP/s, steps/s, × AdamW). */
  readonly rate?: string;
  readonly dispatches?: number;
  /** Why the library cannot run this workload here. */
  readonly error?: string;
  /** Optimizer rows: the figures of the per-optimizer table. */
  readonly optimizer?: OptimizerFigures;
  /** Size-sweep rows: memory against what the step holds. */
  readonly sizes?: SizeFigures;
}

/** One model size of the sweep (bench/sections/size-sweep.ts). */
export interface SizeFigures {
  readonly parameters: number;
  /** Parameters + gradients + optimizer state + activations, in bytes. */
  readonly heldBytes: number;
  /** The device's peak live bytes over compile and steps. */
  readonly peakDeviceBytes: number;
  /** Growth of the process's resident set from before compiling to its peak. */
  readonly rssGrowthBytes: number;
  /** Compile and the first two steps. */
  readonly firstStepsMs: number;
}

/** One optimizer's training step on the benchmark MLP (times in ms). */
export interface OptimizerFigures {
  /** Mean step time over one whole refresh period: what training pays per step. */
  readonly amortizedMs: number;
  /** Amortized time relative to AdamW's at the same batch. */
  readonly timesAdamW: number;
  readonly stateBytes: number;
  /**
   * A step that refreshes everything lazy (factors, inverses, Hessian estimates), in steady state.
   */
  readonly refreshMs: number;
  /** The longest refresh period: refresh steps are 1 in this many. */
  readonly period: number;
  /**
   * A new step's first call (a refresh step) on a fresh device: tracing, planning, WGSL, pipelines,
   * the step.
   */
  readonly firstColdMs: number;
  /**
   * The same for a second step object of the same optimizer on that device (pipelines cached);
   * absent where it was not taken.
   */
  readonly firstCachedMs?: number;
  /**
   * The first two steps on a new machine (bench/cold-start.ts: a child process, the driver's
   * shader cache disabled), with the pipelines and WGSL characters compiled; absent where not
   * taken.
   */
  readonly newMachine?: {
    readonly firstTwoMs: number;
    readonly pipelines: number;
    readonly shaderChars: number;
  };
  /**
   * Matmul FLOPs per step (amortized) and of the refresh step, and the plain matmul rate measured
   * in the same run (GFLOP/s): the FLOP floor of a step is its FLOPs at that rate.
   */
  readonly flops?: {
    readonly perStep: number;
    readonly refresh: number;
    readonly matmulGflops: number;
  };
}

export interface Section {
  readonly title: string;
  /** What the figures mean: counted bytes, targets, how compile time is split. */
  readonly about: string;
  readonly rows: Row[];
  /**
   * 'optimizers' renders the per-optimizer table (a row with a timing but no optimizer figures,
   * such as another library's step, fills its median only); otherwise library against library.
   */
  readonly kind?: 'optimizers' | 'sizes';
}

/** A line on stderr as each figure is taken: a whole run takes minutes. */
export function progress(text: string): void {
  process.stderr.write(`bench: ${text}\n`);
}

const ms = (x: number | undefined) =>
  x === undefined ? '' : x >= 100 ? x.toFixed(0) : x.toFixed(2);

export function markdown(sections: readonly Section[], header: string): string {
  const out = [header, ''];
  for (const s of sections) {
    out.push(`### ${s.title}`, '', s.about, '');
    if (s.kind === 'optimizers') {
      out.push(...optimizerTable(s.rows), '');
      continue;
    }
    if (s.kind === 'sizes') {
      out.push(...sizeTable(s.rows), '');
      continue;
    }
    out.push(
      '| workload | library | median ms | min | max | rate | dispatches |',
      '|---|---|---|---|---|---|---|',
    );
    for (const r of s.rows) {
      if (r.error !== undefined)
        out.push(
          `| ${r.workload} | ${r.library} | cannot run: ${r.error.replaceAll('|', '/')} | | | | |`,
        );
      else
        out.push(
          `| ${r.workload} | ${r.library} | ${ms(r.timing?.median)} | ` +
            `${ms(r.timing?.min)} | ${ms(r.timing?.max)} | ${r.rate ?? ''} | ` +
            `${r.dispatches ?? ''} |`,
        );
    }
    out.push('');
  }
  return out.join('\n');
}

function optimizerTable(rows: readonly Row[]): string[] {
  const sec = (x: number) => `${(x / 1000).toFixed(2)} s`;
  const out = [
    '| optimizer | median ms | amortized ms | × AdamW | dispatches | state ' +
      '| refresh step | first step cold | first step cached | ≈ compile cold ' +
      '| first 2 steps, new machine | pipelines, WGSL | GFLOP/s: step, refresh | × FLOP floor |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const f = r.optimizer;
    if (r.error === undefined && f === undefined && r.timing !== undefined)
      out.push(
        `| ${r.workload} | ${ms(r.timing.median)} | | | ${r.dispatches ?? ''} | | | | | | | | | |`,
      );
    else if (r.error !== undefined || f === undefined)
      out.push(
        `| ${r.workload} | failed: ${(r.error ?? '').replaceAll('|', '/')} | | | | | | | | | | | | |`,
      );
    else {
      const refresh = f.period > 1 ? `${ms(f.refreshMs)} ms (1 in ${f.period})` : '(every step)';
      const compile = Math.max(0, f.firstColdMs - f.refreshMs);
      out.push(
        `| ${r.workload} | ${ms(r.timing?.median)} | ${ms(f.amortizedMs)} | ` +
          `${f.timesAdamW.toFixed(2)} | ${r.dispatches ?? ''} | ` +
          `${(f.stateBytes / 2 ** 20).toFixed(2)} MiB | ${refresh} | ` +
          `${sec(f.firstColdMs)} | ${f.firstCachedMs === undefined ? '' : sec(f.firstCachedMs)} | ` +
          `${sec(compile)} | ${f.newMachine === undefined ? '' : sec(f.newMachine.firstTwoMs)} | ` +
          `${
            f.newMachine === undefined
              ? ''
              : `${f.newMachine.pipelines}, ${(f.newMachine.shaderChars / 1024).toFixed(0)} KiB`
          } | ${flopColumns(f)} |`,
      );
    }
  }
  return out;
}

function sizeTable(rows: readonly Row[]): string[] {
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
  const out = [
    '| model | parameters | median ms/step | rate | first 2 steps (with compile) | held (p+g+s+a) ' +
      '| peak device | × held | RSS growth | × held |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const f = r.sizes;
    if (r.error !== undefined || f === undefined) {
      out.push(
        `| ${r.workload} | failed: ${(r.error ?? '').replaceAll('|', '/')} | | | | | | | | |`,
      );
      continue;
    }
    out.push(
      `| ${r.workload} | ${(f.parameters / 1e6).toFixed(2)} M | ${ms(r.timing?.median)} | ` +
        `${r.rate ?? ''} | ${(f.firstStepsMs / 1000).toFixed(1)} s | ${mib(f.heldBytes)} | ` +
        `${mib(f.peakDeviceBytes)} | ${(f.peakDeviceBytes / f.heldBytes).toFixed(2)} | ` +
        `${mib(f.rssGrowthBytes)} | ${(f.rssGrowthBytes / f.heldBytes).toFixed(2)} |`,
    );
  }
  return out;
}

/**
 * Achieved matmul GFLOP/s (amortized step, refresh step) and the amortized time over the FLOP
 * floor; empty where no FLOPs were counted.
 */
function flopColumns(f: OptimizerFigures): string {
  if (f.flops === undefined || f.flops.perStep === 0) return ' | ';
  const { perStep, refresh, matmulGflops } = f.flops;
  const rate = (flops: number, ms: number) => (flops / (ms * 1e6)).toFixed(1);
  const floorMs = perStep / (matmulGflops * 1e6);
  const refreshRate = f.period > 1 ? `, ${rate(refresh, f.refreshMs)}` : '';
  return `${rate(perStep, f.amortizedMs)}${refreshRate} | ${(f.amortizedMs / floorMs).toFixed(1)}`;
}

/** Writes the JSON and the Markdown next to each other; returns the JSON's path. */
export function writeResults(
  adapter: string,
  description: string,
  sections: readonly Section[],
  text: string,
): string {
  const dir = join('bench', 'results');
  mkdirSync(dir, { recursive: true });
  const base = join(dir, `${new Date().toISOString().slice(0, 10)}-${adapter}`);
  writeFileSync(
    `${base}.json`,
    `${JSON.stringify({ adapter: description, date: new Date().toISOString(), sections }, null, 1)}\n`,
  );
  writeFileSync(`${base}.md`, `${text}\n`);
  return `${base}.json`;
}
