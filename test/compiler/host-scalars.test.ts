// Per-call scalar work on the host (compiler/hoist-host-scalars.ts): a one-element value computed
// from host numbers alone (a bias correction 1 − β^t) is evaluated once per call by the runtime
// and read by kernels from the scalars uniform.
//
// The rewrite is checked on the graph: the rewritten outputs, fed the hoisted values, equal the
// original outputs exactly under the interpreter's f32 arithmetic (the same operations in the same
// order, so bit for bit). Then on the device: an Adam-shaped update with host numbers compiles
// without `pow` in its kernel and agrees with a float64 reference, and the same program with the
// step as an array of data (no host value) computes the same result with the work in the kernel.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { add, bitXor, cast, div, input, mul, pow, sqrt, sub, type Tensor } from '../../index.js';
import { hoistHostScalars } from '../../compiler/hoist-host-scalars.js';
import { topoSort, type Node } from '../../core/ir/node.js';
import { interpret } from '../../runtime/interpreter.js';
import { gpuDevice } from '../support/gpu.js';

const beta = input('beta', [], 'f32');
const step = input('t', [], 'f32');
const x = input('x', [8], 'f32');
/** x / (1 − β^t) + x·(1 − β): one costly value and one cheap one. */
const corrected = (b: Tensor, t: Tensor, v: Tensor) =>
  add(div(v, sub(1, pow(b, t))), mul(v, sub(1, b)));

const known = (...ts: Tensor[]) => new Set(ts.map((t) => t.node.id));
const ops = (outputs: readonly Node[]) => new Set(topoSort(outputs).map((n) => n.op));

describe('hoisting scalar work to the host', () => {
  test('a value of host numbers is read from an input of its own; the rest stays', () => {
    const out = corrected(beta, step, x).node;
    const { outputs, hoisted } = hoistHostScalars([out], known(beta, step), 16);
    expect(hoisted).toHaveLength(1);
    // The correction itself, or a movement of it (a reshape for broadcasting).
    expect(topoSort([hoisted[0].value])).toContain(sub(1, pow(beta, step)).node);
    expect(ops(outputs).has('pow')).toBe(false);
    // 1 − β costs one subtraction: cheaper in the kernel than a uniform read.
    expect(ops(outputs).has('sub')).toBe(true);
  });

  test('nothing moves when an input is not known on the host', () => {
    const out = corrected(beta, step, x).node;
    const { outputs, hoisted } = hoistHostScalars([out], known(beta), 16);
    expect(hoisted).toHaveLength(0);
    expect(outputs[0]).toBe(out);
  });

  test('bit operations (random-number hashing) stay on the device', () => {
    const k = input('k', [], 'i32');
    const hashed = cast(bitXor(mul(k, 747796405), 2891336453 | 0), 'f32');
    const out = mul(x, sqrt(add(hashed, 1))).node;
    expect(hoistHostScalars([out], known(k), 16).hoisted).toHaveLength(0);
  });

  test('an output computed from host numbers alone is still returned from the device', () => {
    const bias = sub(1, pow(beta, step));
    const { outputs, hoisted } = hoistHostScalars(
      [bias.node, mul(x, bias).node],
      known(beta, step),
      16,
    );
    expect(outputs[0]).toBe(bias.node);
    expect(hoisted).toHaveLength(1);
    expect(topoSort([hoisted[0].value])).toContain(bias.node);
    expect(topoSort(outputs).some((n) => n.op === 'pow')).toBe(true);
  });

  test('rewritten outputs fed the hoisted values equal the originals bit for bit (f32)', () => {
    const out = corrected(beta, step, x).node;
    const { outputs, hoisted } = hoistHostScalars([out], known(beta, step), 16);
    fc.assert(
      fc.property(
        fc.double({ min: 0.5, max: 0.9999, noNaN: true }),
        fc.integer({ min: 1, max: 10_000 }),
        fc.array(fc.double({ min: -10, max: 10, noNaN: true }), { minLength: 8, maxLength: 8 }),
        (b, t, v) => {
          const given = new Map<string, Float64Array>([
            ['beta', Float64Array.of(b)],
            ['t', Float64Array.of(t)],
            ['x', Float64Array.from(v)],
          ]);
          const f32 = { precision: 'f32' } as const;
          const values = interpret(
            hoisted.map((h) => h.value),
            given,
            f32,
          );
          hoisted.forEach((h, i) => given.set(h.placeholder.attrs.name, values[i]));
          expect(interpret(outputs, given, f32)[0]).toEqual(interpret([out], given, f32)[0]);
        },
      ),
    );
  });
});

