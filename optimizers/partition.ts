// optax.multi_transform in grng: different optimizers for different parameters, chosen by path
// (e.g. K-FAC for the dense layers and AdamW for the rest, or a fallback for what a curvature
// method does not cover), as one optimizer with one compiled step.
import { GrngError, flattenTree } from '../dsl/index.js';
import { isTensor, type Tensor } from '../dsl/tensor.js';
import { leafPaths as treeLeafPaths } from '../dsl/index.js';
import type { ChainPart } from './chain.js';
import {
  contextWith,
  defineOptimizer,
  type HyperDefaults,
  type HyperSettings,
  type Optimizer,
  type ParamTree,
} from '../dsl/optimizer.js';

const leafPaths = (tree: ParamTree): string[] =>
  treeLeafPaths('partition', tree, isTensor, 'a Tensor');

/**
 * One optimizer per label: `label(path)` names the optimizer for the parameter at `path`. Each
 * optimizer sees its parameters (and their gradients) as a list and the taps of its layers.
 * Hyperparameter names are qualified by label (`dense.lr`, `rest.lr`).
 */
export function partition(
  label: (path: string) => string,
  optimizers: Readonly<Record<string, ChainPart>>,
): Optimizer<HyperDefaults, Record<string, unknown>> {
  const labels = Object.keys(optimizers);
  if (labels.length === 0) throw new GrngError('partition', 'give at least one optimizer');
  const parts = labels.map((l) => optimizers[l] as Optimizer<HyperDefaults, unknown>);
  if (!parts.every((o) => typeof o?.definition?.update === 'function'))
    throw new GrngError(
      'partition',
      'every entry must be an optimizer, e.g. { dense: kfac(), rest: adamw() }',
    );
  const merged = Object.fromEntries(
    parts.flatMap((o, i) => Object.entries(o.hyper).map(([k, v]) => [`${labels[i]}.${k}`, v])),
  ) as HyperDefaults;
  const own = <T>(hyper: Readonly<Record<string, T>>, i: number) =>
    Object.fromEntries(Object.keys(parts[i].hyper).map((k) => [k, hyper[`${labels[i]}.${k}`]]));
  const groups = (params: ParamTree) => {
    const paths = leafPaths(params);
    const chosen = paths.map((p) => label(p));
    const unknown = chosen.find((c) => !labels.includes(c));
    if (unknown !== undefined)
      throw new GrngError(
        'partition',
        `label '${unknown}' (for ${paths[chosen.indexOf(unknown)]}) has no ` +
          `optimizer; labels: ${labels.join(', ')}`,
      );
    return labels.map((l) => chosen.flatMap((c, i) => (c === l ? [i] : [])));
  };
  const pick = (tree: ParamTree, indices: readonly number[]): Tensor[] => {
    const leaves = flattenTree('partition', tree, isTensor, 'a Tensor').leaves;
    return indices.map((i) => leaves[i]);
  };
  return defineOptimizer<HyperDefaults, Record<string, unknown>>({
    name: `partition(${labels.join(', ')})`,
    hyper: merged,
    static: parts.flatMap((o, i) => (o.definition.static ?? []).map((k) => `${labels[i]}.${k}`)),
    validate: (h) =>
      parts.map((o, i) => o.definition.validate?.(own(h, i) as never)).find((m) => m !== undefined),
    init: (params, h, layers) => {
      const idx = groups(params);
      return Object.fromEntries(
        labels.map((l, i) => {
          const mine = new Set(pick(params, idx[i]).map((t) => t.node));
          return [
            l,
            parts[i].definition.init(
              pick(params, idx[i]),
              own(h, i) as never,
              layers.filter((layer) => mine.has(layer.w.node)),
            ),
          ];
        }),
      );
    },
    update: (ctx) => {
      const idx = groups(ctx.params);
      const next = flattenTree('partition', ctx.params, isTensor, 'a Tensor');
      const leaves = [...next.leaves];
      const state: Record<string, unknown> = {};
      labels.forEach((l, i) => {
        const params = pick(ctx.params, idx[i]);
        const mine = new Set(params.map((t) => t.node));
        const inGroup = (taps: readonly { w: Tensor }[]) => taps.filter((t) => mine.has(t.w.node));
        // The group's taps stay lazy getters, as the context's own.
        const part = contextWith(ctx, {
          params: { value: params },
          grads: { value: pick(ctx.grads, idx[i]) },
          state: { value: (ctx.state as Record<string, unknown>)[l] },
          hyper: { value: own(ctx.hyper as Record<string, unknown>, i) },
          settings: { value: own(ctx.settings as Record<string, unknown>, i) },
          taps: { get: () => inGroup(ctx.taps) },
          tapsFor: { value: (labelsFor: Tensor) => inGroup(ctx.tapsFor(labelsFor)) },
        });
        const out = parts[i].definition.update(part as never);
        const updated = flattenTree('partition', out.params, isTensor, 'a Tensor').leaves;
        idx[i].forEach((leaf, k) => (leaves[leaf] = updated[k]));
        state[l] = out.state;
      });
      return { params: next.rebuild(leaves) as ParamTree, state };
    },
  })(merged as HyperSettings<HyperDefaults>);
}
