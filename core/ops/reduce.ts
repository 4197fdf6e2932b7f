import { GrngError, fmtShape } from '../errors.js';
import { shapeSize, stridesOf } from '../ir/shape.js';
import type { Node } from '../ir/node.js';
import type { Builder } from '../ir/builder.js';
import type { OpRule, RuleTable } from './rule.js';
import { expectArity, expectDType } from './check.js';
import { stridedOffsets } from './strided.js';
import { literal } from './wgsl-literals.js';

type ReduceOp = 'reduceSum' | 'reduceMax';

function inferReduce(op: ReduceOp, inputs: readonly Node[], axes: readonly number[]) {
  expectArity(op, inputs, 1);
  const x = inputs[0];
  expectDType(op, x, ['f32', 'i32']);
  const rank = x.shape.length;
  const sortedUnique = axes.every(
    (a, i) => Number.isInteger(a) && a >= 0 && a < rank && (i === 0 || a > axes[i - 1]),
  );
  if (!sortedUnique) {
    throw new GrngError(
      op,
      `axes [${axes.join(', ')}] must be distinct, increasing and within the ` +
        `${rank} axes of ${fmtShape(x.shape)}`,
    );
  }
  return { shape: x.shape.filter((_, i) => !axes.includes(i)), dtype: x.dtype };
}

/** Scatter-accumulates the input into the reduced output with `combine`, starting from `init`. */
function reduceInto(
  node: Node<ReduceOp>,
  x: Float64Array,
  init: number,
  combine: (acc: number, v: number) => number,
): Float64Array {
  const { axes } = node.attrs;
  const inShape = node.inputs[0].shape;
  const outStrides = stridesOf(node.shape);
  let k = 0;
  const strides = inShape.map((_, i) => (axes.includes(i) ? 0 : outStrides[k++]));
  const offsets = stridedOffsets(inShape, strides);
  const out = new Float64Array(shapeSize(node.shape)).fill(init);
  for (let i = 0; i < offsets.length; i++) out[offsets[i]] = combine(out[offsets[i]], x[i]);
  return out;
}

/** `y` (reduced) broadcast back to the input's shape. */
function expand(b: Builder, y: Node, node: Node<ReduceOp>): Node {
  const inShape = node.inputs[0].shape;
  return b.broadcast(b.reshape(y, b.keptShape(inShape, node.attrs.axes)), inShape);
}

/** For max: the arg-max indicator, shared equally among ties, as f32 weights over the input. */
function maxWeights(b: Builder, node: Node<'reduceMax'>): Node {
  const x = node.inputs[0];
  const mask = b.cast(b.eq(x, expand(b, node, node)), 'f32');
  return b.div(mask, expand(b, b.reduceSum(mask, node.attrs.axes), node));
}

const reduceMax: OpRule<'reduceMax'> = {
  wgsl: {
    kind: 'reduce',
    init: (node) =>
      node.dtype === 'f32' ? literal(-Infinity, 'f32') : literal(-2147483648, 'i32'),
    combine: (acc, v) => `max(${acc}, ${v})`,
  },
  infer: (inputs, { axes }) => inferReduce('reduceMax', inputs, axes),
  // An empty i32 group's maximum is the smallest i32, as the kernel's initial value (i32 has no
  // −∞).
  interpret: ({ node, inputs: [x] }) =>
    reduceInto(node, x, node.dtype === 'f32' ? -Infinity : -2147483648, (acc, v) =>
      Number.isNaN(acc) || Number.isNaN(v) ? NaN : Math.max(acc, v),
    ),
  vjp: (b, node, ct) =>
    node.dtype === 'f32' ? [b.mul(maxWeights(b, node), expand(b, ct, node))] : [null],
  jvp: (b, node, [t]) =>
    t === null || node.dtype !== 'f32'
      ? null
      : b.reduceSum(b.mul(t, maxWeights(b, node)), node.attrs.axes),
};

export const reduceRules: RuleTable<ReduceOp> = {
  reduceSum: {
    wgsl: {
      kind: 'reduce',
      init: (node) => literal(0, node.dtype),
      combine: (acc, v) => `(${acc} + ${v})`,
    },
    infer: (inputs, { axes }) => inferReduce('reduceSum', inputs, axes),
    interpret: ({ node, inputs: [x], round }) => {
      const r = node.dtype === 'f32' ? round : (v: number) => v | 0;
      return reduceInto(node, x, 0, (acc, v) => r(acc + v));
    },
    vjp: (b, node, ct) => (node.dtype === 'f32' ? [expand(b, ct, node)] : [null]),
    jvp: (b, node, [t]) =>
      t === null || node.dtype !== 'f32' ? null : b.reduceSum(t, node.attrs.axes),
  },
  reduceMax,
};
