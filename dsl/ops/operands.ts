import { builder as b, broadcastShapes, type DType, type Node } from '../../core/ir/index.js';
import { fmtShape, GrngError } from '../../core/errors.js';
import { Tensor, type Operand } from '../tensor.js';
import type { Shape } from '../shape-types.js';

/** Wraps a node as a tensor. */
export function wrap<S extends Shape = Shape>(node: Node): Tensor<S> {
  return new Tensor<S>(node);
}

/** The node of a tensor operand; numbers become scalar constants of `dtype`. */
export function nodeOf(op: string, x: Operand, dtype: DType = 'f32'): Node {
  if (x instanceof Tensor) return x.node;
  if (typeof x === 'number') return b.fill(x, [], dtype);
  throw new GrngError(
    op,
    `expected a Tensor or a number, got ${describe(x)}; build tensors with ` +
      `input(), constant() or array()`,
  );
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'a JS array (wrap it with constant(values))';
  return typeof x === 'object' ? (x.constructor?.name ?? 'an object') : typeof x;
}

/** Broadcasts a node to `shape` (NumPy rules: prepend axes of size 1, then stretch). */
export function broadcastNode(x: Node, shape: readonly number[]): Node {
  const lead = shape.length - x.shape.length;
  const padded = lead > 0 ? b.reshape(x, [...new Array<number>(lead).fill(1), ...x.shape]) : x;
  return b.broadcast(padded, shape);
}

/**
 * Two operands as nodes of one shape: numbers take the tensor's dtype (like JAX's weak types),
 * then both broadcast to their common shape.
 */
export function broadcastPair(op: string, x: Operand, y: Operand): [Node, Node] {
  const dtype = x instanceof Tensor ? x.dtype : y instanceof Tensor ? y.dtype : 'f32';
  const a = nodeOf(op, x, dtype);
  const c = nodeOf(op, y, dtype);
  const shape = broadcastShapes(op, a.shape, c.shape);
  return [broadcastNode(a, shape), broadcastNode(c, shape)];
}

/**
 * Normalizes `axis` (one, several or all when undefined) to sorted, distinct, non-negative axes.
 */
export function normalizeAxes(
  op: string,
  shape: readonly number[],
  axis: number | readonly number[] | undefined,
  rank = shape.length,
): number[] {
  if (axis === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axis === 'number' ? [axis] : [...axis];
  const out = list.map((a) => {
    if (!Number.isInteger(a) || a < -rank || a >= rank) {
      throw new GrngError(
        op,
        `axis ${a} is out of range for a tensor of shape ${fmtShape(shape)}; ` +
          `use an axis in [${-rank}, ${rank - 1}]`,
      );
    }
    return a < 0 ? a + rank : a;
  });
  const sorted = [...new Set(out)].sort((p, q) => p - q);
  if (sorted.length !== out.length)
    throw new GrngError(
      op,
      `axis [${list.join(', ')}] repeats an axis of ${fmtShape(shape)}; list each axis once`,
    );
  return sorted;
}
