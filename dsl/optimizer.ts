import { GrngError } from '../core/errors.js';
import { isTensor, type Tensor } from './tensor.js';
import { mapTrees, type Tree } from '../core/tree.js';

/**
 * A hyperparameter: numbers are runtime values (changing one never recompiles); booleans and
 * strings choose the code.
 */
export type HyperValue = number | boolean | string;
export type HyperDefaults = { readonly [name: string]: HyperValue };

/** Hyperparameter settings as the user gives them (literal types widened). */
export type HyperSettings<H extends HyperDefaults> = {
  readonly [K in keyof H]: H[K] extends number ? number : H[K] extends boolean ? boolean : H[K];
};

/**
 * Hyperparameters as `update` sees them: numbers are scalar tensors (runtime values), the rest as
 * set.
 */
export type HyperTensors<H extends HyperDefaults> = {
  readonly [K in keyof H]: H[K] extends number ? Tensor<[]> : H[K] extends boolean ? boolean : H[K];
};

/** Parameters, gradients and per-parameter state: named trees of tensors (pytrees). */
export type ParamTree = Tree<Tensor>;

/** Everything an optimizer's update may use. */
export interface StepContext<H extends HyperDefaults, S> {
  readonly params: ParamTree;
  /** ∇L at `params`, shaped like them. */
  readonly grads: ParamTree;
  readonly state: S;
  readonly hyper: HyperTensors<H>;
  /**
   * The hyperparameters as plain values, for the `static` ones (periods, iteration counts) that
   * shape the program.
   */
  readonly settings: HyperSettings<H>;
  /** The step number t = 1, 2, … (a runtime f32 scalar). */
  readonly t: Tensor<[]>;
  /**
   * This step's PRNG key (i32 [2]): the run's seed folded with the step number. Derive one key per
   * use with foldIn(key, n) or split(key); the same seed and step give the same numbers everywhere.
   */
  readonly key: Tensor;
  /** Applies `f` leaf by leaf over trees shaped like the parameters (as jax.tree.map). */
  map(f: (...leaves: Tensor[]) => Tensor, ...trees: readonly ParamTree[]): ParamTree;
  /**
   * `work()` on steps t = 1, 1 + period, 1 + 2·period, … and `otherwise()` on the others (Lazy
   * Fisher). Both must give trees of one structure. Each pattern of active periods is compiled as
   * its own program: nothing branches on the host inside a step, and the skipped work costs
   * nothing.
   */
  every<T>(period: number, work: () => T, otherwise: () => T): T;
  /**
   * Per dense layer: activations a and per-sample pre-activation gradients g (docs/algorithms.md
   * §2). Training steps only.
   */
  readonly taps: readonly LayerTap[];
  /**
   * The minibatch loss as a function of the parameters (for double backprop and finite
   * differences), with the batch's labels or given ones (e.g. sampled from the model):
   * `grad(ctx.loss)(ctx.params)`. Training steps only.
   */
  readonly loss: LossOfParams;
  /**
   * Taps with g from `labels` instead of the batch's (labels sampled from the model give the
   * Monte-Carlo Fisher). Training steps only.
   */
  tapsFor(labels: Tensor): readonly LayerTap[];
  /** The Hessian-vector product ∇²L(θ)·v at the current parameters. Training steps only. */
  hvp(v: ParamTree): ParamTree;
  /**
   * The model's output as a function of the parameters (for Jacobian products via vjp/jvp).
   * Training steps only.
   */
  output(params: ParamTree): Tensor;
  /** The minibatch's labels. Training steps only. */
  readonly labels: Tensor;
}

/**
 * ctx.loss: two signatures rather than an optional `labels`, so that grad(ctx.loss) and
 * valueAndGrad(ctx.loss) type-check (TypeScript infers a function's arguments from its last
 * signature, and a transform's arguments must all be tensor trees).
 */
export interface LossOfParams {
  (params: ParamTree, labels: Tensor): Tensor;
  (params: ParamTree): Tensor;
}

