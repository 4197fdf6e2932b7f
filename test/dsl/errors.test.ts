// Every error a user can cause is a GrngError whose message names the op, the shapes involved
// (printed the way users write them, `[2, 3]`) and says what to do (docs/architecture.md,
// Conventions). Each case below asserts all three; a raw TypeError or a message that leaves one out
// is a library bug, and its test is kept failing until the library is fixed.
import { describe, expect, test } from 'vitest';
import {
  add,
  array,
  constant,
  createDevice,
  crossEntropy,
  exp,
  expandDims,
  grad,
  GrngError,
  hvp,
  input,
  jit,
  jvp,
  meanSquaredError,
  log,
  logsumexp,
  matmul,
  mean,
  reshape,
  softmax,
  sum,
  transpose,
  vjp,
  where,
  type Device,
  type DeviceOptions,
  type Shape,
  type Tensor,
} from '../../index.js';
import { interpret } from '../../runtime/interpreter.js';

interface Expected {
  /** The op the message must name (as `op:` prefix and GrngError.op). */
  readonly op: string;
  /** Substrings that must appear verbatim, e.g. shapes as `[2, 3]`. */
  readonly mentions?: readonly string[];
  /** What the message must say to do (or, at least, what was expected). */
  readonly hint: RegExp;
}

