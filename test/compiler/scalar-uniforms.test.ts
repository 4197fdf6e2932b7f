// One-element inputs (learning rates, step counts, flags) are read from a uniform buffer that
// each call refreshes from the caller's arrays. These check every kind of kernel that can read
// one (vec4 and scalar elementwise, a matmul epilogue, a wide reduction's producer), every
// storage type (f32, i32, bool), and that back-to-back calls each see their own values.
//
// Bounds: elementwise results are the interpreter's f32 operations in the same order, so they
// agree exactly except where WGSL's tanh/exp may err by a few ULP (stated per case); matmul and
// sums accumulate sequentially as the interpreter does: |Δ| ≤ 8·2^-24·Σ|terms|.
import { describe, expect, test } from 'vitest';
import {
  add,
  cast,
  div,
  exp,
  input,
  matmul,
  mul,
  pow,
  relu,
  sub,
  sum,
  tanh,
  where,
  type Tensor,
} from '../../index.js';
import { interpret } from '../../runtime/interpreter.js';
import { gpuDevice } from '../support/gpu.js';
import { prng, uniform } from '../support/random.js';

const ULP = 2 ** -24;

interface Case {
  readonly name: string;
  readonly shapes: readonly (readonly number[])[];
  readonly dtypes: readonly ('f32' | 'i32' | 'bool')[];
  readonly build: (...xs: Tensor[]) => Tensor;
  /** Dispatches the program compiles to, and of them those that read the scalars. */
  readonly dispatches: number;
  /** The allowed |gpu − interpreter| at element i, from the reference and Σ|terms|. */
  readonly bound: (ref: Float64Array, abs: Float64Array) => (i: number) => number;
}

const cases: Case[] = [
  {
    name: 'vec4 elementwise update, f32 scalar',
    shapes: [[5, 64], []],
    dtypes: ['f32', 'f32'],
    build: (x, lr) => add(x, mul(lr, mul(x, x))),
    dispatches: 1,
    bound: () => () => 0,
  },
  {
    name: 'vec4 elementwise divided by math on scalars alone',
    shapes: [[5, 64], [], []],
    dtypes: ['f32', 'f32', 'f32'],
    build: (x, a, b) => div(x, add(mul(a, a), add(b, 2))),
    dispatches: 1,
    // The divisor (in [1, 4]) is computed in f32 as the interpreter does, exactly; the kernel then
    // multiplies by its reciprocal: 1/d within WGSL's 2.5 ULP, the product 0.5 ULP, against the
    // interpreter's correctly rounded quotient (0.5 ULP): ≤ 3.5 ULP of the quotient.
    bound: (ref) => (i) => 4 * ULP * Math.abs(ref[i]),
  },
  {
    name: 'scalar elementwise with an i32 step and a bool flag',
    shapes: [[7, 3], [], []],
    dtypes: ['f32', 'i32', 'bool'],
    build: (x, t, flag) => where(flag, mul(x, cast(t, 'f32')), tanh(x)),
    dispatches: 1,
    // tanh within 8 ULP of |tanh| ≤ 1 on the software adapters.
    bound: () => () => 8 * 2 ** -23,
  },
  {
    name: 'matmul with a scaled, shifted relu epilogue ([1, 1] scalar)',
    shapes: [
      [17, 33],
      [33, 20],
      [1, 1],
    ],
    dtypes: ['f32', 'f32', 'f32'],
    build: (a, b, s) => relu(add(matmul(a, b), s)),
    dispatches: 1,
    bound: (_r, abs) => (i) => 8 * ULP * abs[i],
  },
  {
    name: 'wide reduction of exp(x·s)',
    shapes: [[2, 4096], []],
    dtypes: ['f32', 'f32'],
    build: (x, s) => sum(exp(mul(x, s)), [1]),
    dispatches: 1,
    // exp errs by ≤ 3 + 2|x·s| ≤ 5 f32 ULP (≤ 10·2^-24 relative) per term (|x·s| ≤ 1); either
    // summation order (the GPU's lane tree, the interpreter's loop) errs by ≤ 4095·2^-24·Σ|terms|.
    bound: (_r, abs) => (i) => (10 + 2 * 4095) * ULP * abs[i],
  },
];

function values(
  seed: number,
  shape: readonly number[],
  dtype: 'f32' | 'i32' | 'bool',
): Float64Array {
  const n = shape.reduce((a, d) => a * d, 1);
  const rng = prng(seed);
  if (dtype === 'bool') return Float64Array.from({ length: n }, () => (rng() < 0.5 ? 0 : 1));
  if (dtype === 'i32') return Float64Array.from({ length: n }, () => Math.floor(rng() * 20) - 10);
  return uniform(rng, n, -1, 1);
}

describe('one-element inputs through the scalars uniform', () => {
  test(
    'in vec4 kernels, math on scalars alone is f32 once per invocation, ' +
      'and dividing by it multiplies',
    async () => {
      const gpu = await gpuDevice();
      // Adam's bias correction: m / (1 − β^t) with β and t per call.
      const [m, beta, t] = [input('m', [64]), input('beta', []), input('t', [])];
      const wgsl = gpu.explain([div(m, sub(1, pow(beta, t))).node], true);
      expect(wgsl).toContain('fn grng_pow_s(a: f32, b: f32) -> f32');
      expect(wgsl).not.toContain('fn grng_pow(');
      expect(wgsl).toMatch(/let (t\d+) = 1\.0f \/ t\d+;[\s\S]*vec4<f32>\(\1\)/);
      expect(wgsl.match(/ \/ /g)).toHaveLength(1); // the reciprocal; no vec4 division
    },
  );

  test.each(cases)(
    '$name: read from the uniform, matches the interpreter, each call its own values',
    async ({ shapes, dtypes, build, dispatches, bound }) => {
      const gpu = await gpuDevice();
      const names = shapes.map((_, i) => `u${i}`);
      const out = build(...shapes.map((s, i) => input(names[i], s, dtypes[i])));
      const plan = gpu.explain([out.node], true);
      expect(plan.startsWith(`${dispatches} dispatch`)).toBe(true);
      expect(plan).toContain('var<uniform> scalars');
      if (dispatches === 1) {
        // The scalars' own storage buffers are not bound: the other inputs and the results are.
        const arrays = shapes.filter((s) => s.reduce((a, d) => a * d, 1) > 1).length;
        expect(plan.match(/var<storage/g)?.length).toBe(arrays + 1);
      }

      // Two calls queued before either result is read: the second must not see the first's scalars,
      // nor the first the second's.
      const runs = [1, 2].map((call) => shapes.map((s, i) => values(call * 100 + i, s, dtypes[i])));
      const pending = await Promise.all(
        runs.map((vals) =>
          gpu.execute(
            [out.node],
            new Map(names.map((n, i) => [n, gpu.upload(vals[i], shapes[i], dtypes[i])] as const)),
          ),
        ),
      );
      for (const [k, vals] of runs.entries()) {
        const inputs = new Map(names.map((n, i) => [n, vals[i]] as const));
        const ref = interpret([out.node], inputs, { precision: 'f32' })[0];
        const abs = interpret(
          [out.node],
          new Map(
            names.map(
              (n, i) => [n, dtypes[i] === 'f32' ? vals[i].map(Math.abs) : vals[i]] as const,
            ),
          ),
        )[0].map(Math.abs);
        const got = await pending[k][0].read();
        const tol = bound(ref, abs);
        ref.forEach((r, i) =>
          expect(Math.abs(got[i] - r), `call ${k + 1}, element ${i}`).toBeLessThanOrEqual(tol(i)),
        );
      }
    },
  );
});