/** A dense layer of the model, as init sees it: its parameters (leaves of the params tree). */
export interface LayerInfo {
  readonly name: string;
  /** W [d_out, d_in]. */
  readonly w: Tensor;
  /** b [d_out], when the layer has a bias (its taps' a then carry a ones column). */
  readonly b?: Tensor;
}

/** A dense layer's curvature statistics for one minibatch. */
export interface LayerTap {
  readonly name: string;
  /** Input activations [B, d_in] (with a ones column when the layer has a bias). */
  readonly a: Tensor;
  /** Per-sample pre-activation gradients g_n = ∂ℓ_n/∂s_n [B, d_out] (not divided by B). */
  readonly g: Tensor;
  /**
   * The layer's parameters (W [d_out, d_in], and b when a carries a ones column): leaves of
   * ctx.params.
   */
  readonly w: Tensor;
  readonly b?: Tensor;
}

export interface OptimizerDefinition<H extends HyperDefaults, S> {
  readonly name: string;
  /** Every hyperparameter with its default (PyTorch-style names). */
  readonly hyper: H;
  /**
   * Numeric hyperparameters that shape the program (an every() period, an iteration count): read
   * them from ctx.settings; changing one recompiles. Other numbers are runtime values.
   */
  readonly static?: readonly (keyof H & string)[];
  /** A message saying what is wrong with these settings, or undefined when they are valid. */
  readonly validate?: (hyper: HyperSettings<H>) => string | undefined;
  /**
   * The initial state for `params` (symbolic tensors), e.g. zeros shaped like them. `layers` lists
   * the model's dense layers (training steps only; empty otherwise), for per-layer state such as
   * Kronecker factors.
   */
  readonly init: (params: ParamTree, hyper: HyperSettings<H>, layers: readonly LayerInfo[]) => S;
  /** One step: new parameters and state. Pure: everything it needs comes from the context. */
  readonly update: (ctx: StepContext<H, S>) => { readonly params: ParamTree; readonly state: S };
  /**
   * Scalars a training step can return as metrics, by name (`metrics: ['loss', 'fallbacks']`),
   * each a rank-0 tensor computed from the updated state: e.g. K-FAC's count of inverse refreshes
   * that needed the guarded fallback.
   */
  readonly report?: Readonly<Record<string, (state: S) => Tensor>>;
}

/** An optimizer with its hyperparameters set: what compileOptimizer and compileTrainStep run. */
export interface Optimizer<H extends HyperDefaults = HyperDefaults, S = unknown> {
  readonly name: string;
  readonly hyper: HyperSettings<H>;
  readonly definition: OptimizerDefinition<H, S>;
  /** The same optimizer with some hyperparameters changed (checked like the originals). */
  with(changes: Partial<HyperSettings<H>>): Optimizer<H, S>;
}

/** Applies `f` leaf by leaf over trees of tensors of one structure (as jax.tree.map). */
export function treeMap(
  f: (...leaves: Tensor[]) => Tensor,
  ...trees: readonly ParamTree[]
): ParamTree {
  return mapTrees(
    'treeMap',
    isTensor,
    f,
    trees,
    trees.map((_, i) => (i === 0 ? 'the first tree' : `tree ${i + 1}`)),
  );
}

/**
 * Defines an optimizer as data: a name, hyperparameters with defaults, the initial state and a
 * pure update. Returns a factory taking hyperparameter settings (`adamw({ lr: 1e-3 })`); wrong
 * names, types or values are GrngErrors naming the optimizer.
 */
export function defineOptimizer<H extends HyperDefaults, S>(
  definition: OptimizerDefinition<H, S>,
): (settings?: Partial<HyperSettings<H>>) => Optimizer<H, S> {
  checkDefinition('defineOptimizer', definition as unknown as Record<string, unknown>, [
    'init',
    'update',
  ]);
  const make = (hyper: HyperSettings<H>): Optimizer<H, S> => ({
    name: definition.name,
    hyper,
    definition,
    with: (changes) => make(checkHyper(definition, { ...hyper, ...changes })),
  });
  return (settings = {}) =>
    make(checkHyper(definition, { ...(definition.hyper as HyperSettings<H>), ...settings }));
}

