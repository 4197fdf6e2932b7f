// jit on WebGPU: compiled once per signature, scalars are inputs (never baked into the code),
// results stay on the device until read, and bad calls are GrngErrors naming the arguments.
import { describe, expect, test } from 'vitest';
import { array, GrngError, jit, matmul, mul, sub, sum, type Tensor } from '../../index.js';
import { gpuDevice } from '../support/gpu.js';

describe('jit on WebGPU', () => {
  test('calling twice compiles once; changing a scalar hyperparameter does not recompile', async () => {
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
  });

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
