// Loss and accuracy plots of one `grng train` run, drawn from its metrics.jsonl so that resumed
// runs plot whole: steps redone after an interruption replace the first attempt's records.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lineChart, type ChartSeries } from '../runtime/report/line-chart.js';

interface StepLine {
  kind: 'step';
  step: number;
  epoch: number;
  position: number;
  loss: number;
  accuracy?: number;
}
interface EpochLine {
  kind: 'epoch';
  epoch: number;
  testLoss: number;
  testAccuracy: number;
  validationLoss?: number;
  validationAccuracy?: number;
}
interface RunLine {
  kind: 'run';
  stepsPerEpoch: number;
  optimizer: string;
}
type Line = StepLine | EpochLine | RunLine;

/** Means of consecutive groups of `size` points (the last group may be shorter). */
export function bucketMeans(
  points: readonly (readonly [number, number])[],
  size: number,
): [number, number][] {
  const means: [number, number][] = [];
  for (let start = 0; start < points.length; start += size) {
    const group = points.slice(start, start + size);
    means.push([
      group[group.length - 1][0],
      group.reduce((acc, [, y]) => acc + y, 0) / group.length,
    ]);
  }
  return means;
}

/** Writes loss.svg and accuracy.svg (against epoch) into `dir`; returns their paths. */
export function writeRunPlots(metricsFile: string, dir: string): string[] {
  const lines = readFileSync(metricsFile, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Line);
  const run = lines.filter((l): l is RunLine => l.kind === 'run').at(-1);
  const perEpoch = run?.stepsPerEpoch ?? 1;
  const steps = [
    ...new Map(
      lines.filter((l): l is StepLine => l.kind === 'step').map((l) => [l.step, l]),
    ).values(),
  ].sort((a, b) => a.step - b.step);
  const epochs = [
    ...new Map(
      lines.filter((l): l is EpochLine => l.kind === 'epoch').map((l) => [l.epoch, l]),
    ).values(),
  ].sort((a, b) => a.epoch - b.epoch);
  const at = (s: StepLine) => s.epoch - 1 + s.position / perEpoch;
  // Ten points per epoch: per-step losses are too noisy to read.
  const bucket = Math.max(1, Math.round(perEpoch / 10));
  const perEpochSeries = (
    name: string,
    pick: (e: EpochLine) => number | undefined,
  ): ChartSeries[] => {
    const points = epochs.flatMap((e) => {
      const v = pick(e);
      return v === undefined ? [] : [[e.epoch, v] as [number, number]];
    });
    return points.length > 0 ? [{ name, points }] : [];
  };
  const title = run === undefined ? '' : `${run.optimizer}: `;
  const loss = lineChart({
    title: `${title}loss`,
    xLabel: 'epoch',
    yLabel: 'cross-entropy',
    yScale: 'log',
    series: [
      {
        name: 'train (batch mean)',
        points: bucketMeans(
          steps.map((s) => [at(s), s.loss]),
          bucket,
        ),
      },
      ...perEpochSeries('test', (e) => e.testLoss),
      ...perEpochSeries('validation', (e) => e.validationLoss),
    ],
  });
  const accuracy = lineChart({
    title: `${title}accuracy`,
    xLabel: 'epoch',
    yLabel: 'accuracy',
    series: [
      ...(steps.some((s) => s.accuracy !== undefined)
        ? [
            {
              name: 'train (batch mean)',
              points: bucketMeans(
                steps.map((s) => [at(s), s.accuracy ?? Number.NaN]),
                bucket,
              ),
            },
          ]
        : []),
      ...perEpochSeries('test', (e) => e.testAccuracy),
      ...perEpochSeries('validation', (e) => e.validationAccuracy),
    ],
  });
  const paths = [join(dir, 'loss.svg'), join(dir, 'accuracy.svg')];
  writeFileSync(paths[0], loss);
  writeFileSync(paths[1], accuracy);
  return paths;
}
