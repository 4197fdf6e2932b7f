// Every public entry point refuses bad input with a GrngError that says what it expected and
// what it got (the CLI: a non-zero exit code and one `grng: …` line on stderr, no stack trace).
// This file covers the entry points that had no such test elsewhere; each case passes a
// deliberately wrong value (`as never` where the types would refuse it) and checks both the
// error's class and that its message names the bad thing.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import {
  abs,
  array,
  bernoulli,
  bitOr,
  bitXor,
  broadcastTo,
  cast,
  categorical,
  concat,
  cos,
  createDevice,
  defineOptimizer,
  defineTransform,
  div,
  ema,
  eq,
  erf,
  eye,
  flatten,
  flattenTree,
  floor,
  foldIn,
  full,
  ge,
  globalSqnorm,
  GrngError,
  gt,
  guardedInverse,
  HostArray,
  input,
  inverseResidual,
  iota,
  isFinite,
  isTensor,
  kroneckerFactors,
  layerGradient,
  le,
  leafPaths,
  logSoftmax,
  lrMultiplier,
  lt,
  mapTrees,
  max,
  maximum,
  min,
  minimum,
  mT,
  mul,
  ne,
  neg,
  newtonSchulz,
  newtonSchulzIterations,
  nn,
  norm,
  normal,
  oneHot,
  ones,
  onesLike,
  outer,
  outside,
  pad,
  pow,
  powerIteration,
  prngKey,
  rademacher,
  randint,
  randomBits,
  recip,
  recordTaps,
  relu,
  rsqrt,
  scalar,
  shiftRight,
  sigmoid,
  sign,
  sin,
  slice,
  solveTriangular,
  split,
  sqnorm,
  sqrt,
  square,
  squeeze,
  stopGradient,
  sub,
  sum,
  tanh,
  tapGeometry,
  Tensor,
  threefry2x32,
  trace,
  treeLeaves,
  treeMap,
  underAny,
  valueAndGrad,
  WebGpuDevice,
  windows,
  zeros,
  zerosLike,
  type LayerTap,
} from '../../index.js';
import {
  batch,
  checkGradient,
  hostTree,
  layerValueShapes,
  leafValues,
  paramLeaves,
  paramShapes,
  paramTree,
  referencePass,
  referenceRandom,
  scaledError,
  shape,
  spdMatrix,
  Tape,
  tokenLeaves,
  tokenPass,
  trainingStepNeeds,
  treeOfLeaves,
  value,
  type ReferenceLayer,
  type TokenModel,
} from '../../testing.js';
import {
  shuffled as dataShuffled,
  standardize,
  subset,
  type ImageDataset,
  type ImageSplit,
} from '../../runtime/data/index.js';
import { batchOf, shuffled as trainerShuffled } from '../../runtime/trainer.js';
import { loadTrainStep, manifestToJson } from '../../aot/index.js';

/** What `fn` throws (undefined when it returns). */
function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

/** `fn` must throw a GrngError whose message matches `message` (anything else fails, named). */
function refuses(fn: () => unknown, message: RegExp): void {
  const error = thrownBy(fn);
  expect(error, 'expected a GrngError').toBeInstanceOf(GrngError);
  expect((error as GrngError).message).toMatch(message);
}

/** `run()` must reject with a GrngError whose message matches `message`. */
async function rejects(run: () => Promise<unknown>, message: RegExp): Promise<void> {
  const error = await run().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, 'expected a GrngError').toBeInstanceOf(GrngError);
  expect((error as GrngError).message).toMatch(message);
}

type Case = readonly [string, () => unknown, RegExp];

const x23 = () => input('x', [2, 3]);
const v4 = () => input('v', [4]);
const key = () => prngKey(0);

