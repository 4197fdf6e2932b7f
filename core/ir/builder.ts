import { opTable } from '../ops/table.js';
import type { DType } from './dtype.js';
import { intern, type Node } from './node.js';
import type { Primitive, PrimitiveAttrs } from './primitives.js';
import { shapesEqual, type Shape } from './shape.js';

/**
 * Builds IR nodes: runs the op table's inference (which validates operands), then interns.
 * A few exact local rewrites keep derivative graphs small (x*1, x+0, identity movements);
 * hash-consing in `intern` makes equal subgraphs one node (common-subexpression elimination).
 */
export function emit<P extends Primitive>(
  op: P,
  inputs: readonly Node[],
  attrs: PrimitiveAttrs[P],
): Node<P> {
  const rule = opTable[op];
  const { shape, dtype } = rule.infer(inputs, attrs);
  return intern(op, inputs, attrs, shape, dtype);
}

const E = {};

/** The splat value of a constant node, or undefined when `x` is not a splat constant. */
export function splatValue(x: Node): number | undefined {
  if (x.op !== 'constant') return undefined;
  const attrs = x.attrs as PrimitiveAttrs['constant'];
  return 'value' in attrs ? attrs.value : undefined;
}

// Local rewrites only fire on well-typed operands, so invalid programs still reach `infer` and fail
// loudly.
function sameType(a: Node, b: Node): boolean {
  return a.dtype === b.dtype && shapesEqual(a.shape, b.shape);
}

function fill(value: number, shape: Shape, dtype: DType = 'f32'): Node {
  return emit('constant', [], { shape: [...shape], dtype, value });
}

