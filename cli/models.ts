// The models `grng train` and `grng compare` build by name (--model mlp|vit|cnn), their options
// (flags such as --dim 64, or --set model.dim=64) and a one-line description for logs and reports.
import { GrngError } from '../core/errors.js';
import type { Model } from '../dsl/nn/layers.js';
import { nn } from '../dsl/nn/index.js';
import type { ImageDataset } from '../runtime/data/image-dataset.js';
import { parseNumber, type HyperValue } from './training-options.js';

export const MODELS = ['mlp', 'vit', 'cnn'] as const;
export type ModelName = (typeof MODELS)[number];

export const MODEL_USAGE = `  --model NAME       mlp (default), vit or cnn; the input and output sizes follow the data
  --hidden N,...     mlp: hidden layer sizes (default 256); cnn: the dense layer before the head
                     (default 128; 'none' for none)
  --patch N          vit: patch size (default 7)
  --dim N            vit: token width (default 64)
  --depth N          vit: encoder blocks (default 2)
  --heads N          vit: attention heads (default 4)
  --mlp-dim N        vit: hidden width of each block's MLP (default 4·dim)
  --channels N,...   cnn: channels of each conv + 2×2 max-pool stage (default 16,32)
  --kernel N         cnn: odd kernel size, 'same' padding (default 3)
  --set model.K=V    any of the model options above by name (e.g. model.dim=64)
                     (RING and RENG start at lr 3e-3 on the ViT, and also with klClip 1e-3 and
                     inverseEvery 50 on the CNN, unless --lr or --set says otherwise; the CNN
                     trains on standardized pixels unless --normalize says otherwise)`;

export const MODEL_OPTIONS = {
  model: { type: 'string', default: 'mlp' },
  hidden: { type: 'string' },
  patch: { type: 'string' },
  dim: { type: 'string' },
  depth: { type: 'string' },
  heads: { type: 'string' },
  'mlp-dim': { type: 'string' },
  channels: { type: 'string' },
  kernel: { type: 'string' },
} as const;

type ModelFlags = { readonly model: string } & {
  readonly [K in Exclude<keyof typeof MODEL_OPTIONS, 'model'>]?: string;
};

/** A model's settings, as written into checkpoints and reports. */
export type ModelConfig =
  | { readonly model: 'mlp'; readonly hidden: readonly number[] }
  | {
      readonly model: 'cnn';
      readonly channels: readonly number[];
      readonly kernel: number;
      readonly hidden: readonly number[];
    }
  | {
      readonly model: 'vit';
      readonly patch: number;
      readonly dim: number;
      readonly depth: number;
      readonly heads: number;
      readonly mlpDim: number;
    };

const list = (option: string, text: string): number[] =>
  text
    .split(',')
    .filter((s) => s !== '')
    .map((s) => parseNumber(option, s, { integer: true, min: 1 }));

/**
 * The model options from flags and `--set model.K=V` pairs (which `settings` loses), with each
 * model's defaults; options that do not belong to the chosen model are errors.
 */
export function modelConfig(flags: ModelFlags, settings: Record<string, HyperValue>): ModelConfig {
  const name = flags.model;
  if (!(MODELS as readonly string[]).includes(name))
    throw new GrngError('cli', `--model must be ${MODELS.join(', ')}, got '${name}'`);
  const given: Record<string, string> = {};
  for (const key of Object.keys(MODEL_OPTIONS) as (keyof typeof MODEL_OPTIONS)[]) {
    const value = flags[key];
    if (key !== 'model' && value !== undefined) given[key] = value;
  }
  for (const key of Object.keys(settings)) {
    if (!key.startsWith('model.')) continue;
    given[key.slice('model.'.length)] = String(settings[key]);
    delete settings[key];
  }
  const allowed: Record<ModelName, readonly string[]> = {
    mlp: ['hidden'],
    vit: ['patch', 'dim', 'depth', 'heads', 'mlp-dim'],
    cnn: ['channels', 'kernel', 'hidden'],
  };
  for (const key of Object.keys(given))
    if (!allowed[name as ModelName].includes(key))
      throw new GrngError(
        'cli',
        `--${key} is not an option of --model ${name} (its options: ` +
          `${allowed[name as ModelName].map((k) => `--${k}`).join(', ')})`,
      );
  const int = (key: string, fallback: number) =>
    given[key] === undefined ? fallback : parseNumber(key, given[key], { integer: true, min: 1 });
  if (name === 'mlp') return { model: 'mlp', hidden: list('hidden', given.hidden ?? '256') };
  if (name === 'cnn') {
    const hidden =
      given.hidden === undefined
        ? [128]
        : given.hidden === 'none'
          ? []
          : list('hidden', given.hidden);
    if (hidden.length > 1)
      throw new GrngError('cli', `--hidden takes one size for --model cnn, got '${given.hidden}'`);
    return {
      model: 'cnn',
      channels: list('channels', given.channels ?? '16,32'),
      kernel: int('kernel', 3),
      hidden,
    };
  }
  const dim = int('dim', 64);
  return {
    model: 'vit',
    patch: int('patch', 7),
    dim,
    depth: int('depth', 2),
    heads: int('heads', 4),
    mlpDim: int('mlp-dim', 4 * dim),
  };
}

