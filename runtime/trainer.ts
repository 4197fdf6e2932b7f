// The Trainer: model + loss + optimizer + an image-classification dataset → epochs of compiled
// training steps over seeded shuffles, test evaluation after each epoch, metrics read a few steps
// behind (the GPU never waits for the host), and checkpoints that resume exactly where a run
// stopped — the same next batch, the same step keys (Node: it writes files).
import { fmtShape, GrngError } from '../core/errors.js';
import { checkBatch } from './batch-check.js';
import { checkDataset } from './data/check-dataset.js';
import { crossEntropy } from '../dsl/index.js';
import { accuracy as accuracyOf } from '../dsl/nn/metrics.js';
import type { Model } from '../dsl/nn/layers.js';
import type { HyperDefaults, Optimizer, ParamTree } from '../dsl/optimizer.js';
import type { Tensor } from '../dsl/tensor.js';
import type { Tree } from '../core/tree.js';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import type { ImageDataset, ImageSplit } from './data/image-dataset.js';
import { shuffled } from './data/shuffle.js';
import { subset } from './data/validation.js';
import type { Device, DeviceArray } from './device.js';
import { array, type HostArray } from '../core/host-array.js';
import { isArrayLeaf, jit, type ArrayLeaf } from './jit.js';
import { splitTrainable } from './frozen-params.js';
import { joinTrees } from '../core/tree-paths.js';
import {
  compileTrainStep,
  type Metrics,
  type MetricName,
  type SkipRecord,
  type TrainStep,
} from './train-step.js';

export { shuffled };

const sameList = (a: readonly string[] | undefined, b: readonly string[] | undefined) =>
  JSON.stringify(a ?? []) === JSON.stringify(b ?? []);

export interface TrainerOptions<H extends HyperDefaults, S> {
  readonly model: Model<never>;
  readonly optimizer: Optimizer<H, S>;
  readonly data: ImageDataset;
  readonly device: Device;
  /** Training loss of (logits, labels); default cross-entropy. */
  readonly loss?: (output: Tensor, y: Tensor) => Tensor;
  readonly batchSize?: number;
  /** Seeds the initial parameters (model.init), the shuffles and the step keys. */
  readonly seed?: number;
  /**
   * Per-step metrics (default loss and accuracy; 'gradNorm', 'updateNorm' and optimizer reports
   * too).
   */
  readonly metrics?: readonly (MetricName | (string & {}))[];
  /** Called for every step, in order, once its metrics are read. */
  readonly onStep?: (step: StepRecord) => void;
  /**
   * The parameters to start from (default model.init(seed)): pretrained weights, or nn.lora's
   * init over them. A resumed run takes its frozen parameters from here again.
   */
  readonly params?: Tree<ArrayLeaf>;
  /**
   * Parameter paths to train (compileTrainStep's `trainable`; default the model's own). With some
   * parameters frozen, checkpoints hold the trained ones only (a LoRA run's adapters and head).
   */
  readonly trainable?: readonly string[];
  /**
   * Consecutive skipped steps (a non-finite loss, gradient or update: TrainStep leaves parameters
   * and state unchanged) after which fit stops with an error naming the first of them; default 10,
   * Infinity never stops.
   */
  readonly maxSkips?: number;
  /**
   * Saves the run to `path` every `every` steps (when given) and after every epoch, with `meta`
   * added to the checkpoint's metadata: what fit goes back to when the device is lost.
   */
  readonly checkpoint?: {
    readonly path: string;
    readonly every?: number;
    readonly meta?: Readonly<Record<string, unknown>>;
  };
  /**
   * Opens a new device when the one training is lost (a driver reset, a removed GPU): fit then
   * reloads the last checkpoint it saved (or the run's start) and goes on, replaying the steps
   * since (reported again through onStep), so the result is the uninterrupted run's. Without it a
   * lost device ends fit with an error saying so.
   */
  readonly reopenDevice?: () => Promise<Device>;
}

export interface StepRecord {
  readonly epoch: number;
  /** Steps taken in all, and within this epoch (1-based). */
  readonly step: number;
  readonly position: number;
  readonly metrics: Metrics;
  /**
   * Seconds of training (evaluation excluded) since the run began, resumes included, when this
   * step's metrics were read.
   */
  readonly elapsed: number;
}