export const builder = {
  emit,
  fill,
  fillLike: (value: number, like: Node): Node => fill(value, like.shape, like.dtype),
  zerosLike: (like: Node): Node => fill(0, like.shape, like.dtype),
  input: (name: string, shape: Shape, dtype: DType): Node =>
    emit('input', [], { name, shape: [...shape], dtype }),
  iota: (shape: Shape, axis: number, dtype: DType = 'i32'): Node =>
    emit('iota', [], { shape: [...shape], axis, dtype }),

  neg: (x: Node): Node => (x.op === 'neg' ? x.inputs[0] : emit('neg', [x], E)),
  exp: (x: Node): Node => emit('exp', [x], E),
  log: (x: Node): Node => emit('log', [x], E),
  sqrt: (x: Node): Node => emit('sqrt', [x], E),
  rsqrt: (x: Node): Node => emit('rsqrt', [x], E),
  recip: (x: Node): Node => emit('recip', [x], E),
  sin: (x: Node): Node => emit('sin', [x], E),
  cos: (x: Node): Node => emit('cos', [x], E),
  tanh: (x: Node): Node => emit('tanh', [x], E),
  abs: (x: Node): Node => emit('abs', [x], E),
  sign: (x: Node): Node => emit('sign', [x], E),
  floor: (x: Node): Node => emit('floor', [x], E),
  isFinite: (x: Node): Node => emit('isFinite', [x], E),
  cast: (x: Node, dtype: DType): Node => (x.dtype === dtype ? x : emit('cast', [x], { dtype })),
  stopGradient: (x: Node): Node => emit('stopGradient', [x], E),

  add: (a: Node, b: Node): Node =>
    sameType(a, b) && splatValue(b) === 0
      ? a
      : sameType(a, b) && splatValue(a) === 0
        ? b
        : emit('add', [a, b], E),
  sub: (a: Node, b: Node): Node =>
    sameType(a, b) && splatValue(b) === 0 ? a : emit('sub', [a, b], E),
  mul: (a: Node, b: Node): Node =>
    sameType(a, b) && splatValue(b) === 1
      ? a
      : sameType(a, b) && splatValue(a) === 1
        ? b
        : emit('mul', [a, b], E),
  div: (a: Node, b: Node): Node =>
    sameType(a, b) && splatValue(b) === 1 ? a : emit('div', [a, b], E),
  pow: (a: Node, b: Node): Node => emit('pow', [a, b], E),
  max: (a: Node, b: Node): Node => emit('max', [a, b], E),
  min: (a: Node, b: Node): Node => emit('min', [a, b], E),
  lt: (a: Node, b: Node): Node => emit('lt', [a, b], E),
  le: (a: Node, b: Node): Node => emit('le', [a, b], E),
  gt: (a: Node, b: Node): Node => emit('gt', [a, b], E),
  ge: (a: Node, b: Node): Node => emit('ge', [a, b], E),
  eq: (a: Node, b: Node): Node => emit('eq', [a, b], E),
  ne: (a: Node, b: Node): Node => emit('ne', [a, b], E),
  bitAnd: (a: Node, b: Node): Node => emit('bitAnd', [a, b], E),
  bitOr: (a: Node, b: Node): Node => emit('bitOr', [a, b], E),
  bitXor: (a: Node, b: Node): Node => emit('bitXor', [a, b], E),
  shiftLeft: (a: Node, b: Node): Node => emit('shiftLeft', [a, b], E),
  shiftRight: (a: Node, b: Node): Node => emit('shiftRight', [a, b], E),
  select: (cond: Node, a: Node, b: Node): Node => (a === b ? a : emit('select', [cond, a, b], E)),
  /** `x * c` for a number c, as a splat constant of x's shape. */
  scale: (x: Node, c: number): Node => builder.mul(x, fill(c, x.shape, x.dtype)),

  reshape: (x: Node, shape: Shape): Node =>
    shapesEqual(x.shape, shape) ? x : emit('reshape', [x], { shape: [...shape] }),
  permute: (x: Node, perm: readonly number[]): Node => {
    if (perm.every((p, i) => p === i)) return x;
    // A permutation of a permutation is one permutation (transposing twice is nothing).
    if (x.op === 'permute') {
      const inner = (x.attrs as PrimitiveAttrs['permute']).perm;
      return builder.permute(
        x.inputs[0],
        perm.map((p) => inner[p]),
      );
    }
    // (a·b)ᵀ = bᵀ·aᵀ: the product comes out in the layout wanted (a weight gradient in the
    // weight's layout), and the operands' transposes are free index arithmetic in the matmul.
    const r = perm.length;
    if (
      x.op === 'matmul' &&
      r >= 2 &&
      perm[r - 2] === r - 1 &&
      perm[r - 1] === r - 2 &&
      perm.slice(0, r - 2).every((p, i) => p === i)
    ) {
      return builder.matmul(builder.transposeLast(x.inputs[1]), builder.transposeLast(x.inputs[0]));
    }
    return emit('permute', [x], { perm: [...perm] });
  },
  broadcast: (x: Node, shape: Shape): Node =>
    shapesEqual(x.shape, shape) ? x : emit('broadcast', [x], { shape: [...shape] }),
  slice: (x: Node, starts: readonly number[], ends: readonly number[]): Node =>
    starts.every((s) => s === 0) && shapesEqual(ends, x.shape)
      ? x
      : emit('slice', [x], { starts: [...starts], ends: [...ends] }),
  pad: (x: Node, lo: readonly number[], hi: readonly number[]): Node =>
    lo.every((p) => p === 0) && hi.every((p) => p === 0)
      ? x
      : emit('pad', [x], { lo: [...lo], hi: [...hi] }),
  reduceSum: (x: Node, axes: readonly number[]): Node =>
    axes.length === 0 ? x : emit('reduceSum', [x], { axes: [...axes] }),
  reduceMax: (x: Node, axes: readonly number[]): Node =>
    axes.length === 0 ? x : emit('reduceMax', [x], { axes: [...axes] }),
  matmul: (a: Node, b: Node): Node => emit('matmul', [a, b], E),

  /** Swaps the last two axes. */
  transposeLast: (x: Node): Node => {
    const r = x.shape.length;
    const perm = x.shape.map((_, i) => i);
    [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
    return builder.permute(x, perm);
  },
  /** `shape` with the reduced `axes` kept as size 1 (for broadcasting a reduction back). */
  keptShape: (shape: Shape, axes: readonly number[]): number[] =>
    shape.map((d, i) => (axes.includes(i) ? 1 : d)),
};

export type Builder = typeof builder;
