// `grng compare`: trains the same MLP on the same data with each optimizer under the same budget
// (epochs, and optionally seconds), evaluating on the test split a few times per epoch, then
// writes compare.md (the table), results.json (every evaluation point) and four SVG plots.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus as cpuInfo } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { GrngError } from '../core/errors.js';
import type { Model } from '../dsl/nn/layers.js';
import type { Optimizer } from '../dsl/optimizer.js';
import type { ImageDataset } from '../runtime/data/image-dataset.js';
import type { Device } from '../runtime/device.js';
import { createTrainer } from '../runtime/trainer.js';
import {
  compareCharts,
  compareTable,
  type ComparedRun,
  type CompareSetup,
  type EvalPoint,
} from './compare-report.js';
import {
  buildModel,
  defaultNormalization,
  modelConfig,
  modelRecipe,
  MODEL_OPTIONS,
  MODEL_USAGE,
} from './models.js';
import { createProgress } from './progress.js';
import { TRANSFER_OPTIONS, TRANSFER_USAGE, transferred } from './transfer-options.js';
import type { HostArray } from '../core/host-array.js';
import type { Tree } from '../core/tree.js';
import {
  DATA_OPTIONS,
  DATA_USAGE,
  deviceNamed,
  loadDataset,
  optimizerNamed,
  parseSchedule,
  withSchedule,
  parseHyperValue,
  parseNumber,
  parseSettings,
  type HyperValue,
} from './training-options.js';

export const COMPARE_USAGE = `Usage: grng compare [options]

Trains a model (an MLP by default) with each optimizer under the same budget and writes a Markdown table (final and
best test accuracy, losses, wall time, time to a target accuracy, mean gradient norm), the
evaluation points as JSON and SVG plots of loss and accuracy against epoch and wall time.

Options:
  --optimizers A,B   which to compare (default sgd,adamw,kfac,sophia,ring,reng,rkalman)
  --set OPT.NAME=V   a hyperparameter of one optimizer, e.g. ring.lr=0.02 (repeatable); the keys
                     batchSize and seconds set that optimizer's batch size (R-Kalman's observation
                     count) and its own time cap
  --epochs N         the budget: epochs per optimizer (default 2)
  --schedule NAME    the lr over the epochs: constant, linear or cosine (default constant; a
                     time cap stops it wherever it has got to)
  --warmup N         steps of linear lr warm-up first (default 0)
  --seconds S        also stop an optimizer at the first evaluation after S seconds of training
  --evals-per-epoch K  test evaluations per epoch (default 4)
  --target X         the test accuracy whose time to reach is reported (default 0.85)
  --lr-sweep M,…     choose each optimizer's lr on the validation split (needs --validation):
                     one run per multiple M of its lr (R-Kalman: of its gain scale alpha), each
                     under the whole budget; the table reports the best on validation
${DATA_USAGE}
${MODEL_USAGE}
${TRANSFER_USAGE}
  --batch-size N     default 128
  --seed N           initial parameters, shuffles and step keys, the same for all (default 0)
  --device KIND      webgpu (default) or cpu (the float64 interpreter)
  --out DIR          compare.md, results.json, *.svg (default runs/compare)
  --merge            keep the other optimizers' runs in DIR/results.json (same setup): rerun a few
  --report-only      rewrite compare.md and the plots from DIR/results.json, training nothing
  -h, --help         show this help
`;

export const DEFAULT_OPTIMIZERS = ['sgd', 'adamw', 'kfac', 'sophia', 'ring', 'reng', 'rkalman'];

interface Entry {
  readonly name: string;
  readonly settings: Record<string, HyperValue>;
  readonly optimizer: Optimizer<never, unknown>;
  readonly batchSize: number;
  /** This optimizer's own time cap (the smaller of it and --seconds applies). */
  readonly seconds: number;
}