export interface EpochRecord {
  readonly epoch: number;
  readonly steps: number;
  /** Means over the epoch's steps that were not skipped. */
  readonly trainLoss: number;
  readonly trainAccuracy?: number;
  readonly testLoss: number;
  readonly testAccuracy: number;
  /** On the held-out split, when the dataset has one (holdOutValidation). */
  readonly validationLoss?: number;
  readonly validationAccuracy?: number;
  /** Means over the epoch's steps of every per-step metric (gradNorm, updateNorm, reports...). */
  readonly means: Readonly<Record<string, number>>;
  /** Steps skipped for a non-finite loss, gradient or update (excluded from the means). */
  readonly skipped: number;
  /** Seconds training this epoch (in this process), and evaluating after it. */
  readonly seconds: number;
  readonly evaluationSeconds: number;
  /** Seconds of training since the run began, resumes included (as StepRecord.elapsed). */
  readonly elapsed: number;
}

/** Where a run stands: epochs are 1-based; `position` steps of the current epoch are done. */
interface Cursor {
  epoch: number;
  position: number;
}

export interface Trainer {
  /**
   * Trains until `epochs` epochs are complete (counting those before a resume), or until
   * `stopAt` steps in all have been taken (mid-epoch: save, and a resumed run continues there).
   */
  fit(epochs: number, stopAt?: number): Promise<EpochRecord[]>;
  /** Mean loss and accuracy of the current parameters on a split (default: the test split). */
  evaluate(split?: ImageSplit): Promise<{ loss: number; accuracy: number }>;
  /**
   * Writes parameters, optimizer state and the position in the data to `path` (safetensors + JSON
   * sidecar).
   */
  save(path: string, extra?: Readonly<Record<string, unknown>>): Promise<void>;
  /**
   * Changes hyperparameters for the following steps (a schedule, a manual decay). The changes are
   * written into checkpoints and applied again on resume, so a resumed run continues with them.
   */
  setHyper(changes: Readonly<Record<string, number | boolean | string>>): void;
  /** The hyperparameters in force. */
  readonly hyper: Readonly<Record<string, unknown>>;
  readonly steps: number;
  /** Seconds of training (evaluation excluded) since the run began, resumes included. */
  readonly elapsed: number;
  readonly epoch: number;
  readonly position: number;
  readonly train: TrainStep<HyperDefaults>;
}

/** A batch of `split` rows `indices` as host arrays. */
export function batchOf(
  split: ImageSplit,
  indices: ArrayLike<number>,
): { x: HostArray; y: HostArray } {
  const rows = subset(split, indices);
  return {
    x: array(rows.x, [indices.length, split.features]),
    y: array(rows.y, [indices.length], 'i32'),
  };
}

