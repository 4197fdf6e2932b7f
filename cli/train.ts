// `grng train`: trains a model (MLP, ViT or CNN; cli/models.ts) on an IDX image dataset
// (Fashion-MNIST by default) with a built-in optimizer through the Trainer: a progress bar on a TTY
// (plain lines otherwise), metrics as JSON Lines, a checkpoint after every epoch and loss/accuracy
// plots in --out, --resume from it.
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { GrngError } from '../core/errors.js';
import {
  buildModel,
  defaultNormalization,
  modelConfig,
  modelRecipe,
  MODEL_OPTIONS,
  MODEL_USAGE,
} from './models.js';
import { createTrainer } from '../runtime/trainer.js';
import { TRANSFER_OPTIONS, TRANSFER_USAGE, transferred } from './transfer-options.js';
import { createProgress } from './progress.js';
import { writeRunPlots } from './run-plots.js';
import {
  DATA_OPTIONS,
  DATA_USAGE,
  deviceNamed,
  loadDataset,
  optimizerNamed,
  parseSchedule,
  parseNumber,
  parseSettings,
  withSchedule,
  type HyperValue,
} from './training-options.js';

export const TRAIN_USAGE = `Usage: grng train [options]

Trains a model on an image-classification dataset in the four-file IDX layout; the model's input
and output sizes follow the data.

Options:
${DATA_USAGE}
${MODEL_USAGE}
${TRANSFER_USAGE}
  --optimizer NAME   ring (default), reng, rkalman, kfac, sophia, adamw, adam, sgd
  --lr X             learning rate (each optimizer's default otherwise)
  --rho X            gradient-regularization strength (ring, reng, rkalman)
  --inverse-every N  Lazy Fisher period (ring, reng, kfac)
  --set NAME=VALUE   any other hyperparameter of the optimizer (repeatable)
  --schedule NAME    the lr over the run: constant (default), or linear or cosine decay from lr to
                     0 at the last step of --epochs (a resumed run with more epochs stretches it)
  --warmup N         steps of linear lr warm-up first (default 0)
  --epochs N         epochs to train (default 2)
  --batch-size N     default 128
  --seed N           initial parameters, shuffles, validation split and step keys (default 0)
  --checkpoint-every N  also save the checkpoint every N steps (it is saved after every epoch); a
                     lost GPU device is reopened and the run goes on from the last checkpoint
  --max-skips N      stop after N steps in a row skipped for a non-finite loss, gradient or update
                     (such a step leaves parameters and state unchanged; default 10)
  --device KIND      webgpu (default) or cpu (the float64 interpreter)
  --out DIR          metrics.jsonl, checkpoint.safetensors, loss.svg, accuracy.svg (default runs/train)
  --resume           continue from DIR/checkpoint.safetensors (its hyperparameter changes included)
  -h, --help         show this help
`;

