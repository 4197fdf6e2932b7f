// Pinned kernel counts (as tinygrad pins them): a change that splits what should be one kernel,
// or merges what must not be, shows up here. Counts come from compileProgram; no GPU needed.
import { describe, expect, test } from 'vitest';
import { add, crossEntropy, div, exp, grad, input, matmul, mul, relu, softmax, sqrt, square, sub, sum, tanh, valueAndGrad, type Tensor } from '../../index.js';

/** Kernels of the 2-layer MLP training step below (see its comment for the breakdown). */
const MLP_STEP_KERNELS = 18;
import { compileProgram, type KernelLimits } from '../../compiler/program.js';
import { interpret } from '../../runtime/interpreter.js';
import { gpuDevice } from '../support/gpu.js';
import { prng, uniform } from '../support/random.js';

// WebGPU's default limits (what every adapter offers).
const DEFAULTS: KernelLimits = { maxStorageBuffersPerShaderStage: 8, maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupSizeX: 256 };
const kernels = (outs: readonly Tensor[], limits = DEFAULTS) => compileProgram(outs.map((t) => t.node), { limits });

describe('kernel counts', () => {
  test('a chain of 10 elementwise ops is one kernel', () => {
    const x = input('x', [17, 3]);
    let y: Tensor = x;
    for (let i = 0; i < 10; i++) y = i % 2 === 0 ? tanh(mul(y, 1.5)) : exp(add(y, -0.25));
    expect(kernels([y]).kernels).toHaveLength(1);
  });

  test('broadcasts and transposes are index arithmetic: no copies', () => {
    const x = input('x', [4, 3]);
    const b = input('b', [3]);
    const w = input('w', [5, 3]);
    // x @ wᵀ reads w through the transposed index; + b broadcasts: matmul kernel + add kernel.
    expect(kernels([add(matmul(x, w.mT), input('c', [5]))]).kernels).toHaveLength(2);
    // A broadcast add feeding a reduction fuses into the reduction.
    expect(kernels([sum(add(x, b))]).kernels).toHaveLength(1);
  });

  test('softmax over the last axis is 2 kernels (max and sum of exp together, then normalize)', () => {
    const program = kernels([softmax(input('x', [8, 10]))]);
    expect(program.kernels).toHaveLength(2);
    // The sum reads the max from a register of the same invocation, not from a buffer.
    expect(program.kernels[0].plan.roots.map((r) => r.op)).toEqual(['reduceMax', 'reduceSum']);
  });

  test('an AdamW update of one parameter (θ, m, v) is one multi-output kernel', () => {
    const [theta, m, v, g] = ['theta', 'm', 'v', 'g'].map((n) => input(n, [17, 5]));
    const lr = input('lr', []);
    const m1 = add(mul(m, 0.9), mul(g, 0.1));
    const v1 = add(mul(v, 0.999), mul(mul(g, g), 0.001));
    const theta1 = sub(theta, mul(lr, add(div(m1, add(sqrt(v1), 1e-8)), mul(theta, 0.01))));
    const program = kernels([theta1, m1, v1]);
    expect(program.kernels).toHaveLength(1);
    expect(program.kernels[0].plan.roots).toHaveLength(3);
    // Horizontal fusion across parameters of different shapes (the issue's "5 tensors, 1
    // dispatch") is not built yet: each parameter is its own kernel today.
  });

  test('a 2-layer MLP forward + backward + AdamW step', () => {
    const params = { w1: input('w1', [4, 8]), b1: input('b1', [8]), w2: input('w2', [8, 3]), b2: input('b2', [3]) };
    const x = input('x', [16, 4]);
    const y = input('y', [16], 'i32');
    type Params = typeof params;
    const loss = (p: Params) => crossEntropy(add(matmul(relu(add(matmul(x, p.w1), p.b1)), p.w2), p.b2), y);
    const [value, grads] = valueAndGrad(loss)(params);
    const outs: Tensor[] = [value];
    for (const k of ['w1', 'b1', 'w2', 'b2'] as const) {
      const [theta, g]: Tensor[] = [params[k], grads[k]];
      const [m, v] = [input(`m_${k}`, theta.shape), input(`v_${k}`, theta.shape)];
      const m1 = add(mul(m, 0.9), mul(g, 0.1));
      const v1 = add(mul(v, 0.999), mul(square(g), 0.001));
      outs.push(sub(theta, mul(1e-3, add(div(m1, add(sqrt(v1), 1e-8)), mul(theta, 0.01)))), m1, v1);
    }
    // Pinned as built today (18). Forward: 2 matmuls, the relu output (a matmul operand), one
    // kernel for the row max with the two row sums chained to it, the batch mean, its negation.
    // Backward: a row sum, the logits' cotangent, 3 matmuls, the masked hidden cotangent, 2 bias
    // sums. Then one multi-output AdamW kernel per parameter (θ, m, v together); horizontal
    // fusion across parameters would turn those 4 into 1.
    expect(kernels(outs).kernels.length).toBe(MLP_STEP_KERNELS);
  });

  test('gradient of a one-layer relu network', () => {
    const w = input('w', [3, 2]);
    const x = input('x', [4, 3]);
    const dw = grad((v: Tensor) => sum(relu(matmul(x, v))))(w);
    // Forward matmul; the relu-masked cotangent (a mul) is materialized because it is more than
    // index arithmetic and the backward matmul would recompute it k times; then xᵀ · it.
    const program = kernels([dw]);
    expect(program.kernels.map((k) => k.plan.roots.map((r) => r.op).join('+'))).toEqual(['matmul', 'mul', 'matmul']);
  });

  test('a kernel never binds more storage buffers than the stage allows', async () => {
    const names = Array.from({ length: 20 }, (_, i) => `x${i}`);
    const xs = names.map((n) => input(n, [5]));
    let total: Tensor = mul(xs[0], xs[0]);
    for (const x of xs.slice(1)) total = add(total, mul(x, x));
    const limits = { ...DEFAULTS, maxStorageBuffersPerShaderStage: 4 };
    const program = kernels([total], limits);
    for (const k of program.kernels) expect(k.plan.inputs.length).toBeLessThanOrEqual(3);
    expect(program.kernels.length).toBeGreaterThan(1);
    // And the split program still computes the sum of squares (exact small integers in f32).
    const rng = prng(7);
    const values = names.map(() => uniform(rng, 5, -4, 4).map(Math.round));
    const want = interpret([total.node], new Map(names.map((n, i) => [n, values[i]] as const)))[0];
    const gpu = await gpuDevice();
    const [got] = await gpu.execute([total.node], new Map(names.map((n, i) => [n, gpu.upload(values[i], [5], 'f32')] as const)));
    expect(Array.from(await got.read())).toEqual(Array.from(want));
  });
});