describe('grng: creation and host arrays', () => {
  test.each<Case>([
    [
      'input with a negative dimension',
      () => input('x', [2, -1]),
      /input: shape \[2, -1\] must be an array of non-negative integers/,
    ],
    [
      'full with a fractional dimension',
      () => full([2.5], 1),
      /full: shape \[2\.5\] must be an array of non-negative integers/,
    ],
    ['zeros with a negative dimension', () => zeros([-1]), /zeros: shape \[-1\] must be/],
    ['ones with a string dimension', () => ones(['a'] as never), /ones: shape \[a\] must be/],
    [
      'zerosLike of a string',
      () => zerosLike('x' as never),
      /zerosLike: expected a Tensor or a number, got string/,
    ],
    [
      'onesLike of a JS array',
      () => onesLike([1, 2] as never),
      /onesLike: expected a Tensor or a number, got a JS array/,
    ],
    [
      'scalar of a string',
      () => scalar('1' as never),
      /scalar: value must be a number, got string/,
    ],
    ['iota over an axis the shape lacks', () => iota([3], 1), /iota: axis 1 is out of range/],
    ['eye of a negative size', () => eye(-1), /eye: n must be a non-negative integer, got -1/],
    [
      'new HostArray with a shape its data does not fill',
      () => new HostArray(new Float64Array(3), [2, 2], 'f32'),
      /HostArray: got 3 values but shape \[2, 2\] needs 4/,
    ],
    [
      'new HostArray with an unknown dtype',
      () => new HostArray(new Float64Array(1), [1], 'f64' as never),
      /HostArray: unknown dtype f64/,
    ],
    [
      'new Tensor of something that is not an IR node',
      () => new Tensor({} as never),
      /Tensor: expected an IR node, got object without a shape/,
    ],
  ])('%s', (_, fn, message) => refuses(fn, message));

  test('isTensor answers false for anything but a tensor (a predicate: it never throws)', () => {
    for (const notTensor of [undefined, null, 3, [1], { node: {} }])
      expect(isTensor(notTensor)).toBe(false);
  });
});

describe('grng: elementwise ops', () => {
  // Shapes [2, 3] and [4] do not broadcast: each binary op must name both.
  const binaries: readonly (readonly [string, (a: Tensor, b: Tensor) => unknown])[] = [
    ['sub', sub as never],
    ['mul', mul as never],
    ['div', div as never],
    ['pow', pow as never],
    ['maximum', maximum as never],
    ['minimum', minimum as never],
    ['lt', lt],
    ['le', le],
    ['gt', gt],
    ['ge', ge],
    ['eq', eq],
    ['ne', ne],
  ];
  test.each(binaries)('%s of shapes that do not broadcast', (_, op) =>
    refuses(() => op(x23(), v4()), /: shapes \[2, 3\] and \[4\] cannot be broadcast together/),
  );

  // A string is neither a tensor nor a number.
  const unaries: readonly (readonly [string, (a: Tensor) => unknown])[] = [
    ['neg', neg],
    ['sqrt', sqrt],
    ['rsqrt', rsqrt],
    ['recip', recip],
    ['sin', sin],
    ['cos', cos],
    ['tanh', tanh],
    ['erf', erf],
    ['abs', abs],
    ['sign', sign],
    ['floor', floor],
    ['isFinite', isFinite],
    ['stopGradient', stopGradient],
    ['square', square],
    ['relu', relu],
    ['sigmoid', sigmoid],
    ['nn.relu', nn.relu],
    ['nn.tanh', nn.tanh],
    ['nn.sigmoid', nn.sigmoid],
  ];
  test.each(unaries)('%s of a string', (_, op) =>
    refuses(() => op('x' as never), /: expected a Tensor or a number, got string/),
  );

  test.each<Case>([
    [
      'cast to an unknown dtype',
      () => cast(x23(), 'f64' as never),
      /cast: unknown target dtype f64/,
    ],
    [
      'bitOr of f32 tensors',
      () => bitOr(full([2], 1), full([2], 1)),
      /bitOr: operand has dtype f32 \(shape \[2\]\) but bitOr needs i32/,
    ],
    [
      'bitXor of f32 tensors',
      () => bitXor(full([2], 1), 1),
      /bitXor: operand has dtype f32 \(shape \[2\]\) but bitXor needs i32/,
    ],
    [
      'shiftRight of shapes that do not broadcast',
      () => shiftRight(full([2], 1, 'i32'), full([3], 1, 'i32')),
      /shiftRight: shapes \[2\] and \[3\] cannot be broadcast together/,
    ],
  ])('%s', (_, fn, message) => refuses(fn, message));
});