interface Budget {
  readonly epochs: number;
  readonly seconds: number;
  readonly evalsPerEpoch: number;
  readonly seed: number;
}

/** `--set ring.lr=0.02` pairs grouped by optimizer. */
export function parseOptimizerSettings(
  pairs: readonly string[],
  names: readonly string[],
): Map<string, Record<string, HyperValue>> {
  const settings = new Map(names.map((n) => [n, {} as Record<string, HyperValue>]));
  for (const pair of pairs) {
    const match = /^([a-z]+)\.([A-Za-z0-9]+)=(.*)$/.exec(pair);
    if (match === null)
      throw new GrngError('cli', `--set takes OPTIMIZER.NAME=VALUE, got '${pair}'`);
    const target = settings.get(match[1]);
    if (target === undefined)
      throw new GrngError(
        'cli',
        `--set ${pair}: '${match[1]}' is not among --optimizers (${names.join(', ')})`,
      );
    target[match[2]] = parseHyperValue(match[3]);
  }
  return settings;
}

/** Trains one entry under the budget; a failure is recorded in the run, not thrown. */
async function runOne(
  entry: Entry,
  data: ImageDataset,
  device: Device,
  model: Model<never>,
  budget: Budget,
  print: (line: string) => void,
  isTty: boolean,
  params?: Tree<HostArray>,
): Promise<ComparedRun> {
  const perEpoch = Math.floor(data.train.count / entry.batchSize);
  const progress = createProgress({
    epochs: budget.epochs,
    stepsPerEpoch: perEpoch,
    isTty,
    print,
    prefix: entry.name,
  });
  const points: EvalPoint[] = [];
  let [lossSum, lossCount, gradNormSum, steps, firstStepSeconds, firstElapsed, lastElapsed] = [
    0,
    0,
    0,
    0,
    Number.NaN,
    0,
    0,
  ];
  const { settings, batchSize } = entry;
  const base = {
    name: entry.name,
    settings,
    batchSize,
    ...(Number.isFinite(entry.seconds) ? { seconds: entry.seconds } : {}),
  };
  try {
    const trainer = await createTrainer({
      model,
      optimizer: entry.optimizer,
      data,
      device,
      batchSize,
      seed: budget.seed,
      params,
      metrics: ['loss', 'accuracy', 'gradNorm'],
      onStep: (record) => {
        progress.step(record);
        lossSum += record.metrics.loss;
        lossCount++;
        gradNormSum += record.metrics.gradNorm ?? Number.NaN;
        steps++;
        if (record.step === 1) [firstStepSeconds, firstElapsed] = [record.elapsed, record.elapsed];
        lastElapsed = record.elapsed;
      },
    });
    run: for (let epoch = 1; epoch <= budget.epochs; epoch++) {
      for (let k = 1; k <= budget.evalsPerEpoch; k++) {
        const stopAt = (epoch - 1) * perEpoch + Math.round((k * perEpoch) / budget.evalsPerEpoch);
        if (stopAt <= trainer.steps) continue;
        const [record] = await trainer.fit(epoch, stopAt);
        progress.end();
        // At an epoch's end the Trainer has evaluated already; mid-epoch, evaluate here.
        const test =
          record === undefined
            ? await trainer.evaluate()
            : { loss: record.testLoss, accuracy: record.testAccuracy };
        const validation =
          data.validation === undefined
            ? undefined
            : (record?.validationAccuracy ?? (await trainer.evaluate(data.validation)).accuracy);
        const point = {
          step: trainer.steps,
          epoch: trainer.steps / perEpoch,
          elapsed: trainer.elapsed,
          trainLoss: lossSum / lossCount,
          testLoss: test.loss,
          testAccuracy: test.accuracy,
          ...(validation === undefined ? {} : { validationAccuracy: validation }),
        };
        points.push(point);
        [lossSum, lossCount] = [0, 0];
        if (!isTty)
          print(
            `${entry.name}  epoch ${point.epoch.toFixed(2)}: train loss ` +
              `${point.trainLoss.toFixed(4)}, test accuracy ` +
              `${(100 * point.testAccuracy).toFixed(2)} %, ` +
              `${point.elapsed.toFixed(1)} s`,
          );
        if (trainer.elapsed >= Math.min(budget.seconds, entry.seconds)) break run;
      }
    }
  } catch (error) {
    progress.end();
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    print(`${entry.name}: failed: ${message}`);
    return {
      ...base,
      points,
      gradNormMean: gradNormSum / Math.max(steps, 1),
      msPerStep: Number.NaN,
      firstStepSeconds,
      error: message,
    };
  }
  return {
    ...base,
    points,
    gradNormMean: gradNormSum / Math.max(steps, 1),
    msPerStep: steps > 1 ? (1000 * (lastElapsed - firstElapsed)) / (steps - 1) : Number.NaN,
    firstStepSeconds,
  };
}