/** A new run (`resume` undefined) or the continuation of the checkpoint at `resume`. */
export async function createTrainer<H extends HyperDefaults, S>(
  options: TrainerOptions<H, S>,
  resume?: string,
): Promise<Trainer> {
  const { model, optimizer, data } = options;
  const loss = options.loss ?? crossEntropy;
  const batchSize = options.batchSize ?? 128;
  const seed = options.seed ?? 0;
  const maxSkips = options.maxSkips ?? 10;
  if (!(maxSkips >= 1))
    throw new GrngError('Trainer', `maxSkips must be at least 1 (or Infinity), got ${maxSkips}`);
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > data.train.count) {
    throw new GrngError(
      'Trainer',
      `batchSize must be an integer in [1, ${data.train.count}], got ${batchSize}`,
    );
  }
  checkDataset('Trainer', data);
  const stepsPerEpoch = Math.floor(data.train.count / batchSize);
  const cursor: Cursor = { epoch: 1, position: 0 };
  const initial: Tree<ArrayLeaf> =
    options.params ?? ((model as Model<ParamTree>).init(seed) as Tree<ArrayLeaf>);
  const trainable = options.trainable ?? model.trainable;
  const frozen = splitTrainable('Trainer', initial, isArrayLeaf, trainable).frozen;
  const expected = { optimizer: optimizer.name, seed, trainable, frozen };
  const fresh: Restored = { params: initial, step: 0, epoch: 1, position: 0, elapsed: 0 };
  const restored = resume === undefined ? fresh : restoreRun(resume, expected);
  const { params } = restored;
  let { step, elapsed } = restored;
  [cursor.epoch, cursor.position] = [restored.epoch, restored.position];
  let hyperChanges: Record<string, number | boolean | string> = restored.hyperChanges ?? {};
  const output = fromCheckpoint(resume, () =>
    checkBatch('Trainer', model, loss, params, batchOf(data.train, [0])),
  );
  if (output.length < 2 || output[output.length - 1] < data.classes)
    throw new GrngError(
      'Trainer',
      `the model's output ${fmtShape(output)} for one image has fewer than the dataset's ` +
        `${data.classes} classes`,
    );
  const metrics = options.metrics ?? ['loss', 'accuracy'];
  const every = options.checkpoint?.every;
  if (every !== undefined && !(Number.isInteger(every) && every >= 1))
    throw new GrngError('Trainer', `checkpoint.every must be a positive integer, got ${every}`);
  let hyper: Readonly<Record<string, unknown>> = { ...optimizer.hyper, ...hyperChanges };
  // The compiled step and evaluation on `device`, from a run's start or a checkpoint: made again
  // on a new device when the device is lost.
  const open = async (on: Device, from: Restored) => {
    const step = (await compileTrainStep({
      model,
      loss,
      optimizer,
      params: from.params,
      device: on,
      metrics,
      seed,
      state: from.state,
      step: from.step,
      trainable,
    })) as TrainStep<HyperDefaults>;
    if (Object.keys(hyperChanges).length > 0) step.setHyper(hyperChanges as never);
    const evaluation = jit(
      (p: ParamTree, x: Tensor, y: Tensor) => [
        loss((model as Model<ParamTree>).apply(p, x), y),
        accuracyOf((model as Model<ParamTree>).apply(p, x), y),
      ],
      { device: on },
    );
    return { step, evaluation };
  };
  let device = options.device;
  let { step: train, evaluation: evaluateBatch } = await open(device, { ...restored, params });

  const evaluate = async (split: ImageSplit = data.test) => {
    const current = (await train.params()) as Tree<DeviceArray>;
    let [lossSum, right] = [0, 0];
    for (let start = 0; start < split.count; start += 1000) {
      const indices = Int32Array.from(
        { length: Math.min(1000, split.count - start) },
        (_, i) => start + i,
      );
      const { x, y } = batchOf(split, indices);
      const [l, a] = (await evaluateBatch(current as never, x, y)) as DeviceArray[];
      lossSum += (await l.read())[0] * indices.length;
      right += (await a.read())[0] * indices.length;
    }
    return { loss: lossSum / split.count, accuracy: right / split.count };
  };

  // Skipped steps in a row (their records: what failed, hyperparameters and reports).
  let consecutiveSkips: SkipRecord[] = [];
  const runEpoch = async (stopAt: number): Promise<EpochRecord | undefined> => {
    let mark = performance.now();
    let seconds = 0;
    // Training time accrues as step metrics arrive, so pipelined steps are counted once each.
    const tick = () => {
      const now = performance.now();
      seconds += (now - mark) / 1000;
      elapsed += (now - mark) / 1000;
      mark = now;
    };
    const order = shuffled(data.train.count, seed * 1000003 + cursor.epoch);
    const pending: { record: Omit<StepRecord, 'metrics' | 'elapsed'>; result: Promise<Metrics> }[] =
      [];
    const sums: Record<string, number> = {};
    let [counted, skippedSteps] = [0, 0];
    const settle = async () => {
      const { record, result } = pending.shift() as (typeof pending)[number];
      const m = await result;
      tick();
      if (m.skipped === 0) {
        consecutiveSkips = [];
        for (const [name, value] of Object.entries(m))
          if (value !== undefined && name !== 'skipped') sums[name] = (sums[name] ?? 0) + value;
        counted++;
      } else {
        skippedSteps++;
        consecutiveSkips.push(train.skipRecord(record.step) as SkipRecord);
      }
      options.onStep?.({ ...record, metrics: m, elapsed });
      if (consecutiveSkips.length >= maxSkips) throw tooManySkips(consecutiveSkips);
    };
    try {
      while (cursor.position < stepsPerEpoch && step < stopAt) {
        const indices = order.subarray(
          cursor.position * batchSize,
          (cursor.position + 1) * batchSize,
        );
        cursor.position++;
        step++;
        const result = train.run(batchOf(data.train, indices));
        // Handled when settled, in order; a later step may fail while an earlier one is awaited.
        result.catch(() => {});
        pending.push({ record: { epoch: cursor.epoch, step, position: cursor.position }, result });
        // Metrics are read a few steps behind, so the device always has queued work.
        if (pending.length > 3) await settle();
        if (every !== undefined && step % every === 0) {
          while (pending.length > 0) await settle();
          await autoSave();
        }
      }
      while (pending.length > 0) await settle();
    } catch (error) {
      // The steps queued behind a failed one fail the same way: report the first error only.
      pending.splice(0);
      throw error;
    }
    if (cursor.position < stepsPerEpoch) return undefined; // stopped mid-epoch
    const evaluating = performance.now();
    const test = await evaluate();
    const validation = data.validation === undefined ? undefined : await evaluate(data.validation);
    const means = Object.fromEntries(
      Object.entries(sums).map(([name, total]) => [name, total / Math.max(counted, 1)]),
    );
    const record: EpochRecord = {
      epoch: cursor.epoch,
      steps: counted + skippedSteps,
      skipped: skippedSteps,
      trainLoss: means.loss ?? Number.NaN,
      trainAccuracy: means.accuracy,
      testLoss: test.loss,
      testAccuracy: test.accuracy,
      ...(validation === undefined
        ? {}
        : { validationLoss: validation.loss, validationAccuracy: validation.accuracy }),
      means,
      seconds,
      evaluationSeconds: (performance.now() - evaluating) / 1000,
      elapsed,
    };
    cursor.epoch++;
    cursor.position = 0;
    if (options.checkpoint !== undefined) await autoSave();
    return record;
  };

  const save = async (path: string, extra: Readonly<Record<string, unknown>> = {}) => {
    const meta = {
      ...extra,
      step,
      epoch: cursor.epoch,
      position: cursor.position,
      seed,
      optimizer: optimizer.name,
      hyper,
      hyperChanges,
      batchSize,
      elapsed,
      ...(frozen === undefined ? {} : { trainable }),
    };
    const all = await train.params();
    const saved =
      frozen === undefined ? all : splitTrainable('Trainer', all, isArrayLeaf, trainable).trainable;
    await saveCheckpoint(path, { params: saved, state: await train.state() }, meta);
  };

  // The checkpoint a lost device sends fit back to: the last one saved, else the run's start.
  let lastSaved = resume;
  const autoSave = async () => {
    const { path, meta } = options.checkpoint as NonNullable<typeof options.checkpoint>;
    await save(path, meta);
    lastSaved = path;
  };
  let recoveries = 0;
  /** After `error`: a new device and the last checkpoint when the device was lost, else throws. */
  const recover = async (error: unknown) => {
    const reason = device.lostReason?.();
    if (reason === undefined) throw error;
    const lostAt = `the device was lost at step ${step} (${reason})`;
    if (options.reopenDevice === undefined)
      throw new GrngError(
        'Trainer',
        `${lostAt}; give reopenDevice (and checkpoint, to replay fewer steps) to go on on a new ` +
          `device, or resume from the last checkpoint saved`,
      );
    // A device that keeps failing is not a transient loss.
    if (++recoveries > 3) throw new GrngError('Trainer', `${lostAt}, a fourth time: stopping`);
    device = await options.reopenDevice();
    const from = lastSaved === undefined ? restored : restoreRun(lastSaved, expected);
    ({ step, elapsed } = from);
    [cursor.epoch, cursor.position] = [from.epoch, from.position];
    hyperChanges = from.hyperChanges ?? {};
    hyper = { ...optimizer.hyper, ...hyperChanges };
    consecutiveSkips = [];
    ({ step: train, evaluation: evaluateBatch } = await open(device, from));
  };

  return {
    async fit(epochs, stopAt = Infinity) {
      const records: EpochRecord[] = [];
      while (cursor.epoch <= epochs && step < stopAt) {
        const record = await runEpoch(stopAt).catch(async (error: unknown) => {
          await recover(error);
          return undefined;
        });
        if (record !== undefined) records.push(record);
      }
      return records;
    },
    evaluate,
    save: (path, extra) => save(path, extra),
    setHyper(changes) {
      train.setHyper(changes as never);
      hyperChanges = { ...hyperChanges, ...changes };
      hyper = { ...hyper, ...changes };
    },
    get hyper() {
      return hyper;
    },
    get steps() {
      return step;
    },
    get elapsed() {
      return elapsed;
    },
    get epoch() {
      return cursor.epoch;
    },
    get position() {
      return cursor.position;
    },
    get train() {
      return train;
    },
  };
}