describe('grng: random numbers', () => {
  test.each<Case>([
    ['prngKey of a fractional seed', () => prngKey(1.5), /prngKey: seed 1\.5 must be an integer/],
    ['split into no keys', () => split(key(), 0), /split: n must be a positive integer, got 0/],
    [
      'foldIn of a fractional number',
      () => foldIn(key(), 1.5),
      /foldIn: data 1\.5 must be an integer/,
    ],
    [
      'randomBits with a bad key',
      () => randomBits(full([3], 1), [2]),
      /randomBits: key must be an i32 tensor of shape \[2\].*got f32\[3\]/,
    ],
    ['normal with a negative dimension', () => normal(key(), [-1]), /normal: shape \[-1\] must be/],
    [
      'rademacher with a key of the wrong dtype',
      () => rademacher(full([2], 0), [2]),
      /rademacher: key must be an i32 tensor/,
    ],
    [
      'bernoulli with p outside [0, 1]',
      () => bernoulli(key(), 2),
      /bernoulli: p must be in \[0, 1\], got 2/,
    ],
    [
      'randint with lo ≥ hi',
      () => randint(key(), [2], 5, 1),
      /randint: needs integers lo < hi.*got \[5, 1\)/,
    ],
    [
      'categorical of i32 logits',
      () => categorical(key(), full([2, 3], 0, 'i32')),
      /categorical: logits must be an f32 tensor.*got i32\[2, 3\]/,
    ],
    [
      'threefry2x32 of f32 words',
      () => threefry2x32(full([2], 0), full([2], 0), full([2], 0), full([2], 0)),
      /threefry2x32: k0 must be an i32 tensor, got f32\[2\]/,
    ],
  ])('%s', (_, fn, message) => refuses(fn, message));
});

describe('grng: movement, reductions and linear algebra', () => {
  test.each<Case>([
    [
      'broadcastTo a shape it does not fit',
      () => broadcastTo(x23(), [4, 3]),
      /broadcastTo: cannot broadcast \[2, 3\] to \[4, 3\]/,
    ],
    [
      'flatten of a string',
      () => flatten('x' as never),
      /flatten: expected a Tensor or a number, got string/,
    ],
    [
      'squeeze of an axis whose size is not 1',
      () => squeeze(x23(), 0),
      /squeeze: axis 0 of \[2, 3\] has size 2, not 1/,
    ],
    [
      'slice past the end',
      () => slice(x23(), [0, 0], [3, 3]),
      /slice: axis 0: range \[0, 3\) is not within/,
    ],
    [
      'pad with too few widths',
      () => pad(x23(), [0], [0]),
      /pad: lo must give one non-negative integer per axis of \[2, 3\], got \[0\]/,
    ],
    [
      'concat of mismatched shapes',
      () => concat([x23(), input('y', [2, 4])], 0),
      /concat: all tensors must share dtype and every axis but 0: got f32\[2, 3\] and f32\[2, 4\]/,
    ],
    ['mT of a vector', () => mT(v4()), /mT: needs a tensor of rank ≥ 2, got \[4\]/],
    [
      'max over an axis out of range',
      () => max(x23(), 2),
      /max: axis 2 is out of range for a tensor of shape \[2, 3\]/,
    ],
    ['min over a repeated axis', () => min(x23(), [0, 0]), /min: axis \[0, 0\] repeats an axis/],
    [
      'outer of a matrix',
      () => outer(x23(), v4()),
      /outer: needs two vectors, got \[2, 3\] and \[4\]/,
    ],
    ['eye of a fractional size', () => eye(1.5), /eye: n must be a non-negative integer, got 1\.5/],
    ['trace of a non-square matrix', () => trace(x23()), /trace: needs square matrices.*\[2, 3\]/],
    [
      'solveTriangular with a non-square matrix',
      () => solveTriangular(x23(), input('b', [2, 1])),
      /solveTriangular: expects a square matrix, got \[2, 3\]/,
    ],
    [
      'logSoftmax over an axis out of range',
      () => logSoftmax(x23(), 2),
      /logSoftmax: axis 2 is out of range/,
    ],
    [
      'oneHot of f32 labels',
      () => oneHot(input('y', [3]), 4),
      /oneHot: labels must be i32, got f32/,
    ],
    [
      'oneHot into no classes',
      () => oneHot(input('y', [3], 'i32'), 0),
      /oneHot: classes must be a positive integer, got 0/,
    ],
    [
      'sqnorm of a string',
      () => sqnorm('x' as never),
      /: expected a Tensor or a number, got string/,
    ],
    [
      'globalSqnorm of a string',
      () => globalSqnorm('x' as never),
      /globalSqnorm: expected an array of Tensors, got string/,
    ],
    ['norm of an unknown order', () => norm(v4(), 3 as never), /norm: ord 3 is not supported/],
  ])('%s', (_, fn, message) => refuses(fn, message));
});

