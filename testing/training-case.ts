// The random training problems checkTrainingOptimizer draws: small stacks of dense layers (and
// optionally a LoRA layer first) with a tanh, relu or gelu activation, one batch per step, and the
// same model written twice — in the DSL for the compiled step, and for the float64 reference
// engine (reference-model.ts).
import fc from 'fast-check';
import type { HostArray } from '../core/host-array.js';
import { array } from '../core/host-array.js';
import type { Tree } from '../core/tree.js';
import { gelu, relu, tanh } from '../dsl/index.js';
import { dense, type Model } from '../dsl/nn/layers.js';
import { loraDense } from '../dsl/nn/lora.js';
import type { Tensor } from '../dsl/tensor.js';
import { valueArray, type ValueOptions } from './arbitraries.js';
import {
  layerValueShapes,
  type ReferenceActivation,
  type ReferenceDense,
  type ReferenceLayer,
  type ReferenceLayerValues,
} from './reference-model.js';
import { sizeOf } from './trees.js';
import { transformerCase, type TransformerCase } from './transformer-case.js';
import {
  batchLabels,
  minOutputs,
  type BatchLabels,
  type TrainingTask,
} from './training-targets.js';

/** The kinds of model drawn: dense/LoRA stacks, token models (reference-transformer.ts). */
export type TrainingModelKind = 'stack' | 'transformer';

export type HiddenActivation = Exclude<ReferenceActivation, 'identity'>;

/** Bounds of the random problems. */
export interface TrainingCaseOptions {
  /** Hidden layers 0–maxDepth (default 2). */
  readonly maxDepth?: number;
  /** Input and hidden widths 1–maxWidth (default 3). */
  readonly maxWidth?: number;
  /** Classes 2–maxClasses, or regression outputs 1–maxClasses (default 3). */
  readonly maxClasses?: number;
  /** Batch rows 1–maxBatch (default 4). */
  readonly maxBatch?: number;
  /** Hidden activations drawn from (default tanh, relu, gelu). */
  readonly activations?: readonly HiddenActivation[];
  /** Whether some models start with a LoRA layer over a frozen random base (default true). */
  readonly lora?: boolean;
  /** Range and resolution of parameters and inputs (default [−1, 1] in steps of 2^−16). */
  readonly values?: ValueOptions;
  /**
   * Kinds of model drawn (default ['stack']). 'transformer' draws token models: inputs [B, T·d]
   * as T tokens, token-wise dense, layerNorm and multi-head attention blocks (maxDepth + 1 of
   * them, widths ≤ maxWidth), mean-pooling and a dense head. Opt-in, so that the problems a
   * seed draws stay those it drew before token models existed.
   */
  readonly kinds?: readonly TrainingModelKind[];
  /** Tokens per sample of token models, 1–maxTokens (default 3). */
  readonly maxTokens?: number;
  /**
   * 'classification' (the default): class labels and crossEntropy. 'regression': real targets
   * [batch × outputs] on the values' grid, and meanSquaredError.
   */
  readonly task?: TrainingTask;
}

/** One drawn problem. */
export interface TrainingCase<S> {
  readonly layers: ReferenceLayer[];
  /** Initial trainable values per layer. */
  readonly values: ReferenceLayerValues[];
  /** Per step: inputs [batch × in] and labels (or regression targets). */
  readonly batches: { readonly x: Float64Array; readonly labels: BatchLabels }[];
  readonly batch: number;
  /** The step keys' seed (ctx.key = foldIn(prngKey(seed), t)). */
  readonly seed: number;
  readonly settings: S;
}

/** Names of the leaves, in flattenTree order (layers by index, each layer's values by name). */
export function leafNames(layers: readonly ReferenceLayer[]): string[] {
  return layers.flatMap((layer, i) =>
    Object.keys(layerValueShapes(layer))
      .sort()
      .map((name) => `layers.${i}.${name}`),
  );
}

/** The shapes of the leaves, in leafNames order. */
export const leafShapes = (layers: readonly ReferenceLayer[]): number[][] =>
  layers.flatMap((layer) => {
    const shapes = layerValueShapes(layer);
    return Object.keys(shapes)
      .sort()
      .map((name) => shapes[name]);
  });

/** Per-layer values as leaves in leafNames order, and back. */
export const toLeaves = (values: readonly ReferenceLayerValues[]): Float64Array[] =>
  values.flatMap((v) =>
    Object.keys(v)
      .sort()
      .map((name) => v[name]),
  );
export function fromLeaves(
  layers: readonly ReferenceLayer[],
  leaves: readonly Float64Array[],
): ReferenceLayerValues[] {
  let k = 0;
  return layers.map((layer) =>
    Object.fromEntries(
      Object.keys(layerValueShapes(layer))
        .sort()
        .map((name) => [name, leaves[k++]]),
    ),
  );
}

/** The parameter tree compileTrainStep takes: { layers: [{ w, b? } | { a, b }] } of f32 arrays. */
export const hostParams = (
  layers: readonly ReferenceLayer[],
  values: readonly ReferenceLayerValues[],
): Tree<HostArray> => ({
  layers: layers.map((layer, i) => {
    const shapes = layerValueShapes(layer);
    return Object.fromEntries(
      Object.keys(shapes).map((name) => [name, array(values[i][name], shapes[name])]),
    );
  }),
});

const dslActivation: Record<ReferenceActivation, (x: Tensor) => Tensor> = {
  identity: (x) => x,
  tanh: (x) => tanh(x),
  relu: (x) => relu(x),
  gelu: (x) => gelu(x),
};

