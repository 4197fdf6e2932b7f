// What `grng compare` writes, from the runs' evaluation points alone (no devices, no files): the
// Markdown table and the four SVG plots (loss and accuracy against epoch and against wall time).
import { lineChart, type ChartSeries } from '../runtime/report/line-chart.js';

/** One evaluation of a run: where it stood (steps, epochs, training seconds) and how it scored. */
export interface EvalPoint {
  readonly step: number;
  /** Epochs done, fractional (step / steps per epoch). */
  readonly epoch: number;
  /** Seconds of training so far, compilation included, evaluation excluded. */
  readonly elapsed: number;
  /** Mean training loss of the steps since the previous point. */
  readonly trainLoss: number;
  readonly testLoss: number;
  readonly testAccuracy: number;
  readonly validationAccuracy?: number;
}

export interface ComparedRun {
  readonly name: string;
  /** The settings given beyond the optimizer's defaults. */
  readonly settings: Readonly<Record<string, unknown>>;
  readonly batchSize: number;
  /** Its own time cap in seconds, if it had one. */
  readonly seconds?: number;
  readonly points: readonly EvalPoint[];
  /** Mean global gradient norm over every step. */
  readonly gradNormMean: number;
  /** Milliseconds per step after the first (which carries compilation). */
  readonly msPerStep: number;
  /** Seconds the first step took (tracing and compiling the program, then running it). */
  readonly firstStepSeconds: number;
  /** Set when the run failed; the points are those reached before. */
  readonly error?: string;
  /**
   * With --lr-sweep: every step size tried (lr; R-Kalman's alpha) and its final validation
   * accuracy.
   */
  readonly lrSweep?: readonly {
    readonly key: string;
    readonly value: number;
    readonly validationAccuracy: number;
  }[];
}

export interface CompareSetup {
  readonly device: string;
  /** The CPU the run had (a software adapter's speed is the CPU's). */
  readonly machine?: string;
  readonly dataset: string;
  readonly model: string;
  readonly epochs: number;
  /** The lr schedule over the epochs ('cosine', 'linear' with a warm-up: 'cosine, warm-up 100'). */
  readonly schedule?: string;
  readonly target: number;
  readonly seed: number;
  readonly date: string;
}

/**
 * The first point at or above `target` test accuracy (the resolution is the evaluation interval).
 */
export function timeToTarget(run: ComparedRun, target: number): EvalPoint | undefined {
  return run.points.find((p) => p.testAccuracy >= target);
}

const percent = (x: number | undefined) =>
  x === undefined || !Number.isFinite(x) ? '–' : `${(100 * x).toFixed(2)} %`;
const fixed = (x: number | undefined, digits: number) =>
  x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits);
const settingsText = (s: Readonly<Record<string, unknown>>) =>
  Object.entries(s)
    .map(([k, v]) => `${k} ${String(v)}`)
    .join(', ') || 'defaults';

/** The comparison as Markdown: what was run, one row per optimizer, and how to read it. */
export function compareTable(runs: readonly ComparedRun[], setup: CompareSetup): string {
  const rows = runs.map((run) => {
    const last = run.points.at(-1);
    const best = run.points.reduce<EvalPoint | undefined>(
      (b, p) => (b === undefined || p.testAccuracy > b.testAccuracy ? p : b),
      undefined,
    );
    const hit = timeToTarget(run, setup.target);
    const cells = [
      `**${run.name}**${run.error === undefined ? '' : ` (failed: ${run.error.replace(/\|/g, '\\|')})`}`,
      last !== undefined && last.epoch < setup.epochs - 1e-9
        ? `${percent(last.testAccuracy)} (stopped at ep ${last.epoch.toFixed(2)})`
        : percent(last?.testAccuracy),
      best === undefined ? '–' : `${percent(best.testAccuracy)} (ep ${best.epoch.toFixed(2)})`,
      fixed(last?.trainLoss, 4),
      fixed(last?.testLoss, 4),
      fixed(last?.elapsed, 1),
      fixed(run.msPerStep, 1),
      hit === undefined
        ? 'not reached'
        : `${hit.elapsed.toFixed(1)} s (ep ${hit.epoch.toFixed(2)})`,
      fixed(run.gradNormMean, 3),
    ];
    return `| ${cells.join(' | ')} |`;
  });
  const settings = runs.map(
    (run) =>
      `- **${run.name}**: batch ` +
      `${run.batchSize}${run.seconds === undefined ? '' : `, time cap ${run.seconds} s`}; ${settingsText(run.settings)}` +
      (run.lrSweep === undefined
        ? ''
        : ` (${run.lrSweep[0]?.key} chosen on validation from ${run.lrSweep.map((c) => `${c.value}: ${percent(c.validationAccuracy)}`).join(', ')})`),
  );
  return [
    `# Optimizer comparison: ${setup.dataset}, ${setup.model}`,
    '',
    `${setup.epochs} epochs each, lr schedule ${setup.schedule ?? 'constant'}, ` +
      `seed ${setup.seed}, on ` +
      `${setup.device}${setup.machine === undefined ? '' : `, ${setup.machine}`} (${setup.date}).`,
    '',
    `| optimizer | final test acc | best test acc | final train loss | ` +
      `final test loss | wall time (s) | ms/step | time to ` +
      `${percent(setup.target)} | mean ‖∇L‖ |`,
    '|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    'Wall time is training only (compilation included, evaluations ' +
      'excluded); ms/step leaves out the',
    'first step, which compiles. Time to target is the first evaluation at ' +
      'or above the target (so its',
    'resolution is the evaluation interval). Train loss is the mean over ' +
      'the steps since the previous',
    'evaluation; ‖∇L‖ is the global gradient norm averaged over every step.',
    '',
    "Hyperparameters (the rest at each optimizer's defaults):",
    '',
    ...settings,
    '',
  ].join('\n');
}

/** The four plots by file name: loss and test accuracy, against epoch and against wall time. */
export function compareCharts(runs: readonly ComparedRun[]): Record<string, string> {
  const series = (x: (p: EvalPoint) => number, y: (p: EvalPoint) => number): ChartSeries[] =>
    runs.map((run) => ({ name: run.name, points: run.points.map((p) => [x(p), y(p)] as const) }));
  const byEpoch = (p: EvalPoint) => p.epoch;
  const byTime = (p: EvalPoint) => p.elapsed;
  const loss = (p: EvalPoint) => p.trainLoss;
  const accuracy = (p: EvalPoint) => p.testAccuracy;
  return {
    'loss-epoch.svg': lineChart({
      title: 'Training loss by epoch',
      xLabel: 'epoch',
      yLabel: 'cross-entropy (train)',
      yScale: 'log',
      series: series(byEpoch, loss),
    }),
    'accuracy-epoch.svg': lineChart({
      title: 'Test accuracy by epoch',
      xLabel: 'epoch',
      yLabel: 'test accuracy',
      series: series(byEpoch, accuracy),
    }),
    'loss-time.svg': lineChart({
      title: 'Training loss by wall time',
      xLabel: 'seconds of training',
      yLabel: 'cross-entropy (train)',
      yScale: 'log',
      series: series(byTime, loss),
    }),
    'accuracy-time.svg': lineChart({
      title: 'Test accuracy by wall time',
      xLabel: 'seconds of training',
      yLabel: 'test accuracy',
      series: series(byTime, accuracy),
    }),
  };
}