/** compare.md and the four plots from the runs. */
function writeReport(dir: string, setup: CompareSetup, runs: readonly ComparedRun[]): void {
  writeFileSync(join(dir, 'compare.md'), compareTable(runs, setup));
  for (const [file, svg] of Object.entries(compareCharts(runs)))
    writeFileSync(join(dir, file), svg);
}

/** The runs of an earlier comparison with the same setup (date aside), for --merge. */
function previousRuns(file: string, setup: CompareSetup): ComparedRun[] {
  if (!existsSync(file)) throw new GrngError('cli', `--merge: no earlier results at ${file}`);
  const earlier = JSON.parse(readFileSync(file, 'utf8')) as {
    setup: CompareSetup;
    runs: ComparedRun[];
  };
  for (const key of [
    'device',
    'dataset',
    'model',
    'epochs',
    'schedule',
    'target',
    'seed',
  ] as const) {
    // Results from before schedules existed ran at a constant lr.
    const before = key === 'schedule' ? (earlier.setup.schedule ?? 'constant') : earlier.setup[key];
    if (before !== setup[key])
      throw new GrngError(
        'cli',
        `--merge: ${file} was made with ${key} ${String(earlier.setup[key])}, ` +
          `this run has ${String(setup[key])}`,
      );
  }
  return earlier.runs;
}

