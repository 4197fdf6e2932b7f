import type { Node } from '../../core/ir/node.js';
import { stridesOf } from '../../core/ir/shape.js';
import { wgslRuleOf, type Locate, type Location } from './emitter.js';

/**
 * A node's elements as a strided window of a buffer: element [i₀, i₁, …] is at
 * `at.offset + base + Σ iₓ·strides[x]` of binding `at.name`. Axes of size 1 have stride 0.
 */
export interface StridedView {
  readonly at: Location;
  readonly base: number;
  readonly strides: readonly number[];
}

/**
 * The strided view of `node` when it is a buffer or movement over one that keeps it strided (not
 * pad).
 */
export function stridedView(node: Node, locate: Locate): StridedView | undefined {
  const unit = (strides: readonly number[]) => strides.map((s, i) => (node.shape[i] === 1 ? 0 : s));
  const at = locate(node);
  if (at !== undefined) return { at, base: 0, strides: unit(stridesOf(node.shape)) };
  if (wgslRuleOf(node).kind !== 'index') return undefined;
  const inner = stridedView(node.inputs[0], locate);
  if (inner === undefined) return undefined;
  switch (node.op) {
    case 'permute':
      return {
        ...inner,
        strides: unit((node as Node<'permute'>).attrs.perm.map((p) => inner.strides[p])),
      };
    case 'broadcast': // same rank; the operand's broadcast axes have size 1, so stride 0 already
      return { ...inner, strides: unit(inner.strides) };
    case 'slice': {
      const { starts } = (node as Node<'slice'>).attrs;
      return {
        ...inner,
        base: inner.base + starts.reduce((acc, s, i) => acc + s * inner.strides[i], 0),
        strides: unit(inner.strides),
      };
    }
    case 'reshape': {
      const from = node.inputs[0].shape;
      const fromAxes = from.flatMap((d, i) => (d === 1 ? [] : [{ d, s: inner.strides[i] }]));
      const toDims = node.shape.filter((d) => d !== 1);
      // Only unit axes added or removed: the other axes keep their strides.
      if (fromAxes.length === toDims.length && fromAxes.every((x, i) => x.d === toDims[i])) {
        let j = 0;
        return { ...inner, strides: node.shape.map((d) => (d === 1 ? 0 : fromAxes[j++].s)) };
      }
      // A row-major operand stays row-major.
      const rowMajor = stridesOf(from);
      if (from.every((d, i) => d === 1 || inner.strides[i] === rowMajor[i]))
        return { ...inner, strides: unit(stridesOf(node.shape)) };
      return undefined;
    }
    default:
      return undefined; // pad reads zeros outside its operand
  }
}
