// Bad data is refused up front with a GrngError that says what was expected and what was given:
// batches that do not fit the model (short first line, the argument list kept for --verbose),
// labels past the model's classes, parameters of another model (named by path), and datasets
// with non-finite pixels, out-of-range labels or inconsistent sizes (checked once per dataset).
import { describe, expect, test } from 'vitest';
import {
  adamw,
  array,
  compileTrainStep,
  createDevice,
  crossEntropy,
  GrngError,
  jit,
  matmul,
  nn,
  type Tensor,
} from '../../index.js';
import type { ImageDataset, ImageSplit } from '../../runtime/data/image-dataset.js';
import { createTrainer } from '../../runtime/trainer.js';

const cpu = await createDevice({ kind: 'cpu' });
const model = nn.mlp([6, 5, 3]);

const rows = (n: number, features = 6) =>
  array(
    Float64Array.from({ length: n * features }, (_, i) => Math.sin(i)),
    [n, features],
  );
const labels = (values: readonly number[]) =>
  array(Int32Array.from(values), [values.length], 'i32');

async function step() {
  return compileTrainStep({
    model,
    loss: crossEntropy,
    optimizer: adamw(),
    params: model.init(0),
    device: cpu,
  });
}

/** The error `promise` rejects with (it must reject). */
async function failure(promise: Promise<unknown>): Promise<GrngError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GrngError);
  return error as GrngError;
}

describe('compileTrainStep refuses batches that do not fit', () => {
  test('inputs of the wrong width: one short line naming the batch and the layer', async () => {
    const train = await step();
    const error = await failure(train.run({ x: rows(4, 10), y: labels([0, 1, 2, 0]) }));
    expect(error.message).toBe(
      'run: the batch (x f32[4, 10], y i32[4]) does not fit the model and loss: nn.dense: ' +
        'layer0 expects inputs [batch, 6] or [batch, …, 6], got [4, 10]',
    );
    // Nothing was queued: the next good batch is step 1.
    await train.run({ x: rows(4), y: labels([0, 1, 2, 0]) });
    expect(train.steps).toBe(1);
  });

  test('a label past the last class names the label, its position and the classes', async () => {
    const train = await step();
    const error = await failure(train.run({ x: rows(4), y: labels([0, 1, 7, 2]) }));
    expect(error.message).toMatch(/label 7 \(position 2 of the batch's y\).* 3 outputs.*0\.\.2/);
    await failure(train.run({ x: rows(2), y: labels([-1, 0]) }));
    expect(train.steps).toBe(0);
  });

  test('labels of the wrong shape or dtype', async () => {
    const train = await step();
    expect((await failure(train.run({ x: rows(4), y: labels([0, 1, 2]) }))).message).toMatch(
      /y i32\[3\].*integer labels \[3\] must have shape \[4\]/,
    );
    const floats = array(Float64Array.of(0, 1, 2, 0), [4]);
    expect((await failure(train.run({ x: rows(4), y: floats }))).message).toMatch(
      /y f32\[4\].*must have the logits' shape \[4, 3\]/,
    );
  });

  test('parameters of another model are named by path', async () => {
    const other = nn.mlp([6, 4, 3]);
    const train = await compileTrainStep({
      model,
      loss: crossEntropy,
      optimizer: adamw(),
      params: other.init(0),
      device: cpu,
    });
    const error = await failure(train.run({ x: rows(4), y: labels([0, 1, 2, 0]) }));
    expect(error.message).toMatch(
      /the parameters do not fit the model: layers\.0\.b is f32\[4\], the model makes f32\[5\]/,
    );
    expect(error.message).toMatch(/layers\.0\.w is f32\[4, 6\], the model makes f32\[5, 6\]/);
  });
});

test('jit: a failed trace of many arguments keeps its first line short, the list in details', async () => {
  const f = jit((...xs: Tensor[]) => matmul(xs[0], xs[5]), { device: cpu });
  const args = Array.from({ length: 6 }, (_, i) => rows(2, i + 1));
  const error = await failure(Promise.resolve().then(() => f(...args)));
  expect(error.message).toMatch(/^jit: tracing the function with 6 arguments failed — matmul/);
  expect(error.message).not.toMatch(/argument 0/);
  expect(error.details).toMatch(/^arguments: argument 0: f32\[2, 1\], .*argument 5: f32\[2, 6\]/);
});

describe('the Trainer checks its dataset once, before training', () => {
  const split = (count: number, features = 6): ImageSplit => ({
    x: Float32Array.from({ length: count * features }, (_, i) => (i % 5) / 5),
    y: Int32Array.from({ length: count }, (_, n) => n % 3),
    count,
    features,
  });
  const good: ImageDataset = { train: split(12), test: split(6), classes: 3 };
  const trainer = (data: ImageDataset, m = model) =>
    createTrainer({ model: m, optimizer: adamw(), data, device: cpu, batchSize: 4 });

  test('a good dataset trains', async () => {
    const t = await trainer(good);
    expect((await t.fit(1))[0].steps).toBe(3);
  });

  test.each<[string, () => ImageDataset, RegExp]>([
    [
      'a NaN pixel',
      () => {
        const train = split(12);
        train.x[6 * 4 + 2] = Number.NaN;
        return { ...good, train };
      },
      /train image 4, feature 2, is NaN: inputs must be finite/,
    ],
    [
      'an infinite pixel in the test split',
      () => {
        const test = split(6);
        test.x[0] = -Infinity;
        return { ...good, test };
      },
      /test image 0, feature 0, is -Infinity/,
    ],
    [
      'a label past the classes',
      () => {
        const train = split(12);
        train.y[5] = 3;
        return { ...good, train };
      },
      /train label 3 \(image 5\) is not one of the dataset's 3 classes \(0\.\.2\)/,
    ],
    [
      'sizes that disagree',
      () => ({ ...good, train: { ...split(12), count: 13 } }),
      /says 13 images of 6 features, so x must hold 78 values and y 13; they hold 72 and 12/,
    ],
    [
      'splits of different widths',
      () => ({ ...good, test: split(6, 5) }),
      /test images have 5 features but train images 6/,
    ],
  ])('%s is a GrngError', async (_, make, message) => {
    const error = await failure(trainer(make()));
    expect(error.message).toMatch(message);
  });

  test('images the model does not take, and more classes than the model has outputs', async () => {
    const wide: ImageDataset = { train: split(12, 8), test: split(6, 8), classes: 3 };
    expect((await failure(trainer(wide))).message).toMatch(
      /the batch \(x f32\[1, 8\], y i32\[1\]\) does not fit the model/,
    );
    const fourClasses = { ...good, classes: 4 };
    expect((await failure(trainer(fourClasses))).message).toMatch(
      /the model's output \[1, 3\] for one image has fewer than the dataset's 4 classes/,
    );
  });
});
