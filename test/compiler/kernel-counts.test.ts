// Pinned kernel counts (as tinygrad pins them): a change that splits what should be one kernel,
// or merges what must not be, shows up here. Counts come from compileProgram; no GPU needed.
import { describe, expect, test } from 'vitest';
import {
  add,
  constant,
  crossEntropy,
  div,
  exp,
  eye,
  grad,
  input,
  matmul,
  mul,
  relu,
  softmax,
  sqrt,
  square,
  sub,
  sum,
  take,
  tanh,
  valueAndGrad,
  nn,
  isTensor,
  type Tensor,
} from '../../index.js';
import { HostArray } from '../../core/host-array.js';
import { prngKey, rademacher } from '../../dsl/random.js';
import { flattenTree } from '../../core/tree.js';

/** Dispatches of one encoder block's forward + backward below, and how many are matmuls. */
const ENCODER_BLOCK = { total: 56, matmul: 24 };
/** Dispatches of the 2-layer MLP training step below (see its comment for the breakdown). */
const MLP_STEP_KERNELS = 9;
import { packedInputs } from '../../compiler/memory/layout.js';
import { compileProgram, type KernelLimits } from '../../compiler/program.js';
import { interpret } from '../../runtime/interpreter.js';
import { gpuDevice } from '../support/gpu.js';
import { prng, uniform } from '../support/random.js';

// WebGPU's default limits (what every adapter offers).
const DEFAULTS: KernelLimits = {
  maxStorageBuffersPerShaderStage: 8,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
};
const kernels = (outs: readonly Tensor[], limits = DEFAULTS) =>
  compileProgram(
    outs.map((t) => t.node),
    { limits },
  );

