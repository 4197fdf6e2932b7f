import { GrngError } from '../../core/errors.js';
import { add, broadcastTo, concat, gelu, mean, reshape, slice } from '../index.js';
import type { Tensor } from '../tensor.js';
import { multiHeadAttention, type AttentionParams } from './attention.js';
import { positiveInteger } from './check.js';
import { asImages, conv2d } from './conv.js';
import { embedding, type EmbeddingParams } from './embedding.js';
import { childSeed, normalInit, seededUniform, zerosInit } from './init.js';
import { dense, type DenseParams, type Model } from './layers.js';
import { layerNorm, type LayerNormParams } from './norm.js';

export type EncoderBlockParams = {
  readonly norm1: LayerNormParams;
  readonly attention: AttentionParams;
  readonly norm2: LayerNormParams;
  readonly mlp: { readonly fc1: DenseParams; readonly fc2: DenseParams };
};

/**
 * A pre-LN transformer encoder block on [B, T, dim] (as in ViT and GPT-2):
 * x + attention(LN(x)), then x + fc2(gelu(fc1(LN(x)))) with an MLP of `mlpDim` (default 4·dim).
 */
export function encoderBlock(
  dim: number,
  heads: number,
  options: { mlpDim?: number; causal?: boolean; name?: string } = {},
): Model<EncoderBlockParams> {
  const op = 'nn.encoderBlock';
  positiveInteger(op, 'dim', dim);
  const mlpDim = positiveInteger(op, 'mlpDim', options.mlpDim ?? 4 * dim);
  const name = options.name ?? 'block';
  const norm1 = layerNorm(dim, { name: `${name}.norm1` });
  const attention = multiHeadAttention(dim, heads, {
    causal: options.causal,
    name: `${name}.attention`,
  });
  const norm2 = layerNorm(dim, { name: `${name}.norm2` });
  const fc1 = dense(dim, mlpDim, { name: `${name}.fc1` });
  const fc2 = dense(mlpDim, dim, { name: `${name}.fc2` });
  return {
    init: (seed) => ({
      norm1: norm1.init(childSeed(seed, 0)),
      attention: attention.init(childSeed(seed, 1)),
      norm2: norm2.init(childSeed(seed, 2)),
      mlp: { fc1: fc1.init(childSeed(seed, 3)), fc2: fc2.init(childSeed(seed, 4)) },
    }),
    apply(params, x) {
      const h = add(x, attention.apply(params.attention, norm1.apply(params.norm1, x)));
      const inner = gelu(fc1.apply(params.mlp.fc1, norm2.apply(params.norm2, h)));
      return add(h, fc2.apply(params.mlp.fc2, inner));
    },
  };
}

export type Pooling = 'cls' | 'mean';

/** The shared trunk of vit and textTransformer: [CLS] + tokens + positions, blocks, LN, head. */
/** The encoder trunk's settings, shared by vit and textTransformer. */
type TrunkOptions = {
  dim: number;
  depth: number;
  heads: number;
  classes: number;
  mlpDim?: number;
  pool?: Pooling;
};

function encoder(op: string, options: TrunkOptions & { tokens: number; causal?: boolean }) {
  const { tokens, dim, heads, classes } = options;
  const depth = positiveInteger(op, 'depth', options.depth);
  positiveInteger(op, 'classes', classes);
  const pool = options.pool ?? 'cls';
  if (pool !== 'cls' && pool !== 'mean')
    throw new GrngError(op, `pool must be 'cls' or 'mean', got '${String(pool)}'`);
  const length = tokens + (pool === 'cls' ? 1 : 0);
  const blocks = Array.from({ length: depth }, (_, i) =>
    encoderBlock(dim, heads, { mlpDim: options.mlpDim, causal: options.causal, name: `block${i}` }),
  );
  const norm = layerNorm(dim, { name: 'norm' });
  const head = dense(dim, classes, { name: 'head' });
  return {
    init(seed: number) {
      const next = seededUniform(childSeed(seed, 100));
      return {
        ...(pool === 'cls' ? { cls: zerosInit([1, 1, dim]) } : {}),
        position: normalInit(next, [1, length, dim], 0.02),
        blocks: blocks.map((b, i) => b.init(childSeed(seed, 101 + i))),
        norm: norm.init(0),
        head: head.init(childSeed(seed, 99)),
      };
    },
    /** Logits [B, classes] from token features [B, tokens, dim]. */
    apply(params: EncoderParams, x: Tensor): Tensor {
      const batch = x.shape[0];
      let h =
        params.cls === undefined ? x : concat([broadcastTo(params.cls, [batch, 1, dim]), x], 1);
      h = add(h, params.position);
      blocks.forEach((block, i) => (h = block.apply(params.blocks[i], h)));
      h = norm.apply(params.norm, h);
      const pooled =
        pool === 'cls' ? reshape(slice(h, [0, 0, 0], [batch, 1, dim]), [batch, dim]) : mean(h, 1);
      return head.apply(params.head, pooled);
    },
  };
}