describe('grng: transforms and trees', () => {
  test.each<Case>([
    [
      'valueAndGrad of a non-scalar function',
      () => valueAndGrad((t: Tensor) => t.mul(2))(v4()),
      /valueAndGrad: the function must return a scalar f32 tensor, got f32\[4\]/,
    ],
    [
      'treeLeaves of a tree with a number leaf',
      () => treeLeaves({ w: 3 } as never),
      /treeLeaves: \.w is a number, but must be a Tensor/,
    ],
    [
      'treeMap over trees of two structures',
      () => treeMap((a) => a, { w: v4() }, { b: v4() }),
      /treeMap: tree 2 must have the structure of the first tree \(\{"w":0\}\), got \{"b":0\}/,
    ],
    [
      'flattenTree of a tree with a string leaf',
      () => flattenTree('mine', { w: 'x' }, isTensor, 'a Tensor'),
      /mine: \.w is a string, but must be a Tensor/,
    ],
    [
      'mapTrees over trees of two structures',
      () => mapTrees('mine', isTensor, (a) => a, [[v4()], [v4(), v4()]], ['params', 'grads']),
      /mine: grads must have the structure of params/,
    ],
    [
      'leafPaths of a tree with a null leaf',
      () => leafPaths('mine', { w: null }, isTensor, 'a Tensor'),
      /mine: \.w is null, but must be a Tensor/,
    ],
    [
      'underAny with a string for its prefixes',
      () => underAny('blocks' as never, 'blocks.0'),
      /underAny: prefixes must be an array of dotted paths \(strings\), got "blocks"/,
    ],
    [
      'recordTaps of something not a function',
      () => recordTaps('f' as never),
      /recordTaps: expected a function to run, got string/,
    ],
    ['windows of a matrix', () => windows(x23(), 2), /windows: needs NHWC images.*got \[2, 3\]/],
  ])('%s', (_, fn, message) => refuses(fn, message));

  test('outside returns (not throws) a message naming the value, NaN included', () => {
    // A helper for optimizers' validate functions: the message is what they return.
    expect(outside('lr', Number.NaN, 0, 1)).toMatch(/lr must be in \[0, 1\), got NaN/);
    expect(outside('lr', 2, 0, 1, true)).toMatch(/lr must be in \[0, 1\], got 2/);
  });
});

describe('grng: optimizers as data', () => {
  test.each<Case>([
    [
      'defineOptimizer without a name or update',
      () => defineOptimizer({} as never),
      /defineOptimizer: the definition needs a name/,
    ],
    [
      'defineOptimizer with a hyperparameter that is not a number, boolean or string',
      () =>
        defineOptimizer({
          name: 'mine',
          hyper: { lr: [0.1] } as never,
          init: () => ({}),
          update: (ctx) => ({ params: ctx.params, state: ctx.state }),
        }),
      /defineOptimizer: mine: hyperparameter 'lr' must default to a finite number, a boolean or a string, got \[0\.1\]/,
    ],
    [
      'defineTransform without init or update',
      () => defineTransform({ name: 't', hyper: {} } as never),
      /defineTransform: t: init must be a function, got undefined/,
    ],
    [
      'lrMultiplier with an unknown schedule',
      () =>
        lrMultiplier(
          scalar(1),
          { warmupSteps: scalar(0), decaySteps: scalar(10), finalScale: scalar(0) },
          'step',
        ),
      /lrMultiplier: schedule must be constant, linear, cosine, got "step"/,
    ],
  ])('%s', (_, fn, message) => refuses(fn, message));
});

