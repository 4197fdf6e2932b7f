// Section 2: one training step of the MLP 784-256-256-10 (ReLU, softmax cross-entropy, batch 128,
// forward + backward + Adam(W)), the loss read back each step as a training loop does.
import { adamw, array, compileTrainStep, crossEntropy, nn } from '../../index.js';
import { jaxMlpStep, tfMlpStep, type MlpSetup } from '../peers/peers.js';
import { plainMlpStep } from '../peers/plain-js.js';
import type { Section } from '../report.js';
import { dispatchesOf, measure, type BenchContext } from './contenders.js';

export const MLP: MlpSetup = { sizes: [784, 256, 256, 10], batch: 128 };
export const MLP_STEP_NAME = 'MLP 784-256-256-10 step, batch 128';

/** A fixed batch of the benchmark MLP's shape: inputs in [0, 1), labels n mod 10. */
export function benchBatch(batch = MLP.batch) {
  const width = MLP.sizes[0];
  return {
    x: array(
      Float64Array.from({ length: batch * width }, (_, i) => Math.sin(i * 12.9898) * 0.5 + 0.5),
      [batch, width],
    ),
    y: array(
      Int32Array.from({ length: batch }, (_, n) => n % 10),
      [batch],
      'i32',
    ),
  };
}

export async function mlpStepSection(ctx: BenchContext): Promise<Section> {
  const model = nn.mlp(MLP.sizes);
  const batch = benchBatch();
  // The default step skips non-finite updates; the unguarded one shows what that costs.
  const variant = async (skipNonFinite: boolean | 'gradients') => {
    const train = await compileTrainStep({
      model,
      loss: crossEntropy,
      optimizer: adamw({ lr: 1e-3 }),
      params: model.init(0),
      device: ctx.device,
      skipNonFinite,
    });
    const run = async () => void (await train.run(batch));
    return { run, dispatches: await dispatchesOf(ctx, run) };
  };
  const [guarded, gradients, unguarded] = [
    await variant(true),
    await variant('gradients'),
    await variant(false),
  ];
  const rows = await measure(
    ctx,
    {
      name: MLP_STEP_NAME,
      grng: [
        { library: 'grng (compileTrainStep, adamw)', ...guarded },
        { library: "grng (… skipNonFinite: 'gradients')", ...gradients },
        { library: 'grng (… skipNonFinite: false)', ...unguarded },
      ],
      tf: (tf) => tfMlpStep(tf, MLP),
      jax: (jax) => jaxMlpStep(jax, MLP),
      plain: () => plainMlpStep(MLP),
      rate: (ms) => `${(1000 / ms).toFixed(1)} steps/s`,
    },
    9,
  );
  return {
    title: 'MLP training step',
    about:
      'Forward, loss, backward and the Adam(W) update, the loss read back ' +
      'each step. grng uploads the (same) host batch each step, as a data ' +
      'loader would; the other grng rows check only loss and gradients for non-finite values, or ' +
      'nothing. Target: grng ≥ 2× ' +
      'jax-js webgpu and ≥ 3× TF.js webgpu.',
    rows,
  };
}