/** The same stack as a DSL model (nn.dense and nn.loraDense layers), for compileTrainStep. */
export function dslModel(layers: readonly ReferenceLayer[]): Model<never> {
  const built = layers.map((layer, i) =>
    layer.kind === 'dense'
      ? dense(layer.in, layer.out, { bias: layer.bias, name: `layer${i}` })
      : loraDense(
          {
            w: array(layer.w0, [layer.out, layer.in]),
            ...(layer.b0 === undefined ? {} : { b: array(layer.b0, [layer.out]) }),
          },
          layer.rank,
          { alpha: layer.alpha, name: `lora${i}` },
        ),
  );
  const model: Model<{ readonly layers: readonly never[] }> = {
    init: () => {
      throw new Error('checkTrainingOptimizer gives the parameters itself');
    },
    apply(params, x) {
      let h = x;
      built.forEach((layer, i) => {
        h = dslActivation[layers[i].activation]((layer as Model<never>).apply(params.layers[i], h));
      });
      return h;
    },
  };
  return model as unknown as Model<never>;
}

/** A drawn problem of any kind: a stack (TrainingCase) or a token model ('model' in it). */
export type AnyTrainingCase<S> = TrainingCase<S> | TransformerCase<S>;

/** Random problems of the kinds in options.kinds (default stacks only). */
export function anyTrainingCase<S>(
  options: TrainingCaseOptions,
  steps: number,
  settings: fc.Arbitrary<S>,
): fc.Arbitrary<AnyTrainingCase<S>> {
  const kinds = options.kinds ?? ['stack'];
  const drawn: fc.Arbitrary<AnyTrainingCase<S>>[] = [];
  if (kinds.includes('stack')) drawn.push(trainingCase(options, steps, settings));
  if (kinds.includes('transformer')) drawn.push(transformerCase(options, steps, settings));
  return drawn.length === 1 ? drawn[0] : fc.oneof(...drawn);
}

/** Random problems with `steps` batches (shrinking cuts the steps first, then the model). */
export function trainingCase<S>(
  options: TrainingCaseOptions,
  steps: number,
  settings: fc.Arbitrary<S>,
): fc.Arbitrary<TrainingCase<S>> {
  const {
    maxDepth = 2,
    maxWidth = 3,
    maxClasses = 3,
    maxBatch = 4,
    activations = ['tanh', 'relu', 'gelu'],
    task = 'classification',
  } = options;
  const width = fc.integer({ min: 1, max: maxWidth });
  const values = (n: number) => valueArray(n, options.values).map((xs) => Float64Array.from(xs));
  const architecture = fc.record({
    input: width,
    hidden: fc.array(width, { maxLength: maxDepth }),
    classes: fc.integer({ min: minOutputs(task), max: maxClasses }),
    activation: fc.constantFrom(...activations),
    bias: fc.boolean(),
    // A third of the models start with a LoRA layer (rank cut to min(in, out) below; α exact in
    // binary); shrinking turns it back into a dense layer.
    lora:
      options.lora === false
        ? fc.constant(undefined)
        : fc.oneof(
            { arbitrary: fc.constant(undefined), weight: 2 },
            {
              arbitrary: fc.record({
                rank: fc.integer({ min: 1, max: maxWidth }),
                alpha: fc.constantFrom(1, 2, 0.5),
              }),
              weight: 1,
            },
          ),
    batch: fc.integer({ min: 1, max: maxBatch }),
  });
  const length = fc.integer({ min: 1, max: 2 * steps - 1 }).map((k) => Math.min(k, steps));
  return fc
    .tuple(length, architecture, settings, fc.integer({ min: 0, max: 1000 }))
    .chain(([n, arch, drawn, seed]) => {
      const sizes = [arch.input, ...arch.hidden, arch.classes];
      const layers: ReferenceDense[] = sizes.slice(1).map((out, i) => ({
        kind: 'dense',
        in: sizes[i],
        out,
        bias: arch.bias,
        activation: i === sizes.length - 2 ? 'identity' : arch.activation,
      }));
      const first = layers[0];
      const rank = Math.min(arch.lora?.rank ?? 1, first.in, first.out);
      const base = fc.tuple(values(first.in * first.out), values(first.out));
      return fc
        .tuple(
          base,
          fc.tuple(
            ...layers.map((layer) =>
              fc.tuple(...Object.values(layerValueShapes(layer)).map((s) => values(sizeOf(s)))),
            ),
          ),
          fc.tuple(
            ...Array.from({ length: n }, () =>
              fc.tuple(
                values(arch.batch * arch.input),
                batchLabels(task, arch.batch, arch.classes, values),
              ),
            ),
          ),
          arch.lora === undefined
            ? fc.constant(undefined)
            : fc.tuple(values(rank * first.in), values(first.out * rank)),
        )
        .map(([[w0, b0], drawnValues, batches, adapter]) => {
          const stack: ReferenceLayer[] = [...layers];
          let initial: ReferenceLayerValues[] = stack.map((layer, i) => {
            const names = Object.keys(layerValueShapes(layer));
            return Object.fromEntries(names.map((name, k) => [name, drawnValues[i][k]]));
          });
          if (arch.lora !== undefined && adapter !== undefined) {
            stack[0] = {
              kind: 'lora',
              in: first.in,
              out: first.out,
              rank,
              alpha: arch.lora.alpha,
              w0,
              ...(first.bias ? { b0 } : {}),
              activation: first.activation,
            };
            initial = [{ a: adapter[0], b: adapter[1] }, ...initial.slice(1)];
          }
          return {
            layers: stack,
            values: initial,
            batches: batches.map(([x, labels]) => ({ x, labels })),
            batch: arch.batch,
            seed,
            settings: drawn,
          };
        });
    });
}