/**
 * A GrngError naming the first thing wrong with an optimizer's (or transform's) definition: a
 * JavaScript caller can pass anything, and a missing update would otherwise fail deep inside a
 * compile as a TypeError.
 */
export function checkDefinition(
  op: string,
  definition: Record<string, unknown>,
  functions: readonly string[],
): void {
  if (typeof definition !== 'object' || definition === null)
    throw new GrngError(op, `expected a definition object, got ${String(definition)}`);
  const { name, hyper } = definition;
  if (typeof name !== 'string' || name === '')
    throw new GrngError(
      op,
      `the definition needs a name (a non-empty string), got ${String(name)}`,
    );
  if (typeof hyper !== 'object' || hyper === null || Array.isArray(hyper))
    throw new GrngError(
      op,
      `${name}: hyper must be an object of defaults ({ lr: 1e-3, ... }), got ${String(hyper)}`,
    );
  for (const [key, value] of Object.entries(hyper)) {
    const ok =
      typeof value === 'boolean' ||
      typeof value === 'string' ||
      (typeof value === 'number' && Number.isFinite(value));
    if (!ok)
      throw new GrngError(
        op,
        `${name}: hyperparameter '${key}' must default to a finite number, a boolean or a ` +
          `string, got ${JSON.stringify(value) ?? typeof value}`,
      );
  }
  for (const f of functions)
    if (typeof definition[f] !== 'function')
      throw new GrngError(op, `${name}: ${f} must be a function, got ${typeof definition[f]}`);
  if (definition.validate !== undefined && typeof definition.validate !== 'function')
    throw new GrngError(
      op,
      `${name}: validate must be a function, got ${typeof definition.validate}`,
    );
  const statics = definition.static;
  if (
    statics !== undefined &&
    (!Array.isArray(statics) || !statics.every((k) => typeof k === 'string' && k in hyper))
  )
    throw new GrngError(
      op,
      `${name}: static must list names of its hyperparameters ` +
        `(${Object.keys(hyper).join(', ')}), got ${JSON.stringify(statics)}`,
    );
}

function checkHyper<H extends HyperDefaults, S>(
  definition: OptimizerDefinition<H, S>,
  settings: Record<string, unknown>,
): HyperSettings<H> {
  const op = definition.name;
  for (const [name, value] of Object.entries(settings)) {
    if (!(name in definition.hyper)) {
      throw new GrngError(
        op,
        `unknown hyperparameter '${name}'; ${op} takes ${Object.keys(definition.hyper).join(', ')}`,
      );
    }
    const want = typeof definition.hyper[name];
    if (typeof value !== want)
      throw new GrngError(
        op,
        `hyperparameter '${name}' must be a ${want}, got ${typeof value} ${String(value)}`,
      );
    if (want === 'number' && !Number.isFinite(value))
      throw new GrngError(
        op,
        `hyperparameter '${name}' must be a finite number, got ${String(value)}`,
      );
  }
  const hyper = settings as HyperSettings<H>;
  const problem = definition.validate?.(hyper);
  if (problem !== undefined) throw new GrngError(op, problem);
  return hyper;
}

/**
 * `ctx` with some fields replaced, for optimizers that run another's update (chain, partition,
 * scheduled). It is copied by property descriptors: spreading it would evaluate its lazy getters
 * (taps, loss), tracing work the inner update may never use.
 */
export function contextWith<C extends object>(ctx: C, changes: PropertyDescriptorMap): C {
  return Object.defineProperties(
    Object.defineProperties({}, Object.getOwnPropertyDescriptors(ctx)),
    changes,
  ) as C;
}

/**
 * A message when `value` lies outside [lo, hi) (or [lo, hi] when `closed`), for validate functions.
 */
export function outside(
  name: string,
  value: number,
  lo: number,
  hi: number,
  closed = false,
): string | undefined {
  const ok = value >= lo && (closed ? value <= hi : value < hi);
  return ok ? undefined : `${name} must be in [${lo}, ${hi}${closed ? ']' : ')'}, got ${value}`;
}