/** Runs `grng compare` with `argv` (after the command name); returns the exit code. */
export async function compare(
  argv: readonly string[],
  print: (line: string) => void,
  isTty = false,
): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      ...DATA_OPTIONS,
      optimizers: { type: 'string', default: DEFAULT_OPTIMIZERS.join(',') },
      set: { type: 'string', multiple: true, default: [] },
      epochs: { type: 'string', default: '2' },
      schedule: { type: 'string', default: 'constant' },
      warmup: { type: 'string', default: '0' },
      seconds: { type: 'string' },
      'evals-per-epoch': { type: 'string', default: '4' },
      target: { type: 'string', default: '0.85' },
      ...MODEL_OPTIONS,
      ...TRANSFER_OPTIONS,
      'lr-sweep': { type: 'string' },
      'batch-size': { type: 'string', default: '128' },
      seed: { type: 'string', default: '0' },
      device: { type: 'string', default: 'webgpu' },
      out: { type: 'string', default: 'runs/compare' },
      merge: { type: 'boolean', default: false },
      'report-only': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    print(COMPARE_USAGE);
    return 0;
  }
  if (values['report-only']) {
    const file = join(values.out, 'results.json');
    if (!existsSync(file)) throw new GrngError('cli', `--report-only: no results at ${file}`);
    const { setup, runs } = JSON.parse(readFileSync(file, 'utf8')) as {
      setup: CompareSetup;
      runs: ComparedRun[];
    };
    writeReport(values.out, setup, runs);
    print(compareTable(runs, setup));
    return 0;
  }
  const names = values.optimizers
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (names.length === 0) throw new GrngError('cli', '--optimizers names none');
  if (new Set(names).size !== names.length)
    throw new GrngError('cli', `--optimizers repeats a name: ${names.join(', ')}`);
  const budget: Budget = {
    epochs: parseNumber('epochs', values.epochs, { integer: true, min: 1 }),
    seconds:
      values.seconds === undefined ? Infinity : parseNumber('seconds', values.seconds, { min: 0 }),
    evalsPerEpoch: parseNumber('evals-per-epoch', values['evals-per-epoch'], {
      integer: true,
      min: 1,
    }),
    seed: parseNumber('seed', values.seed, { integer: true, min: 0 }),
  };
  const schedule = parseSchedule(values.schedule);
  const warmupSteps = parseNumber('warmup', values.warmup, { integer: true, min: 0 });
  const target = parseNumber('target', values.target, { min: 0 });
  if (target > 1) throw new GrngError('cli', `--target is an accuracy in [0, 1], got ${target}`);
  const batchSize = parseNumber('batch-size', values['batch-size'], { integer: true, min: 1 });
  const modelPairs = values.set.filter((pair) => pair.startsWith('model.'));
  const modelSettings = modelConfig(values, parseSettings(modelPairs));
  const optimizerPairs = values.set.filter((pair) => !pair.startsWith('model.'));
  // Every optimizer is built (and its settings checked) before any training starts.
  const entries: Entry[] = [...parseOptimizerSettings(optimizerPairs, names)].map(
    ([name, given]) => {
      const { batchSize: own, seconds, ...settings } = given;
      if (own !== undefined && (typeof own !== 'number' || !Number.isInteger(own) || own < 1))
        throw new GrngError(
          'cli',
          `--set ${name}.batchSize must be a positive integer, got ${String(own)}`,
        );
      if (seconds !== undefined && (typeof seconds !== 'number' || seconds < 0))
        throw new GrngError(
          'cli',
          `--set ${name}.seconds must be a number of seconds, got ${String(seconds)}`,
        );
      return {
        name,
        settings,
        optimizer: optimizerNamed(name, { ...modelRecipe(modelSettings, name), ...settings }),
        batchSize: own ?? batchSize,
        seconds: seconds ?? Infinity,
      };
    },
  );

  const normalize = values.normalize ?? defaultNormalization(modelSettings);
  const data = loadDataset({ ...values, normalize }, budget.seed);
  const scheduledEntries = entries.map((entry) => ({
    ...entry,
    optimizer: withSchedule(entry.optimizer, {
      schedule,
      warmupSteps,
      decaySteps: budget.epochs * Math.floor(data.train.count / entry.batchSize),
    }),
  }));
  const sweep = values['lr-sweep'] === undefined ? undefined : parseSweep(values['lr-sweep']);
  if (sweep !== undefined && data.validation === undefined)
    throw new GrngError('cli', '--lr-sweep chooses on the validation split: give --validation N');
  const device = await deviceNamed(values.device);
  const { model, description, params } = transferred(
    buildModel(modelSettings, data),
    values,
    budget.seed,
  );
  // The scaling and the classes are part of the dataset's name, so --merge refuses to mix them.
  const dataset =
    (values.dataset === 'fashion-mnist' ? 'Fashion-MNIST' : (values.data as string)) +
    (values.classes === undefined ? '' : ` classes ${values.classes}`) +
    (normalize === 'standard' ? ' (standardized)' : '');
  print(
    `grng compare: ${names.join(', ')} on ${dataset} (${data.train.count} ` +
      `train / ${data.test.count} test), ${description}, ` +
      `${budget.epochs} epochs each, on ${device.description}`,
  );
  mkdirSync(values.out, { recursive: true });
  const cpus = cpuInfo();
  const setup = {
    device: device.description,
    machine: `${cpus.length} × ${cpus[0]?.model ?? 'unknown CPU'}`,
    dataset,
    model: description,
    epochs: budget.epochs,
    schedule: warmupSteps === 0 ? schedule : `${schedule}, warm-up ${warmupSteps}`,
    target,
    seed: budget.seed,
    date: new Date().toISOString().slice(0, 10),
  };
  const runs: ComparedRun[] = values.merge
    ? previousRuns(join(values.out, 'results.json'), setup)
    : [];
  const train = (entry: Entry) => runOne(entry, data, device, model, budget, print, isTty, params);
  for (const entry of scheduledEntries) {
    const run =
      sweep === undefined
        ? await train(entry)
        : await sweepLr(
            entry,
            sweep,
            (key, value) => {
              const settings = { ...entry.settings, [key]: value };
              const optimizer = optimizerNamed(entry.name, {
                ...modelRecipe(modelSettings, entry.name),
                ...settings,
              });
              return train({
                ...entry,
                settings,
                optimizer: withSchedule(optimizer, {
                  schedule,
                  warmupSteps,
                  decaySteps: budget.epochs * Math.floor(data.train.count / entry.batchSize),
                }),
              });
            },
            print,
          );
    const at = runs.findIndex((r) => r.name === run.name);
    if (at >= 0) runs[at] = run;
    else runs.push(run);
    // Written after every optimizer, so a long comparison stopped early keeps what it finished.
    writeFileSync(
      join(values.out, 'results.json'),
      `${JSON.stringify({ setup, runs }, null, 1)}\n`,
    );
    writeReport(values.out, setup, runs);
  }
  print(compareTable(runs, setup));
  print(
    `written: ${['compare.md', 'results.json', ...Object.keys(compareCharts(runs))].map((f) => join(values.out, f)).join(', ')}`,
  );
  return runs.some((r) => r.error !== undefined) ? 1 : 0;
}

