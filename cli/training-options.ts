// What `grng train` and `grng compare` share: number parsing with one-line errors, the dataset
// options (--dataset, --data, --validation, --normalize), the device option and the optimizers
// by name.
import { GrngError } from '../core/errors.js';
import type { Optimizer } from '../dsl/optimizer.js';
import { adam, adamw, kfac, reng, ring, rkalman, sgd, sophia } from '../optimizers/index.js';
import { scheduled, SCHEDULES, type ScheduleName } from '../optimizers/schedule.js';
import { createDevice } from '../runtime/create-device.js';
import type { Device } from '../runtime/device.js';
import {
  FASHION_MNIST_DIR,
  loadIdxImages,
  type ImageDataset,
} from '../runtime/data/image-dataset.js';
import { standardize } from '../runtime/data/normalize.js';
import { holdOutValidation, limitTraining } from '../runtime/data/validation.js';
import { selectClasses } from '../runtime/data/select-classes.js';

export type HyperValue = number | boolean | string;
type Factory = (settings: Readonly<Record<string, HyperValue>>) => Optimizer<never, unknown>;

/** Every built-in optimizer by its CLI name. */
export const OPTIMIZERS: Readonly<Record<string, Factory>> = {
  ring: (s) => ring(s) as never,
  reng: (s) => reng(s) as never,
  rkalman: (s) => rkalman(s) as never,
  kfac: (s) => kfac(s) as never,
  sophia: (s) => sophia(s) as never,
  adamw: (s) => adamw(s) as never,
  adam: (s) => adam(s) as never,
  sgd: (s) => sgd(s) as never,
};

/** The optimizer `name` with `settings` (its defaults otherwise); unknown names are GrngErrors. */
export function optimizerNamed(
  name: string,
  settings: Readonly<Record<string, HyperValue>> = {},
): Optimizer<never, unknown> {
  const make = OPTIMIZERS[name];
  if (make === undefined)
    throw new GrngError(
      'cli',
      `unknown optimizer '${name}'; choose ${Object.keys(OPTIMIZERS).join(', ')}`,
    );
  return make(settings);
}

/** --schedule's value, or a GrngError listing the schedules. */
export function parseSchedule(text: string): ScheduleName {
  const known = SCHEDULES as readonly string[];
  if (!known.includes(text))
    throw new GrngError('cli', `--schedule must be ${SCHEDULES.join(', ')}, got '${text}'`);
  return text as ScheduleName;
}

/**
 * `optimizer` with the lr schedule --schedule and --warmup name over `decaySteps` steps (the run);
 * unchanged for a constant lr without warm-up, so that its name and checkpoints stay the plain
 * optimizer's.
 */
export function withSchedule(
  optimizer: Optimizer<never, unknown>,
  settings: {
    readonly schedule: ScheduleName;
    readonly warmupSteps: number;
    readonly decaySteps: number;
  },
): Optimizer<never, unknown> {
  if (settings.schedule === 'constant' && settings.warmupSteps === 0) return optimizer;
  if (settings.schedule !== 'constant' && settings.warmupSteps >= settings.decaySteps)
    throw new GrngError(
      'cli',
      `--warmup (${settings.warmupSteps} steps) must be shorter than the run ` +
        `(${settings.decaySteps} steps)`,
    );
  return scheduled(optimizer, settings) as never;
}

/**
 * `text` as a number (an integer when asked, at least `min` when given), or a GrngError naming the
 * option.
 */
export function parseNumber(
  option: string,
  text: string,
  { integer = false, min }: { integer?: boolean; min?: number } = {},
): number {
  const n = Number(text);
  const kind = integer ? 'an integer' : 'a number';
  if (text.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n)))
    throw new GrngError('cli', `--${option} must be ${kind}, got '${text}'`);
  if (min !== undefined && n < min)
    throw new GrngError('cli', `--${option} must be at least ${min}, got ${n}`);
  return n;
}

