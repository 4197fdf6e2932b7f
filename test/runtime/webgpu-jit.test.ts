// jit on WebGPU: compiled once per signature, scalars are inputs (never baked into the code),
// results stay on the device until read, and bad calls are GrngErrors naming the arguments.
import { describe, expect, test } from 'vitest';
import {
  add,
  array,
  createDevice,
  div,
  GrngError,
  jit,
  matmul,
  mul,
  sqrt,
  sub,
  sum,
  type DeviceArray,
  type Tensor,
} from '../../index.js';
import type { GpuArray } from '../../runtime/webgpu-device.js';
import { gpuDevice } from '../support/gpu.js';

describe('jit on WebGPU', () => {
  test(
    'calling twice compiles once; changing a scalar hyperparameter does ' + 'not recompile',
    async () => {
      const gpu = await gpuDevice();
      let traces = 0;
      const step = jit(
        (w: Tensor, g: Tensor, lr: Tensor) => {
          traces++;
          return sub(w, mul(lr, g));
        },
        { device: gpu },
      );
      const before = gpu.programCount;
      const w = array([1, 2, 3]);
      const g = array([0.5, -1, 2]);
      const a = await step(w, g, 0.5);
      const b = await step(w, g, 0.25);
      expect(Array.from(await a.read())).toEqual([0.75, 2.5, 2]);
      expect(Array.from(await b.read())).toEqual([0.875, 2.25, 2.5]);
      expect(traces).toBe(1);
      expect(gpu.programCount - before).toBe(1);
    },
  );

  test(
    'the compile cache is content-addressed: separately jitted copies of a ' +
      'computation compile once',
    async () => {
      const gpu = await gpuDevice();
      const before = gpu.programCount;
      const x = array([0.5, -1, 2]);
      // Two closures, two jit calls, the same math: one program.
      const a = await jit((t: Tensor) => sqrt(add(mul(t, t), 3.25)), { device: gpu })(x);
      const b = await jit((u: Tensor) => sqrt(add(mul(u, u), 3.25)), { device: gpu })(x);
      expect(gpu.programCount - before).toBe(1);
      expect(Array.from(await b.read())).toEqual(Array.from(await a.read()));
      // Different math is a different program.
      await jit((t: Tensor) => sqrt(add(mul(t, t), 3.5)), { device: gpu })(x);
      expect(gpu.programCount - before).toBe(2);
    },
  );

  test('device results feed the next call without a host round trip', async () => {
    const gpu = await gpuDevice();
    const double = jit((x: Tensor) => mul(x, 2), { device: gpu });
    let x = await double(array([1, -2]));
    for (let i = 0; i < 3; i++) x = await double(x);
    expect(Array.from(await x.read())).toEqual([16, -32]);
  });

  test('a call that does not fit the function names its arguments', async () => {
    const gpu = await gpuDevice();
    const f = jit((a: Tensor, b: Tensor) => sum(matmul(a, b)), { device: gpu });
    const err = await f(array([[1, 2, 3]]), array([[1, 2]])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GrngError);
    expect((err as GrngError).message).toContain('argument 1: f32[1, 2]');
  });
});

/** An Adam-style step: the kind of update donation exists for. */
function adamStep(theta: Tensor, m: Tensor, v: Tensor, g: Tensor): Tensor[] {
  const m1 = add(mul(m, 0.9), mul(g, 0.1));
  const v1 = add(mul(v, 0.999), mul(mul(g, g), 0.001));
  return [sub(theta, mul(0.01, div(m1, add(sqrt(v1), 1e-8)))), m1, v1];
}

describe('donation (in-place updates)', () => {
  test('donated parameters and state are updated in place and match the interpreter', async () => {
    const gpu = await gpuDevice();
    const cpu = await createDevice({ kind: 'cpu', precision: 'f32' });
    const init = [
      [0.5, -1, 2, 0.25],
      [0, 0, 0, 0],
      [0, 0, 0, 0],
    ];
    const grads = [array([0.1, -0.2, 0.3, 0.4]), array([-0.5, 0.5, 0.05, 0])];
    const step = jit(adamStep, { device: gpu, donate: [0, 1, 2] });
    const reference = jit(adamStep, { device: cpu });
    let state = init.map((x) => gpu.upload(Float64Array.from(x), [4], 'f32')) as DeviceArray[];
    let want = init.map((x) => cpu.upload(Float64Array.from(x), [4], 'f32')) as DeviceArray[];
    for (let t = 0; t < 6; t++) {
      const before = state.map((a) => (a as GpuArray).buffer);
      const next = (await step(state[0], state[1], state[2], grads[t % 2])) as DeviceArray[];
      // The same buffers hold the new values: nothing was allocated for θ, m, v.
      expect(next.map((a) => (a as GpuArray).buffer)).toEqual(before);
      for (const old of state) expect(old.consumed).toBe(true);
      state = next;
      want = (await reference(want[0], want[1], want[2], grads[t % 2])) as DeviceArray[];
    }
    for (let k = 0; k < 3; k++) {
      const got = await state[k].read();
      const ref = await want[k].read();
      // WGSL's sqrt and division are within ~3 ULP of the interpreter's correctly rounded ones;
      // six steps of an update with O(1) factors: 1e-6 relative is ~16 ULP.
      got.forEach((x, i) =>
        expect(Math.abs(x - ref[i])).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(ref[i]))),
      );
    }
  });

  test('a donated array cannot be read or passed again, on the GPU and on the CPU', async () => {
    for (const device of [await gpuDevice(), await createDevice({ kind: 'cpu' })]) {
      const double = jit((x: Tensor) => mul(x, 2), { device, donate: 0 });
      const x = device.upload(Float64Array.of(1, 2), [2], 'f32');
      const y = await double(x);
      expect(Array.from(await y.read())).toEqual([2, 4]);
      await expect(x.read()).rejects.toBeInstanceOf(GrngError);
      await expect(double(x)).rejects.toBeInstanceOf(GrngError);
    }
  });

  test('donating an array that is also passed at another position is refused', async () => {
    const gpu = await gpuDevice();
    const f = jit((a: Tensor, b: Tensor) => add(a, b), { device: gpu, donate: 0 });
    const x = gpu.upload(Float64Array.of(1, 2), [2], 'f32');
    const err = await f(x, x).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GrngError);
    expect((err as GrngError).message).toContain('donated but also passed');
  });
});
