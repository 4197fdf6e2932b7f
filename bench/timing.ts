export interface Timing {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly runs: number;
}

/**
 * Wall times (ms: median, min, max) of several workloads, run in alternation (a, b, a, b, …)
 * after `warmup` untimed rounds, so slow phases of a shared machine hit every workload alike.
 */
export async function interleavedStats(
  runs: readonly (() => Promise<void>)[],
  reps: number,
  warmup = 2,
): Promise<Timing[]> {
  for (let i = 0; i < warmup; i++) for (const run of runs) await run();
  const times = runs.map((): number[] => []);
  for (let i = 0; i < reps; i++) {
    for (let k = 0; k < runs.length; k++) {
      const t0 = performance.now();
      await runs[k]();
      times[k].push(performance.now() - t0);
    }
  }
  return times.map((t) => {
    const sorted = t.sort((a, b) => a - b);
    return {
      median: sorted[Math.floor(sorted.length / 2)],
      min: sorted[0],
      max: sorted[sorted.length - 1],
      runs: sorted.length,
    };
  });
}
