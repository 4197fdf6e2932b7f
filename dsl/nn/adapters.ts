// How nn.lora reaches the dense layers of a model it did not build: while a LoRA model applies
// its base model, every dense layer whose weight is a targeted one adds its low-rank branch (a
// small form of flax's method interception). Keyed by the weight's IR node, as partition finds
// a layer's parameters.
import type { Node } from '../../core/ir/node.js';
import type { Tensor } from '../tensor.js';

/** A dense layer's low-rank branch: s·(x Aᵀ) Bᵀ with A [r, in], B [out, r]. */
export interface DenseAdapter {
  readonly a: Tensor;
  readonly b: Tensor;
  readonly scale: number;
}

interface Scope {
  readonly adapters: ReadonlyMap<Node, DenseAdapter>;
  readonly used: Set<Node>;
}

let active: Scope | undefined;

/**
 * Runs `f` with `adapters` attached to the dense layers whose weight node is a key; returns f's
 * result and the weight nodes whose layer was applied (the caller checks every adapter was).
 */
export function withAdapters<R>(
  adapters: ReadonlyMap<Node, DenseAdapter>,
  f: () => R,
): { result: R; used: ReadonlySet<Node> } {
  const outer = active;
  const scope: Scope = { adapters, used: new Set() };
  active = scope;
  try {
    return { result: f(), used: scope.used };
  } finally {
    active = outer;
  }
}

/** Called by dense layers: the adapter of the layer with weight `w`, if one is attached. */
export function adapterOf(w: Tensor): DenseAdapter | undefined {
  const adapter = active?.adapters.get(w.node);
  if (adapter !== undefined) active?.used.add(w.node);
  return adapter;
}