describe('grng: curvature building blocks', () => {
  const tap = (a: readonly number[], g: readonly number[]): LayerTap =>
    ({ name: 'fc', a: input('a', a), g: input('g', g), w: input('w', [2, 3]) }) as LayerTap;
  test.each<Case>([
    [
      'kroneckerFactors of a tap whose a and g disagree on the batch',
      () => kroneckerFactors(tap([4, 3], [5, 2])),
      /kroneckerFactors: tap fc: .*must share their leading axes, got \[4, 3\] and \[5, 2\]/,
    ],
    [
      'kroneckerFactors with an unknown weight sharing',
      () => kroneckerFactors(tap([4, 3], [4, 2]), 'mean' as never),
      /kroneckerFactors: weightSharing must be 'expand' or 'reduce', got "mean"/,
    ],
    [
      'tapGeometry of a rank-1 tap',
      () => tapGeometry(tap([3], [2])),
      /tapGeometry: tap fc: .*got \[3\] and \[2\]/,
    ],
    [
      'layerGradient of something not a tap',
      () => layerGradient({} as never),
      /layerGradient: the tap: a must be a Tensor, got undefined/,
    ],
    [
      'ema of shapes that do not broadcast',
      () => ema(x23(), v4(), 0.9),
      /ema: old and fresh must have one shape, got \[2, 3\] and \[4\]/,
    ],
    [
      'ema with a decay that is a string',
      () => ema(v4(), v4(), '0.9' as never),
      /ema: decay must be a number or a Tensor, got string/,
    ],
    [
      'newtonSchulz of a non-square matrix',
      () => newtonSchulz(x23(), input('x0', [3, 2]), 2),
      /newtonSchulz: a must be a square f32 matrix \[n, n\], got f32\[2, 3\]/,
    ],
    [
      'newtonSchulz with a negative iteration count',
      () => newtonSchulz(input('a', [2, 2]), input('x0', [2, 2]), -1),
      /newtonSchulz: iterations must be a non-negative integer, got -1/,
    ],
    [
      'newtonSchulzIterations with a tolerance above 1',
      () => newtonSchulzIterations(0.5, 2),
      /newtonSchulzIterations: tolerance must be in \(0, 1\), got 2/,
    ],
    [
      'newtonSchulzIterations with a NaN √ρ',
      () => newtonSchulzIterations(Number.NaN, 1e-3),
      /newtonSchulzIterations: sqrtRho must be a finite number ≥ 0, got NaN/,
    ],
    [
      'guardedInverse of a non-square matrix',
      () =>
        guardedInverse(x23(), { lambdaMax: scalar(1), iterations: 2, extra: 1, tolerance: 1e-3 }),
      /guardedInverse: a must be a square f32 matrix \[n, n\], got f32\[2, 3\]/,
    ],
    [
      'guardedInverse without lambdaMax',
      () =>
        guardedInverse(input('a', [2, 2]), { iterations: 2, extra: 1, tolerance: 1e-3 } as never),
      /guardedInverse: options\.lambdaMax .*must be a Tensor, got undefined/,
    ],
    [
      'inverseResidual of a non-square matrix',
      () => inverseResidual(x23(), input('x', [3, 2])),
      /inverseResidual: a must be a square f32 matrix \[n, n\], got f32\[2, 3\]/,
    ],
    [
      'powerIteration of a non-square matrix',
      () => powerIteration(x23(), v4(), 3),
      /powerIteration: a must be a square f32 matrix \[n, n\], got f32\[2, 3\]/,
    ],
    [
      'powerIteration with a fractional step count',
      () => powerIteration(input('a', [2, 2]), input('v0', [2]), 1.5),
      /powerIteration: steps must be a non-negative integer, got 1\.5/,
    ],
  ])('%s', (_, fn, message) => refuses(fn, message));
});

describe('grng: nn', () => {
  const images = (shape: readonly number[]) => input('img', shape);
  test.each<Case>([
    [
      'nn.patches of a matrix',
      () => nn.patches(x23(), 2),
      /nn\.patches: expects NHWC images .*got \[2, 3\]/,
    ],
    [
      'nn.patches with a zero stride',
      () => nn.patches(images([1, 4, 4, 1]), 2, { stride: 0 }),
      /nn\.patches: stride must be an integer ≥ 1 \(or a pair\), got 0/,
    ],
    [
      'nn.avgPool2d with windows that do not tile',
      () => nn.avgPool2d(images([1, 5, 4, 1]), 2),
      /nn\.avgPool2d: 2×2 windows must tile 5×4 images/,
    ],
    [
      'nn.globalAvgPool of a matrix',
      () => nn.globalAvgPool(x23()),
      /nn\.globalAvgPool: expects NHWC images .*got \[2, 3\]/,
    ],
    [
      'nn.embedding with no rows',
      () => nn.embedding(0, 4),
      /nn\.embedding: vocab must be a positive integer, got 0/,
    ],
    [
      'nn.embedding applied to f32 ids',
      () => {
        const layer = nn.embedding(5, 2);
        return layer.apply({ weight: input('w', [5, 2]) }, input('ids', [3]));
      },
      /nn\.embedding: embedding looks up i32 ids, got f32 \[3\]/,
    ],
    [
      'nn.multiHeadAttention with heads not dividing dim',
      () => nn.multiHeadAttention(8, 3),
      /nn\.multiHeadAttention: dim 8 must be a multiple of heads 3/,
    ],
    [
      'nn.scaledDotProductAttention of rank-3 operands',
      () =>
        nn.scaledDotProductAttention(
          input('q', [1, 2, 4]),
          input('k', [1, 2, 4]),
          input('v', [1, 2, 4]),
        ),
      /nn\.scaledDotProductAttention: q must be a Tensor \[batch, heads, T, d_head\], got \[1, 2, 4\]/,
    ],
    [
      'nn.scaledDotProductAttention with v of other positions',
      () =>
        nn.scaledDotProductAttention(
          input('q', [1, 2, 3, 4]),
          input('k', [1, 2, 3, 4]),
          input('v', [1, 2, 5, 4]),
        ),
      /do not fit: got q \[1, 2, 3, 4\], k \[1, 2, 3, 4\], v \[1, 2, 5, 4\]/,
    ],
    [
      'nn.encoderBlock with a zero MLP width',
      () => nn.encoderBlock(8, 2, { mlpDim: 0 }),
      /nn\.encoderBlock: mlpDim must be a positive integer, got 0/,
    ],
    [
      'nn.textTransformer applied to f32 ids',
      () => {
        const model = nn.textTransformer({
          vocab: 5,
          length: 3,
          dim: 4,
          depth: 1,
          heads: 2,
          classes: 2,
        });
        return model.apply(model.init(0) as never, input('ids', [2, 3]));
      },
      /nn\.textTransformer: expects i32 token ids \[batch, 3\], got f32 \[2, 3\]/,
    ],
    [
      'nn.softmax over an axis out of range',
      () => nn.softmax(x23(), 5),
      /softmax: axis 5 is out of range/,
    ],
    [
      'nn.accuracy with f32 labels',
      () => nn.accuracy(x23(), input('y', [2])),
      /accuracy: needs logits \[batch, classes\] and i32 labels \[batch\], got \[2, 3\] and f32 \[2\]/,
    ],
  ])('%s', (_, fn, message) => refuses(fn, message));
});

