// A user's optimizer written in the DSL (examples/lion.ts) runs compiled and matches a float64
// reference of its definition, written here in plain loops.
import { expect, test } from 'vitest';
import { array, compileOptimizer, createDevice, GrngError, type DeviceArray } from '../../index.js';
import { lion } from '../../examples/lion.js';
import { gpuDevice } from '../support/gpu.js';
import { prng, uniform } from '../support/random.js';

function lionReference(
  theta: Float64Array,
  grads: Float64Array[],
  h: { lr: number; beta1: number; beta2: number; weightDecay: number },
): Float64Array {
  const p = Float64Array.from(theta);
  const m = new Float64Array(p.length);
  for (const g of grads) {
    for (let i = 0; i < p.length; i++) {
      const c = h.beta1 * m[i] + (1 - h.beta1) * g[i];
      p[i] -= h.lr * (Math.sign(c) + h.weightDecay * p[i]);
      m[i] = h.beta2 * m[i] + (1 - h.beta2) * g[i];
    }
  }
  return p;
}

test(
  'Lion from examples/ runs compiled on WebGPU and the interpreter, ' +
    'matching its float64 reference',
  async () => {
    const h = { lr: 0.01, beta1: 0.9, beta2: 0.99, weightDecay: 0.1 };
    const rng = prng(21);
    const theta = uniform(rng, 37);
    const grads = Array.from({ length: 5 }, () => uniform(rng, 37));
    const want = lionReference(theta, grads, h);
    for (const device of [await createDevice({ kind: 'cpu' }), await gpuDevice()]) {
      const opt = await compileOptimizer(lion(h), [array(theta, [37])], { device });
      for (const g of grads) await opt.step([array(g, [37])]);
      const got = await (opt.params() as DeviceArray[])[0].read();
      // sign(c) is ±1 unless c rounds across 0 (random c is far from 0 here); each step then moves
      // θ by lr(±1 + λθ): float32 rounding of θ (|θ| ≤ 1.1, ulp ~1.2e-7) over 5 steps stays below
      // 1e-6.
      got.forEach((v, i) =>
        expect(Math.abs(v - want[i])).toBeLessThanOrEqual(device.kind === 'cpu' ? 1e-12 : 1e-6),
      );
    }
    expect(() => lion({ beta1: 2 })).toThrow(GrngError);
  },
);
