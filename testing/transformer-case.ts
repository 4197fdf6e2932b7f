// Random token models for checkTrainingOptimizer (reference-transformer.ts), and each one's DSL
// twin built from nn layers (dense over [B, T, d], layerNorm, multiHeadAttention), whose parameter
// tree flattens to the reference's leaf order.
import fc from 'fast-check';
import { array, type HostArray } from '../core/host-array.js';
import type { Tree } from '../core/tree.js';
import { add, gelu, mean, relu, reshape, tanh } from '../dsl/index.js';
import { multiHeadAttention } from '../dsl/nn/attention.js';
import { dense, type Model } from '../dsl/nn/layers.js';
import { layerNorm } from '../dsl/nn/norm.js';
import type { Tensor } from '../dsl/tensor.js';
import { valueArray, type ValueOptions } from './arbitraries.js';
import type { ReferenceActivation } from './reference-model.js';
import {
  LAYER_NORM_EPS,
  tokenLeaves,
  tokenWidths,
  type TokenBlock,
  type TokenModel,
} from './reference-transformer.js';
import { sizeOf } from './trees.js';
import {
  batchLabels,
  minOutputs,
  type BatchLabels,
  type TrainingTask,
} from './training-targets.js';

/** One drawn token-model problem (leaves in tokenLeaves order). */
export interface TransformerCase<S> {
  readonly model: TokenModel;
  readonly leaves: Float64Array[];
  /** Per step: inputs [batch × tokens·dim] and labels (or regression targets). */
  readonly batches: { readonly x: Float64Array; readonly labels: BatchLabels }[];
  readonly batch: number;
  readonly seed: number;
  readonly settings: S;
}

export interface TransformerCaseOptions {
  /** Blocks 1–maxDepth + 1 (default maxDepth 2). */
  readonly maxDepth?: number;
  /** Token widths 1–maxWidth (default 3). */
  readonly maxWidth?: number;
  readonly maxClasses?: number;
  readonly maxBatch?: number;
  /** Tokens per sample 1–maxTokens (default 3). */
  readonly maxTokens?: number;
  readonly activations?: readonly Exclude<ReferenceActivation, 'identity'>[];
  readonly values?: ValueOptions;
  readonly task?: TrainingTask;
}

/** Random token models with `steps` batches. */
export function transformerCase<S>(
  options: TransformerCaseOptions,
  steps: number,
  settings: fc.Arbitrary<S>,
): fc.Arbitrary<TransformerCase<S>> {
  const {
    maxDepth = 2,
    maxWidth = 3,
    maxClasses = 3,
    maxBatch = 4,
    maxTokens = 3,
    activations = ['tanh', 'relu', 'gelu'],
    task = 'classification',
  } = options;
  const width = fc.integer({ min: 1, max: maxWidth });
  // Attention twice as often as the others; heads are cut to a divisor of the width below.
  const block = fc.oneof(
    {
      arbitrary: fc.record({
        kind: fc.constant('attention' as const),
        heads: fc.integer({ min: 1, max: 3 }),
        causal: fc.boolean(),
        residual: fc.boolean(),
      }),
      weight: 2,
    },
    { arbitrary: fc.record({ kind: fc.constant('norm' as const) }), weight: 1 },
    {
      arbitrary: fc.record({
        kind: fc.constant('dense' as const),
        out: width,
        bias: fc.boolean(),
        activation: fc.constantFrom(...activations),
      }),
      weight: 1,
    },
  );
  const architecture = fc.record({
    tokens: fc.integer({ min: 1, max: maxTokens }),
    dim: width,
    blocks: fc.array(block, { minLength: 1, maxLength: maxDepth + 1 }),
    classes: fc.integer({ min: minOutputs(task), max: maxClasses }),
    bias: fc.boolean(),
    batch: fc.integer({ min: 1, max: maxBatch }),
  });
  const values = (n: number) => valueArray(n, options.values).map((xs) => Float64Array.from(xs));
  const length = fc.integer({ min: 1, max: 2 * steps - 1 }).map((k) => Math.min(k, steps));
  return fc
    .tuple(length, architecture, settings, fc.integer({ min: 0, max: 1000 }))
    .chain(([n, arch, drawn, seed]) => {
      let d = arch.dim;
      const blocks = arch.blocks.map((b): TokenBlock => {
        if (b.kind === 'dense') {
          d = b.out;
          return b;
        }
        return b.kind === 'norm' ? b : { ...b, heads: d % b.heads === 0 ? b.heads : 1 };
      });
      const model: TokenModel = {
        tokens: arch.tokens,
        dim: arch.dim,
        blocks,
        classes: arch.classes,
        bias: arch.bias,
      };
      const { shapes } = tokenLeaves(model);
      const labels = batchLabels(task, arch.batch, arch.classes, values);
      return fc
        .tuple(
          fc.tuple(...shapes.map((s) => values(sizeOf(s)))),
          fc.tuple(
            ...Array.from({ length: n }, () =>
              fc.tuple(values(arch.batch * arch.tokens * arch.dim), labels),
            ),
          ),
        )
        .map(([leaves, batches]) => ({
          model,
          leaves,
          batches: batches.map(([x, labels]) => ({ x, labels })),
          batch: arch.batch,
          seed,
          settings: drawn,
        }));
    });
}