describe('grng: devices', () => {
  test('new WebGpuDevice without a GPU handle, or with memory bounds out of range', () => {
    refuses(
      () => new WebGpuDevice(undefined as never),
      /WebGpuDevice: expects a handle \{ device: GPUDevice, description \}, got undefined/,
    );
    refuses(() => new WebGpuDevice({} as never), /got an object without a device/);
    // A stand-in handle: the bounds are refused before anything reads more than createBuffer.
    const handle = { device: { createBuffer: () => undefined }, description: 'none', owner: null };
    refuses(
      () => new WebGpuDevice(handle as never, { maxExecutables: 0 }),
      /^WebGpuDevice: maxExecutables must be an integer ≥ 1, got 0/,
    );
  });
});

describe('grng/testing', () => {
  const layers: ReferenceLayer[] = [
    { kind: 'dense', in: 2, out: 3, bias: true, activation: 'tanh' },
  ];
  const tokenModel: TokenModel = {
    tokens: 2,
    dim: 2,
    blocks: [{ kind: 'dense', out: 2, bias: true, activation: 'relu' }],
    classes: 2,
    bias: true,
  };
  test.each<Case>([
    [
      'Tape.backward from a node it does not hold',
      () => new Tape().backward(5),
      /Tape\.backward: out must be a node of this tape .*got node 5/,
    ],
    [
      'layerValueShapes of an unknown layer kind',
      () => layerValueShapes({ kind: 'conv' } as never),
      /layerValueShapes: layer must be \{ kind: 'dense' \| 'lora', \.\.\. \}, got kind "conv"/,
    ],
    [
      'leafValues of a negative dimension',
      () => leafValues([[2, -1]]),
      /leafValues: shapes must be arrays of non-negative integers, got \[\[2,-1\]\]/,
    ],
    [
      'paramLeaves with no leaves allowed',
      () => paramLeaves({ maxLeaves: 0 }),
      /paramLeaves: maxLeaves must be an integer in \[1, 2\^30\], got 0/,
    ],
    [
      'paramShapes with minLeaves above maxLeaves',
      () => paramShapes({ minLeaves: 4, maxLeaves: 2 }),
      /paramShapes: minLeaves \(4\) must not exceed maxLeaves \(2\)/,
    ],
    [
      'paramTree with a zero dimension bound',
      () => paramTree({ maxDim: 0 }),
      /paramTree: maxDim must be an integer in \[1, 2\^30\], got 0/,
    ],
    [
      'shape with a negative rank',
      () => shape({ maxRank: -1 }),
      /shape: maxRank must be an integer in \[0, 8\], got -1/,
    ],
    [
      'value with a NaN scale',
      () => value({ scale: Number.NaN }),
      /value: scale must be a finite number > 0, got NaN/,
    ],
    [
      'spdMatrix of size 0',
      () => spdMatrix(0, { conditionMax: 2 }),
      /spdMatrix: n must be a positive integer, got 0/,
    ],
    [
      'spdMatrix with a negative scale',
      () => spdMatrix(2, { conditionMax: 2, scale: -1 }),
      /spdMatrix: scale must be a finite number > 0, got -1/,
    ],
    [
      'batch of no features',
      () => batch({ features: 0, classes: 2, size: 1 }),
      /batch: features must be a positive integer, got 0/,
    ],
    [
      'hostTree with fewer shapes than values',
      () => hostTree([new Float64Array(2), new Float64Array(3)], [[2]]),
      /hostTree: needs one shape per leaf: got 2 values and 1 shapes/,
    ],
    [
      'treeOfLeaves with an unknown structure',
      () => treeOfLeaves([1, 2], 'tree' as never),
      /treeOfLeaves: structure must be 'object', 'list', 'nested', got "tree"/,
    ],
    [
      'referencePass with values of the wrong size',
      () =>
        referencePass(
          layers,
          [{ w: new Float64Array(5), b: new Float64Array(3) }],
          new Float64Array(2),
          Int32Array.of(0),
        ),
      /referencePass: values\[0\]\.w must be a Float64Array of 6 values \[3, 2\], got 5 values/,
    ],
    [
      'scaledError of a string',
      () => scaledError('1' as never, 1),
      /scaledError: got and want must be numbers, got string and number/,
    ],
    [
      'tokenLeaves of an unknown block kind',
      () => tokenLeaves({ ...tokenModel, blocks: [{ kind: 'conv' } as never] }),
      /tokenLeaves: block 0: kind must be 'dense', 'norm' or 'attention', got "conv"/,
    ],
    [
      'tokenPass with a leaf of the wrong size',
      () => {
        const { shapes } = tokenLeaves(tokenModel);
        const leaves = shapes.map((s) => new Float64Array(s.reduce((a, d) => a * d, 1)));
        leaves[0] = new Float64Array(1);
        return tokenPass(tokenModel, leaves, new Float64Array(4), Int32Array.of(0));
      },
      /tokenPass: leaf 0 \(layers\.0\.b\) must be a Float64Array of 2 values \[2\], got 1 values/,
    ],
    [
      'trainingStepNeeds of something not an optimizer',
      () => trainingStepNeeds({} as never, [[2]]),
      /trainingStepNeeds: expected an optimizer .*got object without a definition/,
    ],
  ])('%s', (_, fn, message) => refuses(fn, message));

  test('checkGradient refuses an argument that is not a host array', async () => {
    await rejects(
      () => checkGradient((t) => sum(t), [[1, 2]] as never),
      /checkGradient: argument 0 must be a HostArray made with array\(\)/,
    );
  });
  test('checkGradient refuses a zero finite-difference step', async () => {
    await rejects(
      () => checkGradient((t) => sum(t), [array([1, 2])], { step: 0 }),
      /checkGradient: options\.step must be a finite number > 0, got 0/,
    );
  });
});