/** Runs `grng train` with `argv` (after the command name); returns the exit code. */
export async function train(
  argv: readonly string[],
  print: (line: string) => void,
  isTty = false,
): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      ...DATA_OPTIONS,
      ...MODEL_OPTIONS,
      ...TRANSFER_OPTIONS,
      optimizer: { type: 'string', default: 'ring' },
      lr: { type: 'string' },
      rho: { type: 'string' },
      'inverse-every': { type: 'string' },
      set: { type: 'string', multiple: true, default: [] },
      schedule: { type: 'string', default: 'constant' },
      warmup: { type: 'string', default: '0' },
      epochs: { type: 'string', default: '2' },
      'batch-size': { type: 'string', default: '128' },
      seed: { type: 'string', default: '0' },
      'max-skips': { type: 'string', default: '10' },
      'checkpoint-every': { type: 'string' },
      device: { type: 'string', default: 'webgpu' },
      out: { type: 'string', default: 'runs/train' },
      resume: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    print(TRAIN_USAGE);
    return 0;
  }
  const settings: Record<string, HyperValue> = parseSettings(values.set);
  const modelSettings = modelConfig(values, settings);
  if (values.lr !== undefined) settings.lr = parseNumber('lr', values.lr);
  if (values.rho !== undefined) settings.rho = parseNumber('rho', values.rho);
  if (values['inverse-every'] !== undefined)
    settings.inverseEvery = parseNumber('inverse-every', values['inverse-every'], {
      integer: true,
      min: 1,
    });
  const base = optimizerNamed(values.optimizer, {
    ...modelRecipe(modelSettings, values.optimizer),
    ...settings,
  });
  const schedule = parseSchedule(values.schedule);
  const epochs = parseNumber('epochs', values.epochs, { integer: true, min: 1 });
  const batchSize = parseNumber('batch-size', values['batch-size'], { integer: true, min: 1 });
  const seed = parseNumber('seed', values.seed, { integer: true, min: 0 });
  const maxSkips = parseNumber('max-skips', values['max-skips'], { integer: true, min: 1 });
  const checkpointEvery =
    values['checkpoint-every'] === undefined
      ? undefined
      : parseNumber('checkpoint-every', values['checkpoint-every'], { integer: true, min: 1 });
  const warmupSteps = parseNumber('warmup', values.warmup, { integer: true, min: 0 });
  const out = values.out;
  const checkpoint = join(out, 'checkpoint.safetensors');
  if (values.resume && !existsSync(checkpoint))
    throw new GrngError('cli', `--resume: no checkpoint at ${checkpoint}`);

  const normalize = values.normalize ?? defaultNormalization(modelSettings);
  const data = loadDataset({ ...values, normalize }, seed);
  const device = await deviceNamed(values.device);
  const built = buildModel(modelSettings, data);
  const { model, description, params, transfer } = transferred(built, values, seed);
  const stepsPerEpoch = Math.floor(data.train.count / batchSize);
  const optimizer = withSchedule(base, {
    schedule,
    warmupSteps,
    decaySteps: epochs * stepsPerEpoch,
  });
  mkdirSync(out, { recursive: true });
  const metricsFile = join(out, 'metrics.jsonl');
  if (!values.resume) writeFileSync(metricsFile, '');
  const log = (record: object) => appendFileSync(metricsFile, `${JSON.stringify(record)}\n`);
  const validation = data.validation === undefined ? '' : ` / ${data.validation.count} validation`;
  print(
    `grng train: ${data.train.count} train${validation} / ` +
      `${data.test.count} test images${normalize === 'standard' ? ' (standardized)' : ''}, ` +
      `${data.classes} classes, ${description}, ` +
      `${optimizer.name} on ${device.description}`,
  );

  const progress = createProgress({ epochs, stepsPerEpoch, isTty, print });
  const trainer = await createTrainer(
    {
      model,
      optimizer,
      data,
      device,
      batchSize,
      seed,
      params,
      maxSkips,
      checkpoint: {
        path: checkpoint,
        every: checkpointEvery,
        meta: { ...modelSettings, ...transfer },
      },
      reopenDevice: () => deviceNamed(values.device),
      onStep: (record) => {
        log({
          kind: 'step',
          epoch: record.epoch,
          step: record.step,
          position: record.position,
          elapsed: record.elapsed,
          ...record.metrics,
        });
        progress.step(record);
      },
    },
    values.resume ? checkpoint : undefined,
  );
  log({
    kind: 'run',
    optimizer: optimizer.name,
    hyper: trainer.hyper,
    model: description,
    modelSettings,
    normalize,
    batchSize,
    stepsPerEpoch,
    seed,
    device: device.description,
    resumedAt: values.resume ? trainer.steps : undefined,
  });
  while (trainer.epoch <= epochs) {
    const [record] = await trainer.fit(trainer.epoch);
    progress.end();
    log({ kind: 'epoch', ...record });
    const validated =
      record.validationAccuracy === undefined
        ? ''
        : `, validation accuracy ${(100 * record.validationAccuracy).toFixed(2)} %`;
    const skipped = record.skipped === 0 ? '' : `, ${record.skipped} step(s) skipped (not finite)`;
    print(
      `epoch ${record.epoch}: train loss ${record.trainLoss.toFixed(4)}, ` +
        `test accuracy ${(100 * record.testAccuracy).toFixed(2)} ` +
        `%${validated}${skipped}, ${record.seconds.toFixed(1)} s ` +
        `(${((1000 * record.seconds) / record.steps).toFixed(1)} ms/step); ` +
        `checkpoint ${checkpoint}`,
    );
  }
  const plots = writeRunPlots(metricsFile, out);
  print(
    `metrics: ${metricsFile}; plots: ${plots.join(', ')}; checkpoint: ` +
      `${checkpoint} (--resume continues it)`,
  );
  return 0;
}
