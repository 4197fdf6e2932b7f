// Sections 'sizes' and 'vit-sizes': how training scales with the model. MLPs 784-w-w-10 and ViTs of
// growing width (batch 128), each on a device of its own: time per step, parameters per second,
// the device's peak memory and the host's resident set against what the step must hold
// (parameters, gradients, optimizer state, activations). On a CPU adapter device memory is host
// memory, so RSS includes it.
import {
  adamw,
  compileTrainStep,
  crossEntropy,
  nn,
  ring,
  type DeviceArray,
  type Model,
} from '../../index.js';
import { flattenTree } from '../../core/tree.js';
import { isArrayLeaf } from '../../runtime/jit.js';
import { progress, type Row, type Section, type SizeFigures } from '../report.js';
import type { BenchContext } from './contenders.js';
import { benchBatch } from './mlp-step.js';

const BATCH = 128;
const ADAMW_WIDTHS = [256, 512, 1024, 2048, 4096];
const CASES = [
  // At 8192 the middle weight is 8192² f32 (256 MiB), past a 128 MiB binding: bound as windows.
  {
    optimizer: 'adamw',
    make: () => adamw({ lr: 1e-3 }),
    widths: [...ADAMW_WIDTHS, 8192],
    skip: true,
  },
  // Checking only loss and gradients keeps no copy of the new parameters and state.
  { optimizer: 'adamw', make: () => adamw({ lr: 1e-3 }), widths: ADAMW_WIDTHS, skip: 'gradients' },
  // RING's Kronecker factors are w² each; at 4096 one refresh takes minutes on a CPU adapter.
  { optimizer: 'ring', make: () => ring(), widths: [256, 512, 1024, 2048], skip: true },
  // The full guard keeps RING's new factors and inverses until it knows they are finite: about
  // the optimizer state again. Checking only loss and gradients shows the step without it.
  { optimizer: 'ring', make: () => ring(), widths: [256, 512, 1024, 2048], skip: 'gradients' },
] as const;
/** Timed steps after two untimed ones. */
const STEPS = 3;

const bytesOf = (tree: unknown): number =>
  flattenTree('bench', tree, isArrayLeaf, 'an array')
    .leaves.map((a) => 4 * (a as DeviceArray).shape.reduce((x, y) => x * y, 1))
    .reduce((x, y) => x + y, 0);

export async function sizeSweepSection(ctx: BenchContext): Promise<Section> {
  const rows: Row[] = [];
  for (const c of CASES) {
    for (const w of c.widths) {
      const guard = c.skip === true ? '' : ` (skipNonFinite: '${c.skip}')`;
      const name = `${c.optimizer}${guard}, mlp 784-${w}-${w}-10`;
      // Activations: the input, and each layer's pre-activation and output.
      const activations = 4 * BATCH * (784 + 2 * (w + w + 10));
      const model = nn.mlp([784, w, w, 10]);
      rows.push(
        await onNewDevice(ctx, { name, make: c.make, model, activations, skipNonFinite: c.skip }),
      );
    }
  }
  return {
    title: 'Model size sweep',
    about:
      `MLPs 784-w-w-10 at batch ${BATCH} (compileTrainStep; the default skipNonFinite keeps the ` +
      "new parameters and state until it knows they are finite, 'gradients' does not), each on a " +
      'new device: median of 3 steps after 2 (RING refreshes on its own schedule), the peak of ' +
      "the device's live buffers (memoryStats().peakBytes) and of the process's RSS, and what a " +
      'step must hold: parameters + gradients + optimizer state + activations (input, and each ' +
      'layer’s pre-activation and output). Target: peak ≤ 1.5× that sum.',
    kind: 'sizes',
    rows,
  };
}

/** ViTs on 28×28 images in 7×7 patches (16 tokens and [CLS]), 4 blocks of 4 heads, width d. */
const VIT_WIDTHS = [64, 128, 256, 512];
const VIT_DEPTH = 4;
const VIT_TOKENS = 17;

