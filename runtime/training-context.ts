import { GrngError } from '../core/errors.js';
import { grad, hvp, mul, zerosLike } from '../dsl/index.js';
import type { Model } from '../dsl/nn/layers.js';
import { recordTaps } from '../dsl/nn/taps.js';
import type { LayerTap, ParamTree } from '../dsl/optimizer.js';
import type { Tensor } from '../dsl/tensor.js';
import type { StepExtras } from './compile-optimizer.js';

/**
 * The curvature side of a training step's context: the loss and model output as functions of
 * the parameters, Hessian-vector products, and the dense layers' taps, all built lazily inside the
 * step's trace (an optimizer that never reads them adds nothing to the program).
 */
export function trainingExtras(
  model: Model<ParamTree>,
  lossOf: (output: Tensor, y: Tensor) => Tensor,
  params: ParamTree,
  x: Tensor,
  y: Tensor,
  every: StepExtras['every'],
): StepExtras {
  const output = (p: ParamTree) => model.apply(p, x);
  const loss = (p: ParamTree, labels: Tensor = y) => lossOf(output(p), labels);
  let taps: LayerTap[] | undefined;
  return {
    every,
    labels: y,
    output,
    loss,
    hvp: (v) => hvp((p: ParamTree) => loss(p))(params, v),
    get taps() {
      taps ??= layerTaps(model, lossOf, params, x, y);
      return taps;
    },
    tapsFor: (labels) => layerTaps(model, lossOf, params, x, labels),
  };
}

/**
 * a from a recorded forward pass; g = B·∂L/∂s from the gradient with respect to zero probes added
 * to each layer's pre-activations (for the mean loss of docs/algorithms.md §2, ∂L/∂s_n = g_n / B).
 */
function layerTaps(
  model: Model<ParamTree>,
  lossOf: (output: Tensor, y: Tensor) => Tensor,
  params: ParamTree,
  x: Tensor,
  y: Tensor,
): LayerTap[] {
  const { taps } = recordTaps(() => model.apply(params, x));
  if (taps.length === 0)
    throw new GrngError(
      'ctx.taps',
      'the model records no dense layers (build it from nn.dense, nn.mlp, nn.lora or nn.loraDense)',
    );
  const probed = (probes: Tensor[]) =>
    recordTaps(() => lossOf(model.apply(params, x), y), probes).result;
  const dProbes = grad(probed)(taps.map((t) => zerosLike(t.s))) as Tensor[];
  const batch = x.shape[0];
  return taps.map((t, i) => ({ name: t.name, a: t.a, g: mul(dProbes[i], batch), w: t.w, b: t.b }));
}
