// Section 5: transformers. One pre-LN encoder block's value and parameter gradients against every
// peer, and the ViT training step with AdamW, K-FAC and RING (amortized over 10 steps ending on a
// refresh, with the optimizers section's timing) beside PyTorch's AdamW step. Two tables.
import {
  adamw,
  compileTrainStep,
  crossEntropy,
  jit,
  kfac,
  nn,
  ring,
  sum,
  valueAndGrad,
  type DeviceArray,
  type Tensor,
  type TrainStep,
} from '../../index.js';
import { flattenTree, type Tree } from '../../core/tree.js';
import type { EncoderBlockParams } from '../../dsl/nn/index.js';
import { isArrayLeaf, toDevice } from '../../runtime/jit.js';
import { jaxEncoderBlock, tfEncoderBlock, type EncoderSetup } from '../peers/peers.js';
import type { VitSetup } from '../peers/torch.js';
import { progress, type Row, type Section } from '../report.js';
import { dispatchesOf, measure, type BenchContext } from './contenders.js';
import { benchBatch } from './mlp-step.js';
import { stateBytes, timed, timePeriods } from './optimizers.js';

export const ENCODER: EncoderSetup = { batch: 64, tokens: 16, dim: 64, heads: 4, mlp: 256 };
export const ENCODER_NAME = 'encoder block fwd+bwd, B=64 T=16 d=64 4 heads';

/** MNIST-shaped images in 7×7 patches (16 tokens and [CLS]), 2 blocks of width 64. */
export const VIT: VitSetup = {
  image: [28, 28, 1],
  patch: 7,
  dim: 64,
  depth: 2,
  heads: 4,
  classes: 10,
  batch: 128,
};
export const VIT_STEP_NAME = 'ViT training step, batch 128';

export async function transformerSection(ctx: BenchContext): Promise<Section[]> {
  return [await encoderBlockSection(ctx), await vitSection(ctx)];
}

/**
 * Value and gradients of sum(block(x)) with respect to every parameter of nn.encoderBlock (not x):
 * one jitted program, the value read back each run, the gradients left on the device (freed).
 */
async function encoderBlockSection(ctx: BenchContext): Promise<Section> {
  const { batch, tokens, dim, heads, mlp } = ENCODER;
  const block = nn.encoderBlock(dim, heads, { mlpDim: mlp });
  // Parameters and input uploaded once, as the peers keep theirs resident.
  const init = flattenTree('bench', block.init(0), isArrayLeaf, 'an array');
  const params = init.rebuild(toDevice(ctx.device, init.leaves, 'bench'));
  const x = ctx.device.upload(
    Float64Array.from({ length: batch * tokens * dim }, (_, i) => Math.sin(i * 12.9898 + 0.5)),
    [batch, tokens, dim],
    'f32',
  );
  const valueAndGrads = jit(
    (p: EncoderBlockParams, xs: Tensor) =>
      valueAndGrad((q: EncoderBlockParams) => sum(block.apply(q, xs)))(p),
    { device: ctx.device },
  );
  const run = async () => {
    const [value, grads] = (await valueAndGrads(params, x)) as [DeviceArray, Tree<DeviceArray>];
    await value.read();
    value.dispose();
    for (const g of flattenTree('bench', grads, isArrayLeaf, 'an array').leaves)
      (g as DeviceArray).dispose();
  };
  const dispatches = await dispatchesOf(ctx, run);
  const rows = await measure(
    ctx,
    {
      name: ENCODER_NAME,
      grng: [{ library: 'grng (jit valueAndGrad, erf GELU)', run, dispatches }],
      tf: (tf) => tfEncoderBlock(tf, ENCODER),
      jax: (jax) => jaxEncoderBlock(jax, ENCODER),
      rate: (ms) =>
        `${(1000 / ms).toFixed(1)} runs/s, ${((batch * tokens) / ms).toFixed(1)}k tok/s`,
    },
    9,
  );
  return {
    title: 'Transformer encoder block',
    about: [
      'Value and gradients of sum(block(x)) with respect to all parameters of one pre-LN block ' +
        '(x + MHA(LN(x)), then x + fc2(gelu(fc1(LN(x)))), MLP 256, exact GELU, q, k, v, o ' +
        'dense layers with biases, LayerNorm eps 1e-5), the value read back each run.',
      'TF.js: tf.variableGrads over tf ops (tf.moments, 4-D tf.matMul, tf.softmax, tf.erf); ' +
        'jax-js: jax.valueAndGrad under jax.jit (jax.nn.standardize, np.matmul and ' +
        'jax.nn.softmax: jax.nn.dotProductAttention needs Node ≥ 22; jax.nn.gelu ' +
        'approximate: false); PyTorch: nn.TransformerEncoderLayer(norm_first, gelu, ' +
        'dropout 0).',
      'Target: grng ≥ 2× jax-js webgpu and ≥ 3× TF.js webgpu.',
      speedups(rows),
    ]
      .filter((line) => line !== '')
      .join(' '),
    rows,
  };
}

/** "This run: grng is a× jax-js webgpu, b× TF.js webgpu." from the rows' medians. */
function speedups(rows: readonly Row[]): string {
  const median = (prefix: string) =>
    rows.find((r) => r.library.startsWith(prefix) && r.timing !== undefined)?.timing?.median;
  const grng = median('grng');
  if (grng === undefined) return '';
  const against = [
    ['jax-js webgpu', 'jax-js webgpu'],
    ['TF.js webgpu', 'TF.js webgpu'],
    ['jax-js wasm', 'jax-js wasm'],
    ['PyTorch', 'PyTorch CPU'],
  ].flatMap(([prefix, name]) => {
    const other = median(prefix);
    return other === undefined ? [] : [`${(other / grng).toFixed(2)}× ${name}`];
  });
  return against.length === 0 ? '' : `This run: grng is ${against.join(', ')} (median ratio).`;
}