export async function vitSizeSweepSection(ctx: BenchContext): Promise<Section> {
  const rows: Row[] = [];
  for (const d of VIT_WIDTHS) {
    const name = `adamw, vit d=${d} depth ${VIT_DEPTH}`;
    const model = nn.vit({
      image: [28, 28, 1],
      patch: 7,
      dim: d,
      depth: VIT_DEPTH,
      heads: 4,
      classes: 10,
    });
    // Activations, per token of a block: its two LayerNorms, q, k, v, the attention's output and
    // projection and the residual (8·d), the MLP's pre-activation and output (8·d), and per head
    // the scores and their softmax (2·17); plus the patch embedding and the input.
    const perToken = VIT_DEPTH * (16 * d + 2 * 4 * VIT_TOKENS) + d;
    const activations = 4 * BATCH * (784 + VIT_TOKENS * perToken);
    const make = () => adamw({ lr: 1e-3 });
    rows.push(await onNewDevice(ctx, { name, make, model, activations, skipNonFinite: true }));
  }
  return {
    title: 'Model size sweep: ViT',
    about:
      `ViTs (28×28×1 images in 7×7 patches, ${VIT_DEPTH} pre-LN blocks of 4 heads, MLP 4·d) at ` +
      `batch ${BATCH} with AdamW and the default skipNonFinite, as the MLP sweep: median of 3 ` +
      'steps after 2, peak device memory and RSS against parameters + gradients + optimizer ' +
      'state + activations (an estimate: each block’s stored tensors). Target: peak ≤ 1.5× that sum.',
    kind: 'sizes',
    rows,
  };
}

/** One row of a sweep: a model, what trains it, and the activations a step holds (bytes). */
interface SizeCase {
  readonly name: string;
  readonly make: () => ReturnType<typeof adamw> | ReturnType<typeof ring>;
  readonly model: Model;
  readonly activations: number;
  readonly skipNonFinite: true | 'gradients';
}

/** measureSize on a device of its own, destroyed after; an error becomes the row's. */
async function onNewDevice(ctx: BenchContext, c: SizeCase): Promise<Row> {
  progress(c.name);
  const device = await ctx.openDevice();
  try {
    return await measureSize(device, c);
  } catch (e) {
    return { workload: c.name, library: 'grng', error: (e as Error).message.split('\n')[0] };
  } finally {
    (device.owner as { destroy?: () => void }).destroy?.();
  }
}

async function measureSize(
  device: Awaited<ReturnType<BenchContext['openDevice']>>,
  { name, make, model, activations, skipNonFinite }: SizeCase,
): Promise<Row> {
  const batch = benchBatch(BATCH);
  let rss = process.memoryUsage().rss;
  const rssBefore = rss;
  device.resetPeakBytes();
  const t0 = performance.now();
  const train = await compileTrainStep({
    model,
    loss: crossEntropy,
    optimizer: make() as never,
    params: model.init(0),
    device,
    skipNonFinite,
  });
  const times: number[] = [];
  for (let k = 0; k < 2 + STEPS; k++) {
    const t = performance.now();
    await train.run(batch);
    if (k >= 2) times.push(performance.now() - t);
    rss = Math.max(rss, process.memoryUsage().rss);
  }
  const firstMs = performance.now() - t0 - times.reduce((a, b) => a + b, 0);
  const params = bytesOf(await train.params());
  const state = bytesOf(await train.state());
  const sorted = [...times].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  const figures: SizeFigures = {
    parameters: params / 4,
    heldBytes: 2 * params + state + activations,
    peakDeviceBytes: device.memoryStats().peakBytes,
    rssGrowthBytes: rss - rssBefore,
    firstStepsMs: firstMs,
  };
  return {
    workload: name,
    library: 'grng',
    timing: { median, min: sorted[0], max: sorted[sorted.length - 1], runs: sorted.length },
    rate: `${((figures.parameters * 1000) / median / 1e6).toFixed(1)} M params/s`,
    sizes: figures,
  };
}
