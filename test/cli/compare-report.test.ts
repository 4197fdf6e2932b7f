// The comparison's table and plots from hand-made runs: one row per optimizer with the numbers
// in their columns, time to target from the first point at or above it, failures as rows, and
// one line per optimizer in each plot.
import { describe, expect, test } from 'vitest';
import {
  compareCharts,
  compareTable,
  timeToTarget,
  type ComparedRun,
  type EvalPoint,
} from '../../cli/compare-report.js';
import { bucketMeans } from '../../cli/run-plots.js';

const point = (epoch: number, elapsed: number, testAccuracy: number): EvalPoint => ({
  step: epoch * 100,
  epoch,
  elapsed,
  trainLoss: 1 - testAccuracy,
  testLoss: 1.1 - testAccuracy,
  testAccuracy,
});
const fast: ComparedRun = {
  name: 'ring',
  settings: { lr: 0.01, rho: 0.01 },
  batchSize: 128,
  points: [point(0.5, 10, 0.8), point(1, 20, 0.86), point(2, 30, 0.85)],
  gradNormMean: 0.5,
  msPerStep: 12.5,
  firstStepSeconds: 3,
};
const slow: ComparedRun = {
  name: 'sgd',
  settings: {},
  batchSize: 64,
  seconds: 10,
  points: [point(0.5, 5, 0.7), point(1, 10, 0.8)],
  gradNormMean: 0.9,
  msPerStep: 5,
  firstStepSeconds: 1,
};
const failed: ComparedRun = {
  name: 'kfac',
  settings: {},
  batchSize: 128,
  points: [],
  gradNormMean: Number.NaN,
  msPerStep: Number.NaN,
  firstStepSeconds: Number.NaN,
  error: 'out of | memory',
};
const setup = {
  device: 'llvmpipe',
  dataset: 'Fashion-MNIST',
  model: 'MLP 784-256-10',
  epochs: 2,
  target: 0.85,
  seed: 0,
  date: '2026-11-29',
};

describe('compare report', () => {
  test('time to target is the first point at or above it', () => {
    expect(timeToTarget(fast, 0.85)?.elapsed).toBe(20);
    expect(timeToTarget(fast, 0.9)).toBeUndefined();
  });

  test('a row per run: final, best, losses, times, target, gradient norm; failures say so', () => {
    const rows = compareTable([fast, slow, failed], setup)
      .split('\n')
      .filter((l) => l.startsWith('| **'));
    const cells = rows.map((r) => r.split(' | ').map((c) => c.replace(/^\| |\s\|$/g, '')));
    expect(cells[0]).toEqual([
      '**ring**',
      '85.00 %',
      '86.00 % (ep 1.00)',
      '0.1500',
      '0.2500',
      '30.0',
      '12.5',
      '20.0 s (ep 1.00)',
      '0.500',
    ]);
    expect(cells[1][1]).toBe('80.00 % (stopped at ep 1.00)');
    expect(cells[1][7]).toBe('not reached');
    expect(cells[2][0]).toBe('**kfac** (failed: out of \\| memory)');
    expect(cells[2].slice(1)).toEqual(['–', '–', '–', '–', '–', '–', 'not reached', '–']);
    const text = compareTable([fast, slow], setup);
    expect(text).toContain('time to 85.00 %');
    expect(text).toContain('- **ring**: batch 128; lr 0.01, rho 0.01');
    expect(text).toContain('- **sgd**: batch 64, time cap 10 s; defaults');
  });

  test('four plots, one line per run with points', () => {
    const charts = compareCharts([fast, slow]);
    expect(Object.keys(charts).sort()).toEqual([
      'accuracy-epoch.svg',
      'accuracy-time.svg',
      'loss-epoch.svg',
      'loss-time.svg',
    ]);
    for (const svg of Object.values(charts)) expect((svg.match(/<polyline/g) ?? []).length).toBe(2);
  });

  test('bucket means (the run plots smooth per-step losses)', () => {
    expect(
      bucketMeans(
        [
          [1, 1],
          [2, 3],
          [3, 5],
          [4, 7],
          [5, 9],
        ],
        2,
      ),
    ).toEqual([
      [2, 2],
      [4, 6],
      [5, 9],
    ]);
  });
});