type EncoderParams = {
  readonly cls?: Tensor;
  readonly position: Tensor;
  readonly blocks: readonly EncoderBlockParams[];
  readonly norm: LayerNormParams;
  readonly head: DenseParams;
};

export type VitParams = EncoderParams & { readonly patch: DenseParams };

/**
 * A Vision Transformer (Dosovitskiy et al. 2021) on NHWC images `image` = [H, W, C] (flat rows
 * [B, H·W·C] are reshaped): a patch embedding (a convolution with kernel = stride = patch), a
 * learned [CLS] token and position embeddings (N(0, 0.02²)), `depth` pre-LN encoder blocks, a
 * final LayerNorm and a linear head on the [CLS] token (or the mean token with pool 'mean').
 */
export function vit(
  options: TrunkOptions & { image: readonly [number, number, number]; patch: number },
): Model<VitParams> {
  const op = 'nn.vit';
  const image = options.image;
  if (!Array.isArray(image) || image.length !== 3)
    throw new GrngError(op, `image must be [height, width, channels], got ${String(image)}`);
  image.forEach((n, i) => positiveInteger(op, `image[${i}]`, n));
  const patch = positiveInteger(op, 'patch', options.patch);
  const [h, w, c] = image;
  if (h % patch !== 0 || w % patch !== 0)
    throw new GrngError(op, `patch ${patch} must divide the image size ${h}×${w}`);
  const dim = positiveInteger(op, 'dim', options.dim);
  const embed = conv2d(c, dim, patch, { stride: patch, name: 'patch' });
  const tokens = (h / patch) * (w / patch);
  const trunk = encoder(op, { ...options, tokens });
  return {
    init: (seed) => ({ patch: embed.init(childSeed(seed, 0)), ...trunk.init(seed) }),
    apply(params, x) {
      const features = embed.apply(params.patch, asImages(op, x, image));
      return trunk.apply(params, reshape(features, [features.shape[0], tokens, dim]));
    },
  };
}

export type TextTransformerParams = EncoderParams & { readonly embedding: EmbeddingParams };

/**
 * A transformer classifier for token sequences [B, length] (i32 ids below `vocab`): token and
 * position embeddings, `depth` pre-LN encoder blocks (optionally causal), a final LayerNorm and a
 * linear head on the mean token (pool 'mean', the default) or a learned [CLS] token.
 */
export function textTransformer(
  options: TrunkOptions & { vocab: number; length: number; causal?: boolean },
): Model<TextTransformerParams> {
  const op = 'nn.textTransformer';
  const length = positiveInteger(op, 'length', options.length);
  const tokens = embedding(options.vocab, options.dim, { name: 'embedding' });
  const trunk = encoder(op, { ...options, pool: options.pool ?? 'mean', tokens: length });
  return {
    init: (seed) => ({ embedding: tokens.init(childSeed(seed, 0)), ...trunk.init(seed) }),
    apply(params, ids) {
      if (ids.rank !== 2 || ids.shape[1] !== length || ids.dtype !== 'i32')
        throw new GrngError(
          op,
          `expects i32 token ids [batch, ${length}], got ${ids.dtype} [${ids.shape.join(', ')}]`,
        );
      return trunk.apply(params, tokens.apply(params.embedding, ids));
    },
  };
}