function check(error: unknown, { op, mentions = [], hint }: Expected): void {
  // A raw TypeError (or anything else) is reported with its own message, so the failure says what
  // leaked.
  if (!(error instanceof GrngError)) {
    throw new Error(
      `expected a GrngError from ${op}, got ` +
        `${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
    );
  }
  expect(error.op).toBe(op);
  expect(error.message.startsWith(`${op}: `)).toBe(true);
  for (const m of mentions) expect(error.message).toContain(m);
  expect(error.message).toMatch(hint);
}

function expectGrngError(fn: () => unknown, expected: Expected): void {
  let thrown: unknown = undefined;
  let threw = false;
  try {
    fn();
  } catch (e) {
    thrown = e;
    threw = true;
  }
  if (!threw)
    throw new Error(`expected ${expected.op} to throw a GrngError, but it returned normally`);
  check(thrown, expected);
}

async function expectGrngRejection(fn: () => Promise<unknown>, expected: Expected): Promise<void> {
  let thrown: unknown = undefined;
  let threw = false;
  try {
    await fn();
  } catch (e) {
    thrown = e;
    threw = true;
  }
  if (!threw)
    throw new Error(`expected ${expected.op} to reject with a GrngError, but it resolved`);
  check(thrown, expected);
}

// Shapes typed as plain `Shape`, so mismatches reach the runtime checks instead of failing tsc.
const dyn = (name: string, shape: Shape, dtype: 'f32' | 'i32' | 'bool' = 'f32'): Tensor =>
  input(name, shape, dtype);

describe('shapes', () => {
  test('add of non-broadcastable shapes names both shapes and how to fix them', () => {
    expectGrngError(() => add(dyn('x', [2, 3]), dyn('y', [4])), {
      op: 'add',
      mentions: ['[2, 3]', '[4]'],
      hint: /make the sizes equal or 1/,
    });
    expectGrngError(() => dyn('x', [2, 3]).add(dyn('y', [3, 3])), {
      op: 'add',
      mentions: ['[2, 3]', '[3, 3]'],
      hint: /reshape/,
    });
  });

  test('matmul with differing inner dimensions', () => {
    expectGrngError(() => matmul(dyn('a', [2, 3]), dyn('b', [4, 5])), {
      op: 'matmul',
      mentions: ['[2, 3]', '[4, 5]'],
      hint: /transpose one operand or fix the sizes/,
    });
    expectGrngError(() => dyn('a', [2, 3]).matmul(dyn('b', [2, 3])), {
      op: 'matmul',
      mentions: ['[2, 3]'],
      hint: /transpose/,
    });
    // Batched: the batch axes must broadcast.
    expectGrngError(() => matmul(dyn('a', [2, 2, 3]), dyn('b', [3, 3, 4])), {
      op: 'matmul',
      mentions: ['[2]', '[3]'],
      hint: /equal or 1/,
    });
  });

  test('reshape to a different element count', () => {
    expectGrngError(() => reshape(dyn('x', [2, 3]), [4, 2]), {
      op: 'reshape',
      mentions: ['[2, 3]', '[4, 2]', '6', '8'],
      hint: /element counts must match/,
    });
    expectGrngError(() => dyn('x', [2, 3]).reshape([5, -1]), {
      op: 'reshape',
      mentions: ['[2, 3]', '[5, -1]'],
      hint: /infer/,
    });
  });
});

describe('dtypes', () => {
  test('log of an i32 tensor', () => {
    expectGrngError(() => log(dyn('n', [2, 3], 'i32')), {
      op: 'log',
      mentions: ['i32', '[2, 3]', 'f32'],
      hint: /cast/,
    });
  });

  test('add of f32 and i32', () => {
    expectGrngError(() => add(dyn('x', [2, 3]), dyn('n', [2, 3], 'i32')), {
      op: 'add',
      mentions: ['f32', 'i32', '[2, 3]'],
      hint: /cast/,
    });
  });

  test('where with a non-bool condition', () => {
    expectGrngError(() => where(dyn('c', [2, 3]), dyn('x', [2, 3]), 0), {
      op: 'where',
      mentions: ['f32', '[2, 3]', 'bool'],
      hint: /compare first/,
    });
  });

  test('grad with respect to an i32 tensor', () => {
    const f = (n: Tensor) => sum(n.cast('f32'));
    expectGrngError(() => grad(f)(dyn('n', [2, 3], 'i32')), {
      op: 'grad',
      mentions: ['i32', '[2, 3]'],
      hint: /cast it or leave it out of argnums/,
    });
  });
});

describe('transforms', () => {
  test('grad of a non-scalar function', () => {
    expectGrngError(() => grad((x: Tensor) => x.mul(2))(dyn('x', [2, 3])), {
      op: 'grad',
      mentions: ['[2, 3]'],
      hint: /reduce it first, e\.g\. with sum\(\) or mean\(\)/,
    });
  });

  test('argnums out of range', () => {
    const f = (x: Tensor, y: Tensor) => sum(x.mul(y));
    expectGrngError(() => grad(f, 2)(dyn('x', [2]), dyn('y', [2])), {
      op: 'grad',
      mentions: ['argnums 2', '2 argument(s)'],
      hint: /out of range/,
    });
    expectGrngError(() => grad(f, [0, 5])(dyn('x', [2]), dyn('y', [2])), {
      op: 'grad',
      mentions: ['argnums 5'],
      hint: /out of range/,
    });
  });

  test('vjp cotangent of the wrong shape', () => {
    const [, pullback] = vjp((x: Tensor) => x.mul(x), dyn('x', [2, 3]));
    expectGrngError(() => pullback(dyn('ct', [4])), {
      op: 'vjp',
      mentions: ['[4]', '[2, 3]'],
      hint: /must match/,
    });
    expectGrngError(() => pullback(dyn('ct', [2, 3], 'i32')), {
      op: 'vjp',
      mentions: ['i32[2, 3]', 'f32[2, 3]'],
      hint: /must match/,
    });
  });

  test('jvp tangent count and shape mismatches', () => {
    const f = (x: Tensor, y: Tensor) => x.mul(y);
    const x = dyn('x', [2, 3]);
    const y = dyn('y', [2, 3]);
    expectGrngError(() => jvp(f, [x, y], [x] as unknown as [Tensor, Tensor]), {
      op: 'jvp',
      mentions: ['2 primal(s)', '1 tangent(s)'],
      hint: /one tangent per primal/,
    });
    expectGrngError(() => jvp(f, [x, y], [x, dyn('t', [3, 2])]), {
      op: 'jvp',
      mentions: ['[3, 2]', '[2, 3]'],
      hint: /must match/,
    });
  });

  test('crossEntropy with labels of the wrong shape', () => {
    const logits = dyn('z', [2, 5]);
    expectGrngError(() => crossEntropy(logits, dyn('labels', [3], 'i32')), {
      op: 'crossEntropy',
      mentions: ['[3]', '[2]', '[2, 5]'],
      hint: /must have shape/,
    });
    expectGrngError(() => crossEntropy(logits, dyn('targets', [2, 4])), {
      op: 'crossEntropy',
      mentions: ['[2, 4]', '[2, 5]'],
      hint: /must have the logits' shape/,
    });
  });

  test('meanSquaredError with targets of the wrong shape or dtype', () => {
    const outputs = dyn('z', [2, 3]);
    expectGrngError(() => meanSquaredError(outputs, dyn('y', [2])), {
      op: 'meanSquaredError',
      mentions: ['[2]', '[2, 3]'],
      hint: /must have the outputs' shape/,
    });
    expectGrngError(() => meanSquaredError(outputs, dyn('y', [2, 3], 'i32')), {
      op: 'meanSquaredError',
      mentions: ['i32'],
      hint: /must be f32/,
    });
  });
});

describe('axes', () => {
  test('sum over an axis out of range names the shape and the valid range', () => {
    // The rank alone does not tell the user which tensor it was: the shape must be in the message.
    expectGrngError(() => sum(dyn('x', [2, 3]), 2), {
      op: 'sum',
      mentions: ['axis 2', '[2, 3]'],
      hint: /use an axis in \[-2, 1\]/,
    });
  });

  test('mean and expandDims over an axis out of range', () => {
    expectGrngError(() => mean(dyn('x', [2, 3]), -3), {
      op: 'mean',
      mentions: ['axis -3', '[2, 3]'],
      hint: /use an axis in/,
    });
    expectGrngError(() => expandDims(dyn('x', [2, 3]), 4), {
      op: 'expandDims',
      mentions: ['axis 4', '[2, 3]'],
      hint: /use an axis in/,
    });
  });
});

// The message must name the function the user called, not an internal primitive it lowers to.
describe('op names are those of the public API', () => {
  const x = (): Tensor => dyn('x', [2, 3]);
  test.each<[string, () => unknown, Expected]>([
    [
      'softmax over an axis out of range',
      () => softmax(x(), 2),
      { op: 'softmax', mentions: ['axis 2', '[2, 3]'], hint: /use an axis in/ },
    ],
    [
      'logsumexp over an axis out of range',
      () => logsumexp(x(), -3),
      { op: 'logsumexp', mentions: ['axis -3', '[2, 3]'], hint: /use an axis in/ },
    ],
    [
      'transpose with a bad perm',
      () => transpose(x(), [0, 5]),
      { op: 'transpose', mentions: ['[0, 5]', '[2, 3]'], hint: /each of the 2 axes/ },
    ],
    [
      'exp of a JS array',
      () => exp([1, 2] as unknown as Tensor),
      { op: 'exp', mentions: ['JS array'], hint: /constant\(values\)/ },
    ],
    [
      'hvp with a tangent of the wrong shape',
      () => hvp((t: Tensor) => sum(t.mul(t)))(x(), dyn('v', [3])),
      { op: 'hvp', mentions: ['[3]', '[2, 3]'], hint: /must match/ },
    ],
  ])('%s', (_name, fn, expected) => {
    expectGrngError(fn, expected);
  });
});

describe('host arrays', () => {
  test('ragged nested arrays', () => {
    expectGrngError(() => array([[1, 2], [3]]), {
      op: 'array',
      mentions: ['[2, 2]'],
      hint: /ragged nested array: expected 2 entries/,
    });
    expectGrngError(() => array([1, [2]] as number[][]), {
      op: 'array',
      mentions: ['[2]'],
      hint: /ragged/,
    });
    expectGrngError(() => constant([[1], [2, 3]]), {
      op: 'constant',
      mentions: ['[2, 1]'],
      hint: /ragged/,
    });
  });

  test('wrong number of values for the shape', () => {
    expectGrngError(() => array([1, 2, 3, 4, 5], [2, 3]), {
      op: 'array',
      mentions: ['5 values', '[2, 3]', '6'],
      hint: /needs/,
    });
  });
});

describe('running', () => {
  test('interpret with a missing input names it, its shape and the inputs given', () => {
    const x = input('x', [2, 3]);
    const y = input('y', [2, 3]);
    expectGrngError(() => interpret([add(x, y).node], new Map([['x', new Float64Array(6)]])), {
      op: 'interpret',
      mentions: ['"y"', '[2, 3]'],
      hint: /given inputs: "x"/,
    });
  });

  test('interpret with an input of the wrong size', () => {
    const x = input('x', [2, 3]);
    expectGrngError(() => interpret([x.exp().node], new Map([['x', new Float64Array(5)]])), {
      op: 'interpret',
      mentions: ['"x"', '[2, 3]', '6', '5'],
      hint: /expects/,
    });
  });

  test('jit without a device', () => {
    const f = (x: Tensor) => x.exp();
    expectGrngError(() => jit(f, undefined as unknown as { device: Device }), {
      op: 'jit',
      hint: /createDevice/,
    });
    expectGrngError(() => jit(f, {} as { device: Device }), {
      op: 'jit',
      hint: /createDevice\(\{ kind: "cpu" \}\)/,
    });
  });

  test('createDevice with an unknown kind', async () => {
    await expectGrngRejection(() => createDevice({ kind: 'tpu' } as unknown as DeviceOptions), {
      op: 'createDevice',
      mentions: ['tpu'],
      hint: /use 'webgpu' or 'cpu'/,
    });
  });

  test('jit given arrays whose shapes do not fit the function', async () => {
    const device = await createDevice({ kind: 'cpu' });
    const f = jit((x: Tensor, y: Tensor) => matmul(x, y), { device });
    // The same function works for a fitting signature, then refuses the mismatched one.
    const ok = await f(
      array([
        [1, 2, 3],
        [4, 5, 6],
      ]),
      array([[1], [1], [1]]),
    );
    expect(Array.from(await ok.read())).toEqual([6, 15]);
    // The error names jit's arguments (issue 3) and keeps the refusing op's own message.
    await expectGrngRejection(
      () =>
        f(
          array([
            [1, 2, 3],
            [4, 5, 6],
          ]),
          array([[1, 1, 1]]),
        ),
      {
        op: 'jit',
        mentions: [
          'argument 0: f32[2, 3]',
          'argument 1: f32[1, 3]',
          'matmul: inner dimensions differ',
        ],
        hint: /transpose/,
      },
    );
  });

  test('jit given a non-array argument', async () => {
    const device = await createDevice({ kind: 'cpu' });
    const f = jit((x: Tensor) => x.exp(), { device });
    await expectGrngRejection(() => f('abc' as unknown as number), {
      op: 'jit',
      mentions: ['string'],
      hint: /array\(/,
    });
  });

  test('jit given fewer arguments than the function takes', async () => {
    const device = await createDevice({ kind: 'cpu' });
    const f = jit((x: Tensor, y: Tensor) => add(x, y), { device });
    const call = f as (x: unknown) => Promise<unknown>;
    // A helpful message names jit (not an op deep inside the trace), the shape of what was given,
    // and the arity.
    await expectGrngRejection(
      () =>
        call(
          array([
            [1, 2, 3],
            [4, 5, 6],
          ]),
        ),
      { op: 'jit', mentions: ['[2, 3]', '2'], hint: /argument/ },
    );
  });

  test('jit given an array from another device', async () => {
    const cpu = await createDevice({ kind: 'cpu' });
    const other = await createDevice({ kind: 'cpu', precision: 'f32' });
    const fromOther = await jit((x: Tensor) => x.exp(), { device: other })(array([1, 2]));
    const f = jit((x: Tensor) => x.exp(), { device: cpu });
    await expectGrngRejection(() => f(fromOther), {
      op: 'jit',
      mentions: ['float32'],
      hint: /read it back with await x\.read\(\) first/,
    });
  });
});