describe('grng/testing: referenceRandom', () => {
  const rk = referenceRandom.prngKey(0);
  test.each<Case>([
    [
      'prngKey of a fractional seed',
      () => referenceRandom.prngKey(1.5),
      /prngKey: seed 1\.5 must be an integer/,
    ],
    [
      'split into no keys',
      () => referenceRandom.split(rk, 0),
      /split: n must be a positive integer, got 0/,
    ],
    [
      'foldIn with a one-word key',
      () => referenceRandom.foldIn([0] as never, 1),
      /foldIn: key must be a pair of 32-bit integer words, got \[0\]/,
    ],
    [
      'randomBits with a negative dimension',
      () => referenceRandom.randomBits(rk, [-1]),
      /randomBits: shape \[-1\] must be an array of non-negative integers/,
    ],
    [
      'uniform with lo > hi',
      () => referenceRandom.uniform(rk, [2], 1, 0),
      /uniform: needs finite lo < hi, got \[1, 0\)/,
    ],
    [
      'normal with a string key',
      () => referenceRandom.normal('k' as never, [2]),
      /normal: key must be a pair of 32-bit integer words, got k/,
    ],
    [
      'rademacher with a fractional dimension',
      () => referenceRandom.rademacher(rk, [1.5]),
      /rademacher: shape \[1\.5\] must be/,
    ],
    [
      'bernoulli with p outside [0, 1]',
      () => referenceRandom.bernoulli(rk, 2),
      /bernoulli: p must be in \[0, 1\], got 2/,
    ],
    [
      'randint with lo = hi',
      () => referenceRandom.randint(rk, [2], 3, 3),
      /randint: needs integers lo < hi .*got \[3, 3\)/,
    ],
    [
      'categorical with too few logits',
      () => referenceRandom.categorical(rk, new Float64Array(3), [2, 2]),
      /categorical: logits must be a Float64Array of the 4 values of shape \[2, 2\]/,
    ],
    [
      'stepKey of a fractional seed',
      () => referenceRandom.stepKey(1.5, 1),
      /stepKey: seed 1\.5 must be an integer/,
    ],
    [
      'mcLabelKey of a one-word key',
      () => referenceRandom.mcLabelKey([0] as never),
      /mcLabelKey: key must be a pair of 32-bit integer words, got \[0\]/,
    ],
    [
      'hutchinsonProbeKey of a negative leaf',
      () => referenceRandom.hutchinsonProbeKey(rk, -1),
      /hutchinsonProbeKey: leaf must be a non-negative integer, got -1/,
    ],
    [
      'threefry2x32 of a NaN word',
      () => referenceRandom.threefry2x32(Number.NaN, 0, 0, 0),
      /threefry2x32: k0 must be an integer word, got NaN/,
    ],
  ])('%s', (_, fn, message) => refuses(fn, message));
});