/** A hyperparameter value as typed on the command line: a number, true/false, or a string. */
export function parseHyperValue(text: string): HyperValue {
  if (text === 'true' || text === 'false') return text === 'true';
  const n = Number(text);
  return text.trim() !== '' && Number.isFinite(n) ? n : text;
}

/** `--set lr=0.01 --set damping=grad_norm` → { lr: 0.01, damping: 'grad_norm' }. */
export function parseSettings(pairs: readonly string[]): Record<string, HyperValue> {
  return Object.fromEntries(
    pairs.map((pair) => {
      const at = pair.indexOf('=');
      if (at <= 0) throw new GrngError('cli', `--set takes NAME=VALUE, got '${pair}'`);
      return [pair.slice(0, at), parseHyperValue(pair.slice(at + 1))];
    }),
  );
}

export const DATA_USAGE = `  --dataset NAME     fashion-mnist (default: ${FASHION_MNIST_DIR}) or idx (needs --data)
  --data DIR         the directory holding the four IDX files (train/t10k images/labels, raw or .gz)
  --classes LIST     train and test on these classes only, relabelled 0..k−1 in order (0-4,
                     5-9, 0,2,4; default all): pretrain on some, fine-tune on the others
  --validation N     hold N training images out as a validation split (default 0: none)
  --limit N          train on N of the (remaining) training images, a seeded choice (default all)
  --normalize MODE   unit (pixels in [0, 1]) or standard (training mean 0, deviation 1); the
                     default is unit, and standard for --model cnn`;

export const DATA_OPTIONS = {
  dataset: { type: 'string', default: 'fashion-mnist' },
  data: { type: 'string' },
  validation: { type: 'string', default: '0' },
  classes: { type: 'string' },
  limit: { type: 'string' },
  normalize: { type: 'string' },
} as const;

/**
 * Loads the dataset the options describe, with its validation split and normalization (callers
 * resolve --normalize's per-model default, `defaultNormalization`).
 */
export function loadDataset(
  values: {
    dataset: string;
    data?: string;
    validation: string;
    normalize: string;
    classes?: string;
    limit?: string;
  },
  seed: number,
): ImageDataset {
  const { normalize } = values;
  if (values.dataset !== 'fashion-mnist' && values.dataset !== 'idx')
    throw new GrngError('cli', `--dataset must be fashion-mnist or idx, got '${values.dataset}'`);
  if (values.dataset === 'idx' && values.data === undefined)
    throw new GrngError('cli', '--dataset idx needs --data DIR');
  if (normalize !== 'unit' && normalize !== 'standard')
    throw new GrngError('cli', `--normalize must be unit or standard, got '${normalize}'`);
  const validation = parseNumber('validation', values.validation, { integer: true, min: 0 });
  let data = loadIdxImages(values.data ?? FASHION_MNIST_DIR);
  if (values.classes !== undefined) data = selectClasses(data, parseClasses(values.classes));
  if (validation > 0) data = holdOutValidation(data, validation, seed);
  if (values.limit !== undefined)
    data = limitTraining(data, parseNumber('limit', values.limit, { integer: true, min: 1 }), seed);
  return normalize === 'standard' ? standardize(data) : data;
}

/** The device --device names: webgpu (default) or cpu (the float64 interpreter). */
export async function deviceNamed(name: string): Promise<Device> {
  if (name !== 'webgpu' && name !== 'cpu')
    throw new GrngError('cli', `--device must be webgpu or cpu, got '${name}'`);
  return createDevice(name === 'cpu' ? { kind: 'cpu' } : {});
}

/** `--classes` as a list: "0-4", "5,6,7" or "0-2,8". */
export function parseClasses(text: string): number[] {
  const out: number[] = [];
  for (const part of text.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (m === null)
      throw new GrngError('cli', `--classes takes class numbers and ranges (0-4,7), got '${text}'`);
    const [from, to] = [Number(m[1]), Number(m[2] ?? m[1])];
    if (to < from) throw new GrngError('cli', `--classes: the range ${part.trim()} runs backwards`);
    for (let c = from; c <= to; c++) out.push(c);
  }
  return out;
}
