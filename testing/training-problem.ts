// One drawn problem of checkTrainingOptimizer seen through a common face, whatever kind of model it
// is (a dense/LoRA stack on reference-model.ts, a token model on reference-transformer.ts): its
// leaves, its DSL twin and its float64 reference pass with taps naming leaves by index.
import type { HostArray } from '../core/host-array.js';
import type { Tree } from '../core/tree.js';
import type { Model } from '../dsl/nn/layers.js';
import type { TrainingTap } from './check-training-optimizer.js';
import { formatLeaves } from './compare.js';
import { referencePass, type ReferenceLayer, type ReferenceTarget } from './reference-model.js';
import { tokenLeaves, tokenPass } from './reference-transformer.js';
import {
  dslModel,
  fromLeaves,
  hostParams,
  leafNames,
  leafShapes,
  toLeaves,
  type AnyTrainingCase,
} from './training-case.js';
import { describeTokenModel, tokenDslModel, tokenHostParams } from './transformer-case.js';

export interface ProblemPass {
  readonly loss: number;
  readonly output: Float64Array;
  readonly gradient: Float64Array[];
  readonly hvp: Float64Array[];
  readonly taps: TrainingTap[];
}

export interface TrainingProblem {
  readonly names: string[];
  readonly shapes: number[][];
  /** Columns of the inputs x [batch × inputWidth]. */
  readonly inputWidth: number;
  readonly classes: number;
  /** Initial leaves (after `round`). */
  readonly initial: Float64Array[];
  readonly model: Model<never>;
  hostParams(leaves: readonly Float64Array[]): Tree<HostArray>;
  pass(
    params: readonly Float64Array[],
    x: Float64Array,
    labels: ReferenceTarget,
    v?: readonly Float64Array[],
  ): ProblemPass;
  /** For failure messages. */
  readonly description: string;
}

/** The problem of a drawn case; `round` maps the values a float32 device holds. */
export function trainingProblem<S>(
  c: AnyTrainingCase<S>,
  round: (x: Float64Array) => Float64Array = (x) => x,
): TrainingProblem {
  if ('model' in c) {
    const { names, shapes } = tokenLeaves(c.model);
    return {
      names,
      shapes,
      inputWidth: c.model.tokens * c.model.dim,
      classes: c.model.classes,
      initial: c.leaves.map(round),
      model: tokenDslModel(c.model),
      hostParams: (leaves) => tokenHostParams(c.model, leaves),
      pass(params, x, labels, v) {
        const p = tokenPass(c.model, params, x, labels, v);
        return {
          ...p,
          taps: p.taps.map((tap) => {
            const { w, b, ...rest } = tap;
            return {
              ...rest,
              w: names.indexOf(w),
              ...(b === undefined ? {} : { b: names.indexOf(b) }),
            };
          }),
        };
      },
      description: `model: ${describeTokenModel(c.model)}`,
    };
  }
  // A float32 device holds rounded values: the reference starts from the same numbers.
  const layers: ReferenceLayer[] = c.layers.map((layer) =>
    layer.kind === 'lora'
      ? {
          ...layer,
          w0: round(layer.w0),
          ...(layer.b0 === undefined ? {} : { b0: round(layer.b0) }),
        }
      : layer,
  );
  const names = leafNames(layers);
  return {
    names,
    shapes: leafShapes(layers),
    inputWidth: layers[0].in,
    classes: layers[layers.length - 1].out,
    initial: toLeaves(c.values).map(round),
    model: dslModel(layers),
    hostParams: (leaves) => hostParams(layers, fromLeaves(layers, leaves)),
    pass(params, x, labels, v) {
      const p = referencePass(
        layers,
        fromLeaves(layers, params),
        x,
        labels,
        v === undefined ? undefined : fromLeaves(layers, v),
      );
      return {
        loss: p.loss,
        output: p.output,
        gradient: toLeaves(p.gradient),
        hvp: toLeaves(p.hvp),
        taps: p.taps.map((tap): TrainingTap => {
          const w = names.indexOf(`layers.${tap.layer}.${tap.w}`);
          const b = tap.b === undefined ? -1 : names.indexOf(`layers.${tap.layer}.${tap.b}`);
          return {
            a: tap.a,
            g: tap.g,
            batch: tap.batch,
            positions: 1,
            in: tap.in,
            out: tap.out,
            w,
            ...(b < 0 ? {} : { b }),
          };
        }),
      };
    },
    description: `model: ${c.layers.map(describeLayer).join(', ')}`,
  };
}

function describeLayer(layer: ReferenceLayer): string {
  const act = layer.activation === 'identity' ? '' : ` → ${layer.activation}`;
  return layer.kind === 'dense'
    ? `dense ${layer.in}→${layer.out}${layer.bias ? '' : ' (no bias)'}${act}`
    : `lora ${layer.in}→${layer.out} rank ${layer.rank} alpha ${layer.alpha} ` +
        `(W₀ ${formatLeaves([layer.w0])}${layer.b0 === undefined ? '' : `, b₀ ${formatLeaves([layer.b0])}`})${act}`;
}