describe('host scalars on the device', () => {
  test('an Adam-shaped update: no pow in the kernel, and the same result either way', async () => {
    const gpu = await gpuDevice();
    const n = 8;
    const b = 0.9;
    const t = 7;
    const v = Float64Array.from({ length: n }, (_, i) => Math.sin(i + 1));
    const out = [corrected(beta, step, x).node];
    const shaders = () => [
      ...(gpu as unknown as { pipelines: Map<string, unknown> }).pipelines.keys(),
    ];
    const before = new Set(shaders());
    const number = (value: number) =>
      gpu.uploadAll([
        { data: Float64Array.of(value), shape: [], dtype: 'f32', hostNumber: true },
      ])[0];
    // Numbers passed from the host carry their values: the bias correction is hoisted.
    const hosted = await gpu.execute(
      out,
      new Map([
        ['beta', number(b)],
        ['t', number(t)],
        ['x', gpu.upload(v, [n], 'f32')],
      ]),
    );
    const added = shaders().filter((code) => !before.has(code));
    expect(added.length).toBeGreaterThan(0);
    expect(added.some((code) => /\bpow\(/.test(code))).toBe(false);
    // An array of data (not a number) has no host value: the kernel computes the correction.
    const inKernel = await gpu.execute(
      out,
      new Map([
        ['beta', number(b)],
        ['t', gpu.upload(Float64Array.of(t), [], 'f32')],
        ['x', gpu.upload(v, [n], 'f32')],
      ]),
    );
    expect(shaders().some((code) => !before.has(code) && /\bpow\(/.test(code))).toBe(true);
    const [a, c] = [await hosted[0].read(), await inKernel[0].read()];
    const bias = 1 - b ** t;
    for (let i = 0; i < n; i++) {
      const ref = v[i] / bias + v[i] * (1 - b);
      // Both in f32: the host's 1 − β^t is correctly rounded, the kernel's pow within a few
      // ULP (WGSL's exp2(t·log2 β) form); with the division and the sum, |Δ| ≤ 16 ULP of the
      // terms' magnitudes (|x/bias| + |x(1 − β)|).
      const scale = Math.abs(v[i] / bias) + Math.abs(v[i] * (1 - b));
      expect(Math.abs(a[i] - ref)).toBeLessThanOrEqual(16 * 2 ** -24 * scale);
      expect(Math.abs(c[i] - ref)).toBeLessThanOrEqual(16 * 2 ** -24 * scale);
    }
  });

  test('hoisted values beside a scalar of data: each call sees its own values', async () => {
    const gpu = await gpuDevice();
    const scale = input('scale', [], 'f32');
    const out = [mul(corrected(beta, step, x), scale).node];
    const v = Float64Array.from({ length: 8 }, (_, i) => i - 3.5);
    const number = (value: number) =>
      gpu.uploadAll([
        { data: Float64Array.of(value), shape: [], dtype: 'f32', hostNumber: true },
      ])[0];
    // Back to back, without waiting: every call's cells (host-filled and copied) are its own.
    const calls = [1, 2, 3].map((t) =>
      gpu.execute(
        out,
        new Map([
          ['beta', number(0.5)],
          ['t', number(t)],
          ['scale', gpu.upload(Float64Array.of(t + 1), [], 'f32')],
          ['x', gpu.upload(v, [8], 'f32')],
        ]),
      ),
    );
    for (const [k, call] of calls.entries()) {
      const t = k + 1;
      const got = await (await call)[0].read();
      // 1 − 0.5^t, x·0.5 and the scale t + 1 are exact in f32 for these x and t; the kernel
      // multiplies by 1/(1 − 0.5^t) (WGSL: within 2.5 ULP), then rounds the product, the sum and
      // the scaling (0.5 ULP each): ≤ 4 ULP (4·2^-24) of |x|(1/(1 − 0.5^t) + 1/2)(t + 1).
      for (let i = 0; i < 8; i++) {
        const ref = (v[i] / (1 - 0.5 ** t) + v[i] * 0.5) * (t + 1);
        const ulp = 4 * 2 ** -24 * Math.abs(v[i]) * (1 / (1 - 0.5 ** t) + 0.5) * (t + 1);
        expect(Math.abs(got[i] - ref)).toBeLessThanOrEqual(ulp);
      }
    }
  });
});