type Common = Omit<Parameters<typeof compileTrainStep>[0], 'optimizer'>;

interface VitCase {
  readonly name: string;
  /** A new compiled step of this optimizer. */
  compile(common: Common): Promise<TrainStep>;
  /** Steps timed together, ending on a refresh: a whole refresh period where it says so. */
  readonly period: number;
  readonly periods: number;
}

const VIT_CASES: readonly VitCase[] = [
  // A second AdamW beside the baseline: its ratio shows what the machine's noise does to one.
  {
    name: 'adamw (lr 1e-3)',
    compile: (c) => compileTrainStep({ ...c, optimizer: adamw({ lr: 1e-3 }) }),
    period: 1,
    periods: 9,
  },
  // K-FAC's defaults refresh the factors every 10 steps and the inverses every 100: ten steps are
  // one factor refresh and 9 plain steps; the inverse refresh (1 in 100) is left out, since a
  // steady one takes 200 steps of warm-up and minutes of compiling each variant again on llvmpipe.
  {
    name: 'kfac (defaults; 10 steps: factors refreshed once, inverses not)',
    compile: (c) => compileTrainStep({ ...c, optimizer: kfac() }),
    period: 10,
    periods: 1,
  },
  {
    name: 'ring (defaults, S = 10)',
    compile: (c) => compileTrainStep({ ...c, optimizer: ring({ inverseEvery: 10 }) }),
    period: 10,
    periods: 1,
  },
];

/**
 * nn.vit's training step (cross-entropy) for each optimizer, in the optimizers section's table:
 * median and amortized step, × AdamW against AdamW steps interleaved, the refresh step and the
 * first step (trace, plan, compile, run).
 */
async function vitSection(ctx: BenchContext): Promise<Section> {
  const { batch, ...shape } = VIT;
  const model = nn.vit(shape);
  const common = { model, loss: crossEntropy, params: model.init(0), device: ctx.device };
  // Flat 784-wide rows in [0, 1) and labels n mod 10, as the MLP's batch.
  const data = benchBatch(batch);
  const rows: Row[] = [];
  const unsettled: string[] = [];
  let baseline: TrainStep | undefined;
  for (const c of VIT_CASES) {
    progress(`${VIT_STEP_NAME}: ${c.name}`);
    try {
      const train = await c.compile(common);
      const firstColdMs = await timed(() => train.run(data));
      if (baseline === undefined) {
        baseline = await compileTrainStep({ ...common, optimizer: adamw({ lr: 1e-3 }) });
        for (let t = 0; t < 3; t++) await baseline.run(data);
      }
      const figures = await timePeriods(ctx.device, train, baseline, data, c.period, c.periods);
      if (figures.compiled > 0) unsettled.push(`${c.name}: ${figures.compiled}`);
      rows.push({
        workload: c.name,
        library: 'grng',
        timing: figures.timing,
        dispatches: figures.dispatches,
        optimizer: {
          amortizedMs: figures.amortizedMs,
          timesAdamW: figures.timesAdamW,
          stateBytes: await stateBytes(train),
          refreshMs: figures.refreshMs,
          period: c.period,
          firstColdMs,
        },
      });
    } catch (error) {
      rows.push({
        workload: c.name,
        library: 'grng',
        error: (error instanceof Error ? error.message : String(error)).split('\n')[0],
      });
    }
  }
  const torch = ctx.torch.ok ? ctx.torch.rows.find((r) => r.workload === VIT_STEP_NAME) : undefined;
  if (ctx.torch.ok && torch !== undefined)
    rows.push({
      workload: `adamw, PyTorch ${ctx.torch.version} CPU (${ctx.torch.threads} threads)`,
      library: 'PyTorch',
      timing: torch.timing,
    });
  else if (!ctx.torch.ok)
    rows.push({ workload: 'adamw, PyTorch CPU', library: 'PyTorch', error: ctx.torch.error });
  const ratios = rows
    .filter((r) => r.optimizer !== undefined)
    .map((r) => `${r.workload.split(' ')[0]} ${r.optimizer?.timesAdamW.toFixed(2)}×`);
  return {
    title: `${VIT_STEP_NAME} (28×28×1 images, patch 7, dim 64, depth 2, 4 heads)`,
    about: [
      'nn.vit with compileTrainStep and crossEntropy, the loss read back each step. ' +
        'Amortized ms: the mean of 10 consecutive steps ending on a refresh (RING S = 10: one ' +
        'inverse refresh and 9 cheap steps, a whole period; K-FAC: one factor refresh and 9 ' +
        'plain steps, its inverse refresh every 100 steps not included), 9 steps for AdamW, ' +
        'timed once every variant compiled where the arrays settle; × AdamW divides it by ' +
        'the mean of AdamW steps taken between them.',
      'First step: the first call of a new step (trace, plan, compile, run); Mesa keeps ' +
        'compiled shaders on disk, so it is minutes for K-FAC and RING the first time on a ' +
        'machine and much less after. The cached second compile is not taken.',
      'PyTorch: the same ViT (Conv2d patch embedding, [CLS], positions, 2 ' +
        'nn.TransformerEncoderLayer, LayerNorm, Linear head) and a torch.optim.AdamW step.',
      ratios.length === 0 ? '' : `Amortized × AdamW this run: ${ratios.join(', ')}.`,
      unsettled.length === 0
        ? ''
        : `Programs still compiled during the timed steps: ${unsettled.join(', ')}.`,
    ]
      .filter((line) => line !== '')
      .join(' '),
    rows,
    kind: 'optimizers',
  };
}
