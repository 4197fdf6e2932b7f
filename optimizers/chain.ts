// optax-style composition: gradient transformations (clipping, weight decay, …) applied in order
// before an optimizer's update, as one optimizer with one compiled step.
import {
  add,
  div,
  globalSqnorm,
  minimum,
  mul,
  sqrt,
  GrngError,
  flattenTree,
} from '../dsl/index.js';
import { isTensor } from '../dsl/tensor.js';
import {
  checkDefinition,
  contextWith,
  defineOptimizer,
  outside,
  type HyperDefaults,
  type HyperSettings,
  type LayerInfo,
  type Optimizer,
  type ParamTree,
  type StepContext,
} from '../dsl/optimizer.js';

/** A gradient transformation: like an optimizer, but its update returns transformed gradients. */
export interface Transform<H extends HyperDefaults = HyperDefaults, S = unknown> {
  readonly name: string;
  readonly hyper: HyperSettings<H>;
  readonly validate?: (hyper: HyperSettings<H>) => string | undefined;
  readonly init: (params: ParamTree, hyper: HyperSettings<H>, layers: readonly LayerInfo[]) => S;
  readonly update: (ctx: StepContext<H, S>) => { readonly grads: ParamTree; readonly state: S };
}

/** Defines a transformation factory (settings checked like an optimizer's). */
export function defineTransform<H extends HyperDefaults, S>(
  definition: Omit<Transform<H, S>, 'hyper'> & { readonly hyper: H },
) {
  // The update is checked here: the definition passed on below replaces it.
  checkDefinition('defineTransform', definition as unknown as Record<string, unknown>, [
    'init',
    'update',
  ]);
  const check = defineOptimizer({
    name: definition.name,
    hyper: definition.hyper,
    validate: definition.validate,
    init: definition.init,
    update: () => {
      throw new GrngError(definition.name, 'internal: a transform runs inside chain()');
    },
  });
  return (settings: Partial<HyperSettings<H>> = {}): Transform<H, S> => ({
    ...definition,
    hyper: check(settings).hyper,
  });
}

/** g ← g · min(1, maxNorm / ‖g‖) with ‖g‖ the global norm over all parameters. */
export const clipByGlobalNorm = defineTransform({
  name: 'clipByGlobalNorm',
  hyper: { maxNorm: 1 },
  validate: (h) => outside('maxNorm', h.maxNorm, Number.MIN_VALUE, Infinity),
  init: () => ({}),
  update: ({ grads, hyper, map }) => {
    const norm = sqrt(
      globalSqnorm(flattenTree('clipByGlobalNorm', grads, isTensor, 'a Tensor').leaves),
    );
    const scale = minimum(1, div(hyper.maxNorm, norm));
    return { grads: map((g) => mul(g, scale), grads), state: {} };
  },
});

/** g ← g + λθ (coupled weight decay, as an L2 term's gradient). */
export const addWeightDecay = defineTransform({
  name: 'addWeightDecay',
  hyper: { weightDecay: 1e-4 },
  validate: (h) => outside('weightDecay', h.weightDecay, 0, Infinity),
  init: () => ({}),
  update: ({ grads, params, hyper, map }) => ({
    grads: map((g, p) => add(g, mul(hyper.weightDecay, p)), grads, params),
    state: {},
  }),
});

/** A part of a chain as chain sees it (parts differ in hyperparameters, so it is typed loosely). */
export interface ChainPart {
  readonly name: string;
  readonly hyper: object;
}

/**
 * The optimizer that applies `transforms` to the gradients in order, then `optimizer`'s update.
 * The hyperparameters of all parts form one set: a name only one part uses keeps its name, a name
 * several parts use is qualified by the part (`adam.weightDecay`). State is kept per part.
 */
export function chain(
  ...parts: readonly ChainPart[]
): Optimizer<HyperDefaults, Record<string, unknown>> {
  const optimizer = parts[parts.length - 1] as Optimizer<HyperDefaults, unknown>;
  const transforms = parts.slice(0, -1) as Transform<HyperDefaults, unknown>[];
  if (typeof optimizer?.definition?.update !== 'function')
    throw new GrngError(
      'chain',
      'the last part must be an optimizer, e.g. chain(clipByGlobalNorm(), adamw())',
    );
  if (!transforms.every((t) => typeof t.update === 'function'))
    throw new GrngError(
      'chain',
      'every part but the last must be a transform (clipByGlobalNorm(), ' +
        'addWeightDecay(), defineTransform(...))',
    );
  const names = [...transforms.map((t) => t.name), optimizer.name];
  if (new Set(names).size !== names.length)
    throw new GrngError('chain', `each part may appear once, got ${names.join(', ')}`);
  const all = [
    ...transforms.map((t) => t.hyper as HyperDefaults),
    optimizer.hyper as HyperDefaults,
  ];
  const uses = new Map<string, number>();
  for (const h of all) for (const k of Object.keys(h)) uses.set(k, (uses.get(k) ?? 0) + 1);
  const qualified = (k: string, i: number) =>
    (uses.get(k) as number) > 1 ? `${names[i]}.${k}` : k;
  const merged = Object.fromEntries(
    all.flatMap((h, i) => Object.entries(h).map(([k, v]) => [qualified(k, i), v])),
  ) as HyperDefaults;
  const own = <T>(hyper: Readonly<Record<string, T>>, i: number) =>
    Object.fromEntries(Object.keys(all[i]).map((k) => [k, hyper[qualified(k, i)]]));
  return defineOptimizer<HyperDefaults, Record<string, unknown>>({
    name: `chain(${names.join(', ')})`,
    hyper: merged,
    static: [
      ...transforms.map((t) => (t as { static?: readonly string[] }).static ?? []),
      optimizer.definition.static ?? [],
    ].flatMap((keys, i) => keys.map((k) => qualified(k, i))),
    validate: (h) =>
      transforms.map((t, i) => t.validate?.(own(h, i) as never)).find((m) => m !== undefined) ??
      optimizer.definition.validate?.(own(h, transforms.length) as never),
    init: (params, h, layers) =>
      Object.fromEntries(
        names.map((name, i) => [
          name,
          i < transforms.length
            ? transforms[i].init(params, own(h, i), layers)
            : optimizer.definition.init(params, own(h, i) as never, layers),
        ]),
      ),
    update: (ctx) => {
      let grads = ctx.grads;
      const state: Record<string, unknown> = {};
      const part = (i: number) =>
        contextWith(ctx, {
          grads: { value: grads },
          hyper: { value: own(ctx.hyper as Record<string, unknown>, i) },
          settings: { value: own(ctx.settings as Record<string, unknown>, i) },
          state: { value: ctx.state[names[i]] },
        }) as never;
      transforms.forEach((t, i) => {
        const out = t.update(part(i));
        grads = out.grads;
        state[t.name] = out.state;
      });
      const out = optimizer.definition.update(part(transforms.length));
      state[optimizer.name] = out.state;
      return { params: out.params, state };
    },
  })(merged as HyperSettings<HyperDefaults>);
}