/**
 * What --lr-sweep scales, where it is not `lr`: R-Kalman's Kalman gain sets the step of the
 * parameters it manages (its lr moves only the others), so its step size is the gain's scale α.
 */
const STEP_SIZE: Readonly<Record<string, string>> = { rkalman: 'alpha' };

/** --lr-sweep's multiples of each optimizer's lr. */
function parseSweep(text: string): number[] {
  const multiples = text.split(',').map((m) => parseNumber('lr-sweep', m.trim(), { min: 0 }));
  if (multiples.some((m) => m <= 0))
    throw new GrngError('cli', `--lr-sweep takes positive multiples, got '${text}'`);
  return multiples;
}

/**
 * One run per multiple of the entry's lr, under the same budget; the run with the best final
 * validation accuracy, carrying what every candidate reached.
 */
async function sweepLr(
  entry: Entry,
  multiples: readonly number[],
  train: (key: string, value: number) => Promise<ComparedRun>,
  print: (line: string) => void,
): Promise<ComparedRun> {
  const key = STEP_SIZE[entry.name] ?? 'lr';
  const lr = (entry.optimizer.hyper as Readonly<Record<string, unknown>>)[key];
  if (typeof lr !== 'number') throw new GrngError('cli', `--lr-sweep: ${entry.name} has no ${key}`);
  const runs: ComparedRun[] = [];
  for (const m of multiples) runs.push(await train(key, Number((lr * m).toPrecision(6))));
  const score = (r: ComparedRun) => r.points.at(-1)?.validationAccuracy ?? -1;
  const best = runs.reduce((b, r) => (score(r) > score(b) ? r : b));
  const lrSweep = runs.map((r) => ({
    key,
    value: r.settings[key] as number,
    validationAccuracy: score(r),
  }));
  print(
    `${entry.name}: ${key} ${String(best.settings[key])} chosen on validation from ` +
      lrSweep.map((c) => `${c.value} (${(100 * c.validationAccuracy).toFixed(2)} %)`).join(', '),
  );
  return { ...best, lrSweep };
}