/** AdamW (decoupled weight decay 0.01, β = 0.9, 0.999): the new θ, m and v. */
function adamw(theta: Tensor, m: Tensor, v: Tensor, g: Tensor, lr: Tensor | number): Tensor[] {
  const m1 = add(mul(m, 0.9), mul(g, 0.1));
  const v1 = add(mul(v, 0.999), mul(square(g), 0.001));
  return [sub(theta, mul(lr, add(div(m1, add(sqrt(v1), 1e-8)), mul(theta, 0.01)))), m1, v1];
}

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
    // x @ wᵀ reads w through the transposed index; + c broadcasts, fused as the matmul's epilogue.
    expect(kernels([add(matmul(x, w.mT), input('c', [5]))]).kernels).toHaveLength(1);
    // A broadcast add feeding a reduction fuses into the reduction.
    expect(kernels([sum(add(x, b))]).kernels).toHaveLength(1);
  });

  test('an epilogue doing integer arithmetic (random bits) is not fused; I − AX still is', () => {
    // Per component it would repeat the integer chain for each of the tile's 256 outputs.
    const [a, x] = [input('a', [16, 16]), input('x', [16, 16])];
    const program = kernels([mul(matmul(a, x), rademacher(prngKey(3), [16, 16]))]);
    expect(program.kernels.map((k) => k.segments[0].roots[0].op)).toEqual(['matmul', 'mul']);
    // an identity from iota is compared indices, not arithmetic; a bias add is plain f32
    expect(kernels([sub(eye(16), matmul(a, x))]).kernels).toHaveLength(1);
    expect(kernels([add(matmul(a, x), input('b', [16]))]).kernels).toHaveLength(1);
  });

  test('a Gram matrix aᵀa of a computed a reads a where it is stored: no transposed copy', () => {
    // a = tanh(x) is materialized once as the right operand; aᵀ is a view of it, whichever
    // operand the partitioner looks at first.
    const a = tanh(input('x', [16, 12]));
    const program = kernels([matmul(a.mT, a)]);
    expect(program.kernels).toHaveLength(2);
    expect(program.kernels.map((k) => k.segments[0].roots[0].op)).toEqual(['tanh', 'matmul']);
  });

  test(
    'softmax over the last axis is 2 kernels (max and sum of exp together, ' + 'then normalize)',
    () => {
      const program = kernels([softmax(input('x', [8, 10]))]);
      expect(program.kernels).toHaveLength(2);
      // The sum reads the max from a register of the same invocation, not from a buffer.
      expect(program.kernels[0].segments[0].roots.map((r) => r.op)).toEqual([
        'reduceMax',
        'reduceSum',
      ]);
    },
  );

  test('an AdamW update of one parameter (θ, m, v) is one multi-output kernel', () => {
    const [theta, m, v, g] = ['theta', 'm', 'v', 'g'].map((n) => input(n, [17, 5]));
    const program = kernels(adamw(theta, m, v, g, input('lr', [])));
    expect(program.kernels).toHaveLength(1);
    expect(program.kernels[0].segments[0].roots).toHaveLength(3);
  });

  test(
    'an AdamW update of 5 parameters of different shapes is one dispatch ' +
      'when the arrays are packed',
    () => {
      const shapes = [[17, 5], [5], [64, 3, 3], [1], [257]];
      const state = ['theta', 'm', 'v', 'g'].map((name) =>
        shapes.map((s, i) => input(`${name}${i}`, s)),
      );
      const lr = input('lr', []);
      const outs = shapes.flatMap((_, i) =>
        adamw(state[0][i], state[1][i], state[2][i], state[3][i], lr),
      );
      // Packed as uploadAll packs them: θs in one buffer, ms in one, vs in one, gs in one, lr
      // alone.
      const layout = packedInputs([...state, [lr]].map((group) => group.map((t) => t.node)));
      const program = compileProgram(
        outs.map((t) => t.node),
        { limits: DEFAULTS, inputs: layout },
      );
      expect(program.kernels).toHaveLength(1);
      // one segment (θ, m, v together) per parameter
      expect(program.kernels[0].segments).toHaveLength(5);
      // Reads 5 input buffers and writes one results buffer: 6 bindings whatever the parameter
      // count.
      expect(program.kernels[0].source.bindings).toHaveLength(6);
      // With every array in a buffer of its own, 21 inputs cannot be bound at once (limit 8): the
      // update splits into dispatches that each fit.
      const separate = kernels(outs);
      expect(separate.kernels.length).toBeGreaterThan(1);
      for (const k of separate.kernels)
        expect(k.source.bindings.length).toBeLessThanOrEqual(
          DEFAULTS.maxStorageBuffersPerShaderStage,
        );
    },
  );

  test(
    'with maxMergedInvocations (CPU adapters) large updates get dispatches ' +
      'of their own, small ones share one',
    () => {
      const shapes = [[256, 784], [256], [256, 256], [256], [10, 256], [10]];
      const state = ['theta', 'm', 'v', 'g'].map((name) =>
        shapes.map((s, i) => input(`${name}${i}`, s)),
      );
      const outs = shapes.flatMap((_, i) =>
        adamw(state[0][i], state[1][i], state[2][i], state[3][i], input('lr', [])),
      );
      const layout = packedInputs(
        [...state, [input('lr', [])]].map((group) => group.map((t) => t.node)),
      );
      const compile = (maxMergedInvocations?: number) =>
        compileProgram(
          outs.map((t) => t.node),
          { limits: DEFAULTS, inputs: layout, maxMergedInvocations },
        );
      expect(compile().kernels).toHaveLength(1);
      // vec4 invocations: 50,176 and 16,384 alone; the two 256 biases (one segment, 64), 10×256
      // (640) and 10 (3) together.
      const split = compile(4096).kernels.map((k) =>
        k.segments.map((s) => s.roots[0].shape.join('×')),
      );
      expect(split).toEqual([['256×784'], ['256', '10×256', '10'], ['256×256']]);
    },
  );

  test('a 2-layer MLP forward + backward + AdamW step', () => {
    const params = {
      w1: input('w1', [4, 8]),
      b1: input('b1', [8]),
      w2: input('w2', [8, 3]),
      b2: input('b2', [3]),
    };
    const x = input('x', [16, 4]);
    const y = input('y', [16], 'i32');
    type Params = typeof params;
    const loss = (p: Params) =>
      crossEntropy(add(matmul(relu(add(matmul(x, p.w1), p.b1)), p.w2), p.b2), y);
    const [value, grads] = valueAndGrad(loss)(params);
    const outs: Tensor[] = [value];
    const keys = ['w1', 'b1', 'w2', 'b2'] as const;
    const moments = keys.map((k) => [
      input(`m_${k}`, params[k].shape),
      input(`v_${k}`, params[k].shape),
    ]);
    keys.forEach((k, i) =>
      outs.push(...adamw(params[k], moments[i][0], moments[i][1], grads[k], 1e-3)),
    );
    // Packed as a trainer keeps them: parameters in one buffer, m in one, v in one.
    const packed: Tensor[][] = [
      keys.map((k) => params[k]),
      moments.map((m) => m[0]),
      moments.map((m) => m[1]),
      [x],
      [y],
    ];
    const layout = packedInputs(packed.map((group) => group.map((t) => t.node)));
    const program = compileProgram(
      outs.map((t) => t.node),
      { limits: DEFAULTS, inputs: layout },
    );
    // Pinned as built today (9 dispatches; 11 before matmul epilogues fused): 0 x·w1 with
    // relu(· + b1) as its epilogue, storing both (relu's derivative reads x·w1); 1 h·w2; 2 the row
    // max with the two row sums chained to it beside a row sum of the labels' one-hot; 3 the batch
    // mean beside the logits' cotangent; 4 cotangent·w2ᵀ with the relu mask as its epilogue (the
    // hidden cotangent); 5 xᵀ·it (w1's gradient); 6 the b1 and b2 sums; 7 hᵀ·cotangent (w2's
    // gradient); 8 the loss's negation and all 4 AdamW updates (θ, m, v each): one vec4 dispatch.
    expect(program.kernels.length).toBe(MLP_STEP_KERNELS);
    const last = program.kernels[program.kernels.length - 1];
    expect(last.segments.map((s) => s.roots.length)).toEqual([1, 3, 3, 3, 3]);
  });

  test('one pre-LN encoder block forward + backward (B = 64, T = 16, d = 64, 4 heads)', () => {
    const block = nn.encoderBlock(64, 4);
    const { leaves, rebuild } = flattenTree(
      'test',
      block.init(0),
      (x): x is HostArray => x instanceof HostArray,
      'an array',
    );
    const params = rebuild(leaves.map((l, i) => input(`p${i}`, l.shape))) as never;
    const x = input('x', [64, 16, 64]);
    const [value, grads] = valueAndGrad((p: never) => sum(mul(block.apply(p, x), 0.5)))(params);
    const outs = [value, ...flattenTree('test', grads, isTensor, 'a Tensor').leaves];
    const program = kernels(outs);
    const kinds = program.kernels.map((k) =>
      k.segments.some((s) => s.matmul !== undefined || s.roots.some((r) => r.op === 'matmul'))
        ? 'matmul'
        : k.segments.some((s) => s.roots.some((r) => r.op === 'reduceSum' || r.op === 'reduceMax'))
          ? 'reduce'
          : 'elementwise',
    );
    const count = (kind: string) => kinds.filter((k) => k === kind).length;
    // Pinned as built today. 24 matmuls: forward q, k, v, o, q·kᵀ, P·v, fc1, fc2 (8); backward
    // two per dense layer (input and weight cotangents, 12) and two each through q·kᵀ and P·v (4).
    // The reductions are the two layer norms' row statistics and their backward sums, the
    // softmax's row max and sum and its backward row sum, and the bias and norm-parameter sums.
    expect({ total: program.kernels.length, matmul: count('matmul') }).toEqual(ENCODER_BLOCK);
  });

  test('gradient of a one-layer relu network', () => {
    const w = input('w', [3, 2]);
    const x = input('x', [4, 3]);
    const dw = grad((v: Tensor) => sum(relu(matmul(x, v))))(w);
    // Forward matmul with the relu-masked cotangent (a mul) as its epilogue, materialized because
    // it is more than index arithmetic and the backward matmul would recompute it k times; then xᵀ
    // · it.
    const program = kernels([dw]);
    const described = program.kernels.map((k) =>
      k.segments
        .map(
          (s) => `${s.matmul === undefined ? '' : 'matmul⇒'}${s.roots.map((r) => r.op).join('+')}`,
        )
        .join(' | '),
    );
    expect(described).toEqual(['matmul⇒mul', 'matmul']);
  });

  test('a gather is inlined into its consumer, and materialized as a matmul operand', () => {
    const table = input('table', [50, 8]);
    const ids = input('ids', [4, 6], 'i32');
    const w = input('w', [8, 3]);
    // take + scale + tanh: one elementwise kernel whose loads index the table by the ids' values.
    const fused = kernels([tanh(mul(take(table, ids), 2))]);
    expect(fused.kernels).toHaveLength(1);
    expect(fused.kernels[0].source.code).toMatch(/clamp\(/);
    // As a matmul operand the gathered rows are not a strided view of a buffer: stored first.
    const described = kernels([matmul(take(table, ids), w)]).kernels.map((k) =>
      k.segments.map((s) => s.roots.map((r) => r.op).join('+')).join(' | '),
    );
    expect(described).toEqual(['gather', 'matmul']);
  });

  test('the table gradient of a lookup is a one-hot matmul', () => {
    const table = input('table', [50, 8]);
    const ids = input('ids', [4, 6], 'i32');
    const dTable = grad((t: Tensor) => sum(tanh(take(t, ids))))(table);
    const described = kernels([dTable]).kernels.map((k) =>
      k.segments
        .map(
          (s) => `${s.matmul === undefined ? '' : 'matmul⇒'}${s.roots.map((r) => r.op).join('+')}`,
        )
        .join(' | '),
    );
    // The one-hot [50, 24] and the cotangent [24, 8] (1 − tanh², more than index arithmetic over a
    // buffer) are matmul operands, stored by one dispatch of two segments; then their product.
    expect(described).toEqual(['cast | reshape', 'matmul']);
  });

  test('a root reading a donated table at gathered rows is not stored in place', () => {
    const table = input('table', [6, 4]);
    const reversed = constant([5, 4, 3, 2, 1, 0], [6], 'i32');
    const donated = new Set([table.node.id]);
    const compile = (out: Tensor) =>
      compileProgram([out.node], { limits: DEFAULTS, donated }).kernels.flatMap((k) => [
        ...k.aliases.values(),
      ]);
    // E + 1 reads E at its own element only: in place. E + take(E, reversed) reads other rows,
    // which other invocations would already have overwritten.
    expect(compile(add(table, 1))).toHaveLength(1);
    expect(compile(add(table, take(table, reversed)))).toHaveLength(0);
  });

  test('a kernel never binds more storage buffers than the stage allows', async () => {
    const names = Array.from({ length: 20 }, (_, i) => `x${i}`);
    const xs = names.map((n) => input(n, [5]));
    let total: Tensor = mul(xs[0], xs[0]);
    for (const x of xs.slice(1)) total = add(total, mul(x, x));
    const limits = { ...DEFAULTS, maxStorageBuffersPerShaderStage: 4 };
    const program = kernels([total], limits);
    for (const k of program.kernels) expect(k.source.bindings.length).toBeLessThanOrEqual(4);
    expect(program.kernels.length).toBeGreaterThan(1);
    // And the split program still computes the sum of squares (exact small integers in f32).
    const rng = prng(7);
    const values = names.map(() => uniform(rng, 5, -4, 4).map(Math.round));
    const want = interpret([total.node], new Map(names.map((n, i) => [n, values[i]] as const)))[0];
    const gpu = await gpuDevice();
    const [got] = await gpu.execute(
      [total.node],
      new Map(names.map((n, i) => [n, gpu.upload(values[i], [5], 'f32')] as const)),
    );
    expect(Array.from(await got.read())).toEqual(Array.from(want));
  });
});