const listed = (values: Readonly<Record<string, number>>): string =>
  Object.entries(values)
    .map(([name, v]) => `${name} ${Number(v.toPrecision(4))}`)
    .join(', ');

/** The error fit stops with after `skips` (consecutive, the first first). */
function tooManySkips(skips: readonly SkipRecord[]): GrngError {
  const [first, last] = [skips[0], skips[skips.length - 1]];
  const reports =
    Object.keys(first.reports).length === 0 ? '' : `; its reports: ${listed(first.reports)}`;
  return new GrngError(
    'Trainer',
    `stopped: ${skips.length} steps in a row (${first.step}–${last.step}) were skipped because a ` +
      `value was not finite. At step ${first.step}, ${first.quantity} was the first not finite ` +
      `(hyperparameters: ${listed(first.hyper) || 'none'}${reports}). Parameters and optimizer ` +
      `state are those from before step ${first.step}. Lower the step size, raise the damping, or ` +
      `look for NaN or infinite values in the data.`,
  );
}

/** `check()`, its GrngError naming the checkpoint `resume` when the parameters came from one. */
function fromCheckpoint<T>(resume: string | undefined, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (resume === undefined || !(error instanceof GrngError)) throw error;
    const message = error.message.replace(/^Trainer: /, '');
    throw new GrngError(
      'Trainer',
      `${resume} holds parameters of another model: ${message}`,
      error.details,
    );
  }
}