describe('grng/data and grng/trainer', () => {
  const split: ImageSplit = {
    x: new Float32Array(6),
    y: Int32Array.of(0, 1, 0),
    count: 3,
    features: 2,
  };
  test.each<Case>([
    [
      'grng/data shuffled of a negative count',
      () => dataShuffled(-1, 0),
      /shuffled: n must be a non-negative integer \(a row count\), got -1/,
    ],
    [
      'grng/trainer shuffled with a NaN seed',
      () => trainerShuffled(3, Number.NaN),
      /shuffled: seed must be an integer, got NaN/,
    ],
    [
      'subset of a row past the end',
      () => subset(split, [5]),
      /subset: index 5 \(entry 0\) is not a row of a split of 3 rows/,
    ],
    [
      'batchOf a row past the end',
      () => batchOf(split, [0, 3]),
      /subset: index 3 \(entry 1\) is not a row of a split of 3 rows/,
    ],
    [
      'standardize of a dataset without a train split',
      () => standardize({ classes: 2 } as never),
      /standardize: needs a dataset whose train split has images .*got no train split/,
    ],
    [
      'standardize of an empty train split',
      () =>
        standardize({
          classes: 2,
          train: { x: new Float32Array(0), y: new Int32Array(0), count: 0, features: 2 },
          test: split,
        } as ImageDataset),
      /standardize: needs a dataset whose train split has images .*got x of 0 values/,
    ],
  ])('%s', (_, fn, message) => refuses(fn, message));
});

describe('grng/aot', () => {
  test('manifestToJson of something not a manifest', () => {
    refuses(
      () => manifestToJson({} as never),
      /manifestToJson takes a manifest made by grng compile \(format grng-aot\/2\), got format undefined/,
    );
  });
  test('loadTrainStep of a manifest of another format', async () => {
    const device = await createDevice({ kind: 'cpu' });
    await rejects(
      () => loadTrainStep('{"format":"other"}', device, {}),
      /not a grng compile manifest \(format other; expected grng-aot\/2\)/,
    );
  });
});

// ---- the CLI, as a user runs it: a process, its exit code and its stderr ----

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Exit {
  readonly code: number | null;
  readonly stderr: string;
}

/** Runs `grng ...args` from source (cli/main.ts through tsx), as test/runtime spawns scripts. */
function grng(args: readonly string[]): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(root, 'cli', 'main.ts'), ...args],
      {
        cwd: root,
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

describe('grng CLI: a bad option is one line on stderr and a non-zero exit', () => {
  test.concurrent.each<readonly [string, readonly string[], RegExp]>([
    ['doctor', ['doctor', '--bogus'], /--bogus.*grng doctor --help/],
    ['train', ['train', '--bogus'], /--bogus.*grng train --help/],
    ['train (a bad value)', ['train', '--epochs', 'two'], /--epochs must be an integer, got 'two'/],
    ['compare', ['compare', '--bogus'], /--bogus.*grng compare --help/],
    ['compile', ['compile', '--bogus'], /--bogus.*grng compile --help/],
    ['merge', ['merge', '--bogus'], /--bogus.*grng merge --help/],
  ])('grng %s', async (_, args, message) => {
    const { code, stderr } = await grng(args);
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/^grng: /);
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stderr).not.toMatch(/^\s+at /m); // no stack trace
    expect(stderr).toMatch(message);
  });
});