/**
 * Hyperparameters a model starts an optimizer with unless the command line sets them (measured on
 * Fashion-MNIST, batch 128):
 * - ViT: RING and RENG take lr 3e-3, where their default 1e-2 made the loss jump in the first
 *   epoch (mean loss over steps 100–150 of 0.58 at 3e-3 against ~1.3 at 1e-2).
 * - CNN: RING and RENG take lr 3e-3 and K-FAC's KL clip κ = 1e-3. Spectral damping alone is
 *   scale-free, so the first convolution, whose Γ is tiny at initialization, took steps that grew
 *   its kernel from norm 2.4 to 9 in ten steps and the loss to 3.4 even at lr 3e-3; with the clip,
 *   the mean loss over steps 150–200 is 0.41 (AdamW: 0.54). The absolute floor `dampingFloor`
 *   1e-3 in place of the clip gave 0.45, so the recipe keeps the clip (these three on the CNN
 *   without its dense layer, on pixels in [0, 1]). The inverses are refreshed
 *   every 50 steps: the first dense layer's 1569×1569 Λ costs ~33 s per refresh on llvmpipe.
 */
export function modelRecipe(config: ModelConfig, optimizer: string): Record<string, HyperValue> {
  if (optimizer !== 'ring' && optimizer !== 'reng') return {};
  if (config.model === 'vit') return { lr: 3e-3 };
  if (config.model === 'cnn') return { lr: 3e-3, klClip: 1e-3, inverseEvery: 50 };
  return {};
}

/**
 * The input scaling a model trains with unless --normalize says otherwise. The CNN takes
 * standardized pixels (training mean 0, deviation 1): with its dense layer of 128, RING reached
 * 88.09 % after one epoch on them (86.64 % without the dense layer on pixels in [0, 1]); PyTorch's
 * AdamW on the same network gained 2.8 points after 3 epochs from the two together.
 */
export function defaultNormalization(config: ModelConfig): 'unit' | 'standard' {
  return config.model === 'cnn' ? 'standard' : 'unit';
}

/** The image shape [H, W, C] of a dataset's rows (square single-channel when it gives none). */
export function imageShape(data: ImageDataset): [number, number, number] {
  if (data.image !== undefined) return [...data.image];
  const side = Math.round(Math.sqrt(data.train.features));
  if (side * side !== data.train.features)
    throw new GrngError(
      'cli',
      `images of ${data.train.features} pixels are not square; the dataset must give its shape`,
    );
  return [side, side, 1];
}

/**
 * The model a config describes for `data`, a one-line description of it, and the path of its
 * classifier (what a LoRA fine-tune trains besides the adapters).
 */
export function buildModel(
  config: ModelConfig,
  data: ImageDataset,
): { readonly model: Model<never>; readonly description: string; readonly head: string } {
  const classes = data.classes;
  const image = imageShape(data);
  if (config.model === 'mlp') {
    const sizes = [data.train.features, ...config.hidden, classes];
    return {
      model: nn.mlp(sizes),
      description: `MLP ${sizes.join('-')}`,
      head: `layers.${sizes.length - 2}`,
    };
  }
  if (config.model === 'cnn') {
    const { channels, kernel } = config;
    const [hidden] = config.hidden;
    const model = nn.cnn({ image, channels, kernel, hidden, classes });
    return {
      model,
      head: 'head',
      description:
        `CNN ${image.join('×')} → conv${kernel}×${kernel} [${channels.join(', ')}] + max-pool` +
        `${hidden === undefined ? '' : ` → ${hidden}`} → ${classes}`,
    };
  }
  const { patch, dim, depth, heads, mlpDim } = config;
  const model = nn.vit({ image, patch, dim, depth, heads, mlpDim, classes });
  return {
    model,
    head: 'head',
    description:
      `ViT ${image.join('×')} patch ${patch}, dim ${dim}, depth ${depth}, ${heads} heads, ` +
      `MLP ${mlpDim} → ${classes}`,
  };
}