/** Where a run (re)starts: parameters, optimizer state and position, from a checkpoint or not. */
interface Restored {
  readonly params: Tree<ArrayLeaf>;
  readonly state?: Tree<ArrayLeaf>;
  readonly step: number;
  readonly epoch: number;
  readonly position: number;
  readonly elapsed: number;
  readonly hyperChanges?: Record<string, number | boolean | string>;
}

/** The run saved at `path`, refused when another optimizer, seed or trainable set wrote it. */
function restoreRun(
  path: string,
  run: {
    readonly optimizer: string;
    readonly seed: number;
    readonly trainable: readonly string[] | undefined;
    /** The frozen parameters (the rest of the tree) when only some train. */
    readonly frozen: Tree<ArrayLeaf> | undefined;
  },
): Restored {
  const saved = loadCheckpoint(path);
  const meta = saved.meta as {
    step?: number;
    epoch?: number;
    position?: number;
    seed?: number;
    optimizer?: string;
    elapsed?: number;
    hyperChanges?: Record<string, number | boolean | string>;
    trainable?: string[];
  };
  if (meta.optimizer !== run.optimizer || meta.seed !== run.seed) {
    throw new GrngError(
      'Trainer',
      `${path} was written by a run of ${meta.optimizer} with seed ` +
        `${meta.seed}; this one is ${run.optimizer} with seed ${run.seed}`,
    );
  }
  const partial = meta.trainable !== undefined;
  const { frozen, trainable } = run;
  if (partial !== (frozen !== undefined) || (partial && !sameList(meta.trainable, trainable)))
    throw new GrngError(
      'Trainer',
      `${path} trained ${partial ? meta.trainable?.join(', ') : 'every parameter'}; this ` +
        `run trains ${frozen === undefined ? 'every parameter' : trainable?.join(', ')}`,
    );
  const trees = saved.trees as { params: Tree<HostArray>; state: Tree<HostArray> };
  return {
    // A checkpoint of a partly frozen model holds what trained; the rest comes from the run.
    params:
      frozen === undefined ? trees.params : joinTrees('Trainer', trees.params, frozen, isArrayLeaf),
    state: trees.state,
    step: meta.step ?? 0,
    epoch: meta.epoch ?? 1,
    position: meta.position ?? 0,
    elapsed: meta.elapsed ?? 0,
    hyperChanges: meta.hyperChanges ?? {},
  };
}
