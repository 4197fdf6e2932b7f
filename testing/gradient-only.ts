// Whether an optimizer runs from gradients alone. Curvature optimizers (K-FAC, RING, RENG,
// R-Kalman, Sophia) read taps, the loss, Hessian-vector products or the model's output from the
// step context; compileOptimizer cannot give those (only compileTrainStep, with a model and a
// batch, can). Tracing the update once, symbolically, with a context that records such a read
// finds out before anything is compiled, instead of a trace error deep inside a property run.
import { GrngError } from '../core/errors.js';
import { input } from '../dsl/ops/creation.js';
import type { HyperDefaults, LayerInfo, Optimizer } from '../dsl/optimizer.js';
import type { Tensor } from '../dsl/tensor.js';
import type { Tree } from '../core/tree.js';
import { applyUpdate, modelFreeExtras, numericHyper } from '../runtime/compile-optimizer.js';
import { treeOfLeaves } from './trees.js';

/** Thrown by the probe's context when the update reads a training-step-only piece. */
class NeedsModel extends Error {
  constructor(readonly what: string) {
    super(what);
  }
}

/**
 * The first training-step-only piece of the step context (ctx.taps, ctx.hvp, …) that one update
 * of `optimizer` on parameters of `shapes` reads, or undefined when it needs only gradients.
 * Both branches of every(…) that a first step takes are traced (step 1 runs all periodic work).
 * An init that reads its `layers` argument and then fails (no dense layers) also needs a model.
 */
export function trainingStepNeeds<H extends HyperDefaults, S>(
  optimizer: Optimizer<H, S>,
  shapes: readonly (readonly number[])[],
): string | undefined {
  // Checked first: the probe below catches errors, so a non-optimizer would read as "gradients
  // only" (undefined), silently.
  const definition = (optimizer as { definition?: Optimizer<H, S>['definition'] } | null)
    ?.definition;
  if (typeof definition?.init !== 'function' || typeof definition.update !== 'function')
    throw new GrngError(
      'trainingStepNeeds',
      `expected an optimizer (e.g. adamw() or one made with defineOptimizer), got ` +
        `${optimizer === null ? 'null' : typeof optimizer}${definition === undefined ? ' without a definition' : ''}`,
    );
  if (
    !Array.isArray(shapes) ||
    !shapes.every((s) => Array.isArray(s) && s.every((d) => Number.isInteger(d) && d >= 0))
  )
    throw new GrngError(
      'trainingStepNeeds',
      `shapes must be arrays of non-negative integers, got ${JSON.stringify(shapes)}`,
    );
  const leaves = (what: string) =>
    treeOfLeaves(shapes.map((s, k) => input(`probe_${what}_${k}`, s, 'f32') as Tensor));
  const params = leaves('param');
  const grads = leaves('grad');
  const needs = (what: string): never => {
    throw new NeedsModel(what);
  };
  const extras = modelFreeExtras(<T>(_period: number, work: () => T): T => work(), needs);
  // init sees no dense layers here; one that reads them and then fails needs a model (R-Kalman).
  let readLayers = false;
  const layers = new Proxy([] as LayerInfo[], {
    get(target, key, receiver) {
      readLayers = true;
      return Reflect.get(target, key, receiver) as unknown;
    },
  });
  let state: Tree<Tensor>;
  try {
    state = definition.init(params, optimizer.hyper, layers) as Tree<Tensor>;
  } catch {
    return readLayers ? "init's layers (the model's dense layers)" : undefined;
  }
  try {
    const values = numericHyper(definition.hyper).map(
      (k) => input(`probe_hyper_${k}`, [], 'f32') as Tensor,
    );
    const counter = [
      input('probe_seed', [], 'f32') as Tensor,
      input('probe_step', [], 'f32') as Tensor,
    ];
    applyUpdate(
      optimizer,
      optimizer.hyper,
      values,
      { params, state, grads, t: input('probe_t', [], 'f32') as Tensor, counter },
      extras,
    );
  } catch (error) {
    if (error instanceof NeedsModel) return error.what;
    // Anything else is the optimizer's own error: the real run reports it with its context.
  }
  return undefined;
}

/** A GrngError naming `op` when `optimizer` needs a model and a batch (see trainingStepNeeds). */
export function requireGradientOnly<H extends HyperDefaults, S>(
  op: string,
  optimizer: Optimizer<H, S>,
  shapes: readonly (readonly number[])[],
): void {
  const needs = trainingStepNeeds(optimizer, shapes);
  if (needs === undefined) return;
  throw new GrngError(
    op,
    `${optimizer.name} reads ${needs}, which only a training step with a ` +
      `model and a batch provides; ` +
      `${op} covers gradient-only optimizers (run through compileOptimizer). ` +
      `Check this one with checkTrainingOptimizer(optimizer, reference), whose reference ` +
      `gets the model's loss, gradient, Hessian-vector products, output and taps in float64`,
  );
}
