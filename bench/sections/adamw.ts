// Section 1: an AdamW update over 1,048,576 parameters in one flat tensor, and over the parameter
// list of the 784-256-256-10 MLP (six tensors, 269,322 parameters): grng's adamw optimizer
// (compileOptimizer, parameters and state updated in place) against the hand-written vec4 kernel
// (the bandwidth reference: every tensor in one buffer, one dispatch) and the peers.
import { adamw, compileOptimizer } from '../../index.js';
import { handWrittenAdamW, type AdamWHyper } from '../hand-written-adamw.js';
import { jaxAdamW, tfAdam } from '../peers/peers.js';
import { plainAdamW } from '../peers/plain-js.js';
import type { Section } from '../report.js';
import { dispatchesOf, measure, type BenchContext } from './contenders.js';

export const ADAMW_HYPER: AdamWHyper = {
  lr: 1e-3,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 1e-2,
  step: 10,
};
/** θ, m, v, g read; θ, m, v written: 4 bytes each. */
const BYTES_PER_PARAM = 7 * 4;

/** The tensors of an AdamW workload: name → shape. */
export const ADAMW_WORKLOADS: {
  readonly name: string;
  readonly shapes: readonly (readonly number[])[];
}[] = [
  { name: 'AdamW 1,048,576 params, one tensor', shapes: [[1 << 20]] },
  {
    name: 'AdamW MLP 784-256-256-10 params (6 tensors, 269,322)',
    shapes: [[256, 784], [256], [256, 256], [256], [10, 256], [10]],
  },
];

export const sizesOf = (shapes: readonly (readonly number[])[]) =>
  shapes.map((s) => s.reduce((p, d) => p * d, 1));

export async function adamwSection(ctx: BenchContext): Promise<Section> {
  const rows = [];
  for (const w of ADAMW_WORKLOADS) {
    const sizes = sizesOf(w.shapes);
    const total = sizes.reduce((a, b) => a + b, 0);
    const wave = (shape: readonly number[], phase: number) => {
      const n = shape.reduce((p, d) => p * d, 1);
      return ctx.device.upload(
        Float64Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + phase) * 0.5),
        shape,
        'f32',
      );
    };
    const params = w.shapes.map((s, i) => wave(s, i));
    const grads = w.shapes.map((s, i) => wave(s, 100 + i));
    const optimizer = await compileOptimizer(
      adamw({ lr: ADAMW_HYPER.lr, weightDecay: ADAMW_HYPER.weightDecay }),
      params,
      { device: ctx.device },
    );
    const grngRun = async () => {
      await optimizer.step(grads);
      await ctx.done();
    };
    const dispatches = await dispatchesOf(ctx, grngRun);
    const hand = handWrittenAdamW(ctx.device.gpu, total, ADAMW_HYPER);
    rows.push(
      ...(await measure(
        ctx,
        {
          name: w.name,
          grng: [
            { library: 'grng (adamw, compileOptimizer)', run: grngRun, dispatches },
            {
              library: 'hand-written vec4 WGSL (bandwidth reference)',
              run: async () => {
                hand.run();
                await ctx.done();
              },
              dispatches: 1,
            },
          ],
          tf: (tf) => tfAdam(tf, sizes, ADAMW_HYPER),
          jax: (jax) => jaxAdamW(jax, sizes, ADAMW_HYPER),
          plain: () => plainAdamW(sizes, ADAMW_HYPER),
          rate: (ms) => `${((total * BYTES_PER_PARAM) / (ms * 1e6)).toFixed(2)} GB/s`,
        },
        15,
      )),
    );
    hand.destroy();
  }
  return {
    title: 'AdamW update',
    about:
      'GB/s counts 7 × 4 bytes per parameter (θ, m, v, g read; θ, m, v ' +
      'written). TF.js runs tf.train.adam (it has no AdamW; same bytes). ' +
      'Target: grng ≥ 0.9× the hand-written kernel, ≥ 3.5× jax-js webgpu.',
    rows,
  };
}