/** The parameter tree compileTrainStep takes, from leaves in tokenLeaves order. */
export function tokenHostParams(
  model: TokenModel,
  leaves: readonly Float64Array[],
): Tree<HostArray> {
  const { names, shapes } = tokenLeaves(model);
  const root: Record<string, unknown> = {};
  names.forEach((name, k) => {
    const path = name.split('.');
    let node = root;
    path.slice(0, -1).forEach((part, i) => {
      // 'layers' holds an array (by index), everything below it objects (by key).
      node[part] ??= i === 0 ? [] : {};
      node = node[part] as Record<string, unknown>;
    });
    node[path[path.length - 1]] = array(leaves[k], shapes[k]);
  });
  return root as Tree<HostArray>;
}

const dslActivation: Record<ReferenceActivation, (x: Tensor) => Tensor> = {
  identity: (x) => x,
  tanh: (x) => tanh(x),
  relu: (x) => relu(x),
  gelu: (x) => gelu(x),
};

/** The same model from nn layers, for compileTrainStep: x [B, tokens·dim] → logits. */
export function tokenDslModel(model: TokenModel): Model<never> {
  const widths = tokenWidths(model);
  const layers = model.blocks.map((block, i): Model<never> => {
    const d = widths[i];
    const built =
      block.kind === 'dense'
        ? dense(d, block.out, { bias: block.bias, name: `dense${i}` })
        : block.kind === 'norm'
          ? layerNorm(d, { eps: LAYER_NORM_EPS, name: `norm${i}` })
          : multiHeadAttention(d, block.heads, { causal: block.causal, name: `attention${i}` });
    return built as unknown as Model<never>;
  });
  const head = dense(widths[widths.length - 1], model.classes, { bias: model.bias, name: 'head' });
  const twin: Model<{ readonly layers: readonly never[] }> = {
    init: () => {
      throw new Error('checkTrainingOptimizer gives the parameters itself');
    },
    apply(params, x) {
      let h: Tensor = reshape(x, [x.shape[0], model.tokens, model.dim]);
      model.blocks.forEach((block, i) => {
        const y = layers[i].apply(params.layers[i], h);
        if (block.kind === 'dense') h = dslActivation[block.activation](y);
        else h = block.kind === 'attention' && block.residual ? add(h, y) : y;
      });
      return (head as Model<never>).apply(params.layers[model.blocks.length], mean(h, 1));
    },
  };
  return twin as unknown as Model<never>;
}

/** A one-line description for failure messages. */
export function describeTokenModel(model: TokenModel): string {
  const widths = tokenWidths(model);
  const blocks = model.blocks.map((b, i) =>
    b.kind === 'dense'
      ? `dense ${widths[i]}→${b.out}${b.bias ? '' : ' (no bias)'}` +
        (b.activation === 'identity' ? '' : ` → ${b.activation}`)
      : b.kind === 'norm'
        ? `layerNorm ${widths[i]}`
        : `${b.residual ? 'x + ' : ''}attention ${widths[i]} × ${b.heads} heads` +
          (b.causal ? ' (causal)' : ''),
  );
  return (
    `tokens ${model.tokens} × ${model.dim}: ${blocks.join(', ')}, mean over tokens, ` +
    `head ${widths[widths.length - 1]}→${model.classes}${model.bias ? '' : ' (no bias)'}`
  );
}
