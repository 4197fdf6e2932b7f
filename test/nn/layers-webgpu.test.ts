// The transformer and convolution layers compiled to WGSL on WebGPU against the float32
// interpreter: an encoder block (layer norm, attention with and without the causal mask, exact
// gelu), a convolution with stride and padding followed by max and average pooling, and an
// embedding lookup — each as the value of Σ w ⊙ layer(θ, x) and its gradient with respect to every
// parameter and input, on random values.
//
// Bound: |gpu − ref| ≤ TOL·(1 + |ref|). Both round every operation to float32; they differ in
// summation order (dot products and row sums of ≤ 64 terms: ≤ 64·2⁻²⁴ ≈ 4e-6 relative) and in
// exp/erf/rsqrt, within a few ulps on the software adapters. The chains here are ≤ ~12 such stages
// with O(1) gains (softmax and layer norm are 1-Lipschitz in their inputs' scale, |w| ≤ 1, inputs
// of unit spread), so errors stay ≲ 12·4e-6·(a few) ≈ 1e-4 in the worst case: TOL = 2e-4 (the
// measured worst is logged). A wrong lowering (an index, a mask, a reduction axis) errs by O(1).
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { constant, grad, jit, mul, nn, sum, type DeviceArray, type Tensor } from '../../index.js';
import { HostArray } from '../../core/host-array.js';
import { flattenTree } from '../../core/tree.js';
import { CpuDevice } from '../../runtime/cpu-device.js';
import { gpuDevice } from '../support/gpu.js';
import { int, prng, seedArb, uniform } from '../support/random.js';

const TOL = 2e-4;

interface Case {
  readonly shapes: readonly (readonly number[])[];
  /** ids of an embedding lookup (i32), when the layer takes them. */
  readonly ids?: { readonly shape: readonly number[]; readonly vocab: number };
  apply(xs: readonly Tensor[], ids?: Tensor): Tensor;
  readonly outShape: readonly number[];
}

const isHost = (x: unknown): x is HostArray => x instanceof HostArray;

function modelCase(
  layer: { init(seed: number): unknown; apply(params: never, x: Tensor): Tensor },
  xShape: readonly number[],
  outShape: readonly number[],
): Case {
  const { leaves, rebuild } = flattenTree('test', layer.init(0), isHost, 'an array');
  return {
    shapes: [...leaves.map((l) => l.shape), xShape],
    apply: (xs) => layer.apply(rebuild(xs.slice(0, -1)) as never, xs[xs.length - 1]),
    outShape,
  };
}

const CASES: Record<string, Case> = {
  'encoder block': modelCase(nn.encoderBlock(8, 2, { mlpDim: 16 }), [2, 5, 8], [2, 5, 8]),
  'causal encoder block': modelCase(
    nn.encoderBlock(8, 2, { mlpDim: 16, causal: true }),
    [2, 5, 8],
    [2, 5, 8],
  ),
  'conv2d, max and average pooling': (() => {
    const conv = nn.conv2d(2, 3, 3, { stride: 1, padding: 1 });
    const layer = {
      init: (s: number) => conv.init(s),
      apply: (p: never, x: Tensor) => nn.avgPool2d(nn.maxPool2d(nn.relu(conv.apply(p, x)), 2), 3),
    };
    return modelCase(layer, [2, 6, 6, 2], [2, 1, 1, 3]);
  })(),
  'strided conv2d': modelCase(
    nn.conv2d(2, 4, [3, 2], { stride: [2, 1] }),
    [1, 7, 5, 2],
    [1, 3, 4, 4],
  ),
  'embedding + layer norm': (() => {
    const table = nn.embedding(11, 6);
    const norm = nn.layerNorm(6);
    return {
      shapes: [[11, 6], [6], [6]],
      ids: { shape: [3, 4], vocab: 11 },
      apply: ([weight, w, b]: readonly Tensor[], ids?: Tensor) =>
        norm.apply({ weight: w, bias: b }, table.apply({ weight }, ids as Tensor)),
      outShape: [3, 4, 6],
    };
  })(),
};

describe('transformer and convolution layers: WebGPU == float32 interpreter', () => {
  for (const [name, c] of Object.entries(CASES)) {
    test(`${name}: value and gradient`, async () => {
      const gpu = await gpuDevice();
      const cpu = new CpuDevice('f32');
      let worst = 0;
      await fc.assert(
        fc.asyncProperty(seedArb, async (seed) => {
          const rng = prng(seed);
          const weights = uniform(
            rng,
            c.outShape.reduce((a, d) => a * d, 1),
          );
          const f = (...args: Tensor[]): Tensor[] => {
            const floats = args.slice(0, c.shapes.length);
            const ids = c.ids === undefined ? undefined : args[c.shapes.length];
            const objective = (...xs: Tensor[]) =>
              sum(mul(c.apply(xs, ids), constant(weights, c.outShape)));
            const grads = grad(
              objective,
              floats.map((_, i) => i),
            )(...floats) as Tensor[];
            return [objective(...floats), ...grads];
          };
          const values = c.shapes.map((s) =>
            uniform(
              rng,
              s.reduce((a, d) => a * d, 1),
            ),
          );
          const ids =
            c.ids === undefined
              ? []
              : [Float64Array.from({ length: 12 }, () => int(rng, 0, (c.ids?.vocab ?? 1) - 1))];
          const upload = (device: CpuDevice | typeof gpu) => [
            ...values.map((v, i) => device.upload(v, c.shapes[i], 'f32')),
            ...ids.map((v) => device.upload(v, c.ids?.shape ?? [], 'i32')),
          ];
          const read = async (out: unknown) =>
            Promise.all((out as DeviceArray[]).map((a) => a.read()));
          const want = await read(await jit(f, { device: cpu })(...upload(cpu)));
          const got = await read(await jit(f, { device: gpu })(...upload(gpu)));
          want.forEach((w, k) =>
            w.forEach((v, i) => {
              const error = Math.abs(got[k][i] - v) / (1 + Math.abs(v));
              worst = Math.max(worst, error);
              expect(error, `${name} output ${k}[${i}]`).toBeLessThanOrEqual(TOL);
            }),
          );
        }),
        { numRuns: 5 },
      );
      console.log(`${name}: worst |gpu − ref| / (1 + |ref|) = ${worst.toExponential(2)}`);
    });
  }
});
