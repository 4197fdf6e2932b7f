// `grng compare` through its entry function on the tiny IDX dataset (float64 interpreter): two
// optimizers under one budget, evaluation points at the requested fractions of an epoch, the
// table, results.json and four plots; a failing optimizer is reported and the others still run;
// bad options fail before any training.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { compare, parseOptimizerSettings } from '../../cli/compare.js';
import type { ComparedRun } from '../../cli/compare-report.js';
import { writeDataset } from '../support/idx-dataset.js';

describe('grng compare', () => {
  const dir = mkdtempSync(join(tmpdir(), 'grng-compare-'));
  writeDataset(dir);
  const common = [
    '--dataset',
    'idx',
    '--data',
    dir,
    '--hidden',
    '8',
    '--batch-size',
    '12',
    '--device',
    'cpu',
    '--target',
    '0.9',
  ];

  test('sgd and ring, 2 epochs with 2 evaluations each: table, points, plots', async () => {
    const out = join(dir, 'both');
    const lines: string[] = [];
    const args = [
      ...common,
      '--optimizers',
      'sgd,ring',
      '--epochs',
      '2',
      '--evals-per-epoch',
      '2',
      '--set',
      'sgd.lr=0.03',
      '--set',
      'sgd.momentum=0.9',
      '--set',
      'sgd.batchSize=6',
      '--set',
      'ring.lr=0.05',
      '--set',
      'ring.inverseEvery=2',
      '--schedule',
      'constant',
      '--out',
      out,
    ];
    expect(await compare(args, (l) => lines.push(l))).toBe(0);
    const { runs } = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as {
      runs: ComparedRun[];
    };
    expect(runs.map((r) => [r.name, r.batchSize])).toEqual([
      ['sgd', 6],
      ['ring', 12],
    ]);
    // 48 images: sgd takes 8 steps per epoch, ring 4; evaluations at half and whole epochs.
    expect(runs[0].points.map((p) => p.step)).toEqual([4, 8, 12, 16]);
    expect(runs[1].points.map((p) => p.step)).toEqual([2, 4, 6, 8]);
    for (const run of runs) {
      expect(run.points.map((p) => p.epoch)).toEqual([0.5, 1, 1.5, 2]);
      const times = run.points.map((p) => p.elapsed);
      expect(times).toEqual([...times].sort((a, b) => a - b));
      expect(run.gradNormMean).toBeGreaterThan(0);
      // Three well-separated classes: both reach 90 % test accuracy by the end (measured, float64
      // interpreter, fixed seed: sgd 33 → 83 → 83 → 100 %, ring 100 % at every evaluation).
      expect(run.points.at(-1)?.testAccuracy).toBeGreaterThanOrEqual(0.9);
    }
    expect(runs[0].settings).toEqual({ lr: 0.03, momentum: 0.9 });
    const table = readFileSync(join(out, 'compare.md'), 'utf8');
    expect(table.split('\n').filter((l) => l.startsWith('| **')).length).toBe(2);
    expect(table).toMatch(/- \*\*ring\*\*: batch 12; lr 0\.05, inverseEvery 2/);
    expect(table).toMatch(/2 epochs each, lr schedule constant, seed 0/);
    for (const file of [
      'loss-epoch.svg',
      'accuracy-epoch.svg',
      'loss-time.svg',
      'accuracy-time.svg',
    ]) {
      expect((readFileSync(join(out, file), 'utf8').match(/<polyline/g) ?? []).length).toBe(2);
    }
    expect(lines.at(-1)).toMatch(/compare\.md/);
  });

  test('a failing optimizer is a row saying so and exit code 1; the others still run', async () => {
    const out = join(dir, 'failing');
    const lines: string[] = [];
    // A parameter path that the MLP does not have: R-Kalman fails when the step is compiled.
    const args = [
      ...common,
      '--optimizers',
      'rkalman,sgd',
      '--epochs',
      '1',
      '--evals-per-epoch',
      '1',
      '--set',
      'rkalman.params=nothing',
      '--out',
      out,
    ];
    expect(await compare(args, (l) => lines.push(l))).toBe(1);
    const { runs } = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as {
      runs: ComparedRun[];
    };
    expect(runs[0].error).toMatch(/nothing/);
    expect(runs[1].points.length).toBe(1);
    expect(readFileSync(join(out, 'compare.md'), 'utf8')).toMatch(/\*\*rkalman\*\* \(failed: /);
  });

  test("one optimizer's own time cap stops it at the first evaluation past it", async () => {
    const out = join(dir, 'capped');
    const args = [
      ...common,
      '--optimizers',
      'sgd,adamw',
      '--epochs',
      '2',
      '--evals-per-epoch',
      '2',
      '--set',
      'sgd.seconds=0',
      '--out',
      out,
    ];
    expect(await compare(args, () => {})).toBe(0);
    const { runs } = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as {
      runs: ComparedRun[];
    };
    expect(runs.map((r) => r.points.length)).toEqual([1, 4]);
    expect(runs[0].seconds).toBe(0);
    expect(readFileSync(join(out, 'compare.md'), 'utf8')).toMatch(/stopped at ep 0\.50/);

    // --merge reruns one optimizer and keeps the other's run; another setup is refused.
    expect(
      await compare(
        [
          ...common,
          '--optimizers',
          'sgd',
          '--epochs',
          '2',
          '--evals-per-epoch',
          '2',
          '--out',
          out,
          '--merge',
        ],
        () => {},
      ),
    ).toBe(0);
    const merged = (
      JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { runs: ComparedRun[] }
    ).runs;
    expect(merged.map((r) => [r.name, r.points.length])).toEqual([
      ['sgd', 4],
      ['adamw', 4],
    ]);
    expect(merged[1]).toEqual(runs[1]);
    await expect(
      compare(
        [...common, '--optimizers', 'sgd', '--epochs', '1', '--out', out, '--merge'],
        () => {},
      ),
    ).rejects.toThrow(/made with epochs 2/);
    await expect(
      compare(
        [...common, '--optimizers', 'sgd', '--epochs', '2', '--out', out, '--merge'].concat([
          '--schedule',
          'linear',
        ]),
        () => {},
      ),
    ).rejects.toThrow(/made with schedule constant, this run has linear/);
    // --report-only redraws from results.json alone.
    rmSync(join(out, 'loss-time.svg'));
    const report: string[] = [];
    expect(await compare(['--out', out, '--report-only'], (l) => report.push(l))).toBe(0);
    expect(existsSync(join(out, 'loss-time.svg'))).toBe(true);
    expect(report[0]).toMatch(/\d+ × .+\(\d{4}-\d\d-\d\d\)/);
  });

  test('bad options are one-line errors before any training', async () => {
    const out = join(dir, 'never');
    await expect(
      compare([...common, '--optimizers', 'sgd,lamb', '--out', out], () => {}),
    ).rejects.toThrow(/unknown optimizer 'lamb'/);
    await expect(
      compare([...common, '--optimizers', 'sgd', '--set', 'ring.lr=1', '--out', out], () => {}),
    ).rejects.toThrow(/not among --optimizers/);
    await expect(
      compare([...common, '--optimizers', 'sgd', '--set', 'sgd.bogus=1', '--out', out], () => {}),
    ).rejects.toThrow(/unknown hyperparameter 'bogus'/);
    await expect(
      compare([...common, '--optimizers', 'sgd,sgd', '--out', out], () => {}),
    ).rejects.toThrow(/repeats/);
    await expect(compare([...common, '--target', '85', '--out', out], () => {})).rejects.toThrow(
      /--target/,
    );
    await expect(
      compare(
        [...common, '--optimizers', 'sgd', '--set', 'sgd.batchSize=0', '--out', out],
        () => {},
      ),
    ).rejects.toThrow(/batchSize/);
    await expect(
      compare([...common, '--schedule', 'exponential', '--out', out], () => {}),
    ).rejects.toThrow(/--schedule must be constant, linear, cosine/);
    await expect(
      compare(
        [...common, '--optimizers', 'sgd', '--schedule', 'linear', '--warmup', '8', '--out', out],
        () => {},
      ),
    ).rejects.toThrow(/--warmup \(8 steps\) must be shorter than the run \(8 steps\)/);
    expect(existsSync(out)).toBe(false);
    const help: string[] = [];
    expect(await compare(['--help'], (l) => help.push(l))).toBe(0);
    expect(help.join('')).toMatch(/--optimizers A,B/);
  });

  test('--set pairs group by optimizer and parse numbers, booleans and strings', () => {
    const s = parseOptimizerSettings(
      ['ring.lr=0.02', 'ring.warmStart=false', 'ring.damping=grad_norm', 'sgd.momentum=0.9'],
      ['ring', 'sgd', 'adamw'],
    );
    expect(Object.fromEntries(s)).toEqual({
      ring: { lr: 0.02, warmStart: false, damping: 'grad_norm' },
      sgd: { momentum: 0.9 },
      adamw: {},
    });
    expect(() => parseOptimizerSettings(['ring:lr=1'], ['ring'])).toThrow(/OPTIMIZER\.NAME=VALUE/);
  });
});
