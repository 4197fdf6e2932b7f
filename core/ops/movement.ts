import { GrngError, fmtShape } from '../errors.js';
import { checkShape, shapeSize, stridesOf } from '../ir/shape.js';
import type { Node } from '../ir/node.js';
import type { Builder } from '../ir/builder.js';
import type { RuleTable } from './rule.js';
import { expectArity } from './check.js';
import { stridedOffsets } from './strided.js';

function gather(x: Float64Array, offsets: Int32Array): Float64Array {
  const out = new Float64Array(offsets.length);
  for (let i = 0; i < offsets.length; i++) out[i] = x[offsets[i]];
  return out;
}

function expectPerAxis(op: string, x: Node, name: string, values: readonly number[]): void {
  if (values.length !== x.shape.length || !values.every(Number.isInteger)) {
    throw new GrngError(
      op,
      `${name} must give one integer per axis of the operand ` +
        `${fmtShape(x.shape)}, got [${values.join(', ')}]`,
    );
  }
}

/** Movement ops are linear, so their JVP is the op itself applied to the tangent. */
function linearJvp(apply: (b: Builder, t: Node, node: Node) => Node) {
  return (b: Builder, node: Node, [t]: readonly (Node | null)[]): Node | null =>
    t === null ? null : apply(b, t, node);
}

export const movementRules: RuleTable<'reshape' | 'permute' | 'broadcast' | 'slice' | 'pad'> = {
  reshape: {
    // Through the flat row-major offset: out index → offset → operand index.
    wgsl: {
      kind: 'index',
      operandIndex(index, node) {
        const outStrides = stridesOf(node.shape);
        const inShape = node.inputs[0].shape;
        const terms = index.flatMap((e, i) =>
          node.shape[i] === 1 ? [] : [outStrides[i] === 1 ? e : `${e} * ${outStrides[i]}i`],
        );
        const flat =
          terms.length === 0 ? '0i' : terms.length === 1 ? terms[0] : `(${terms.join(' + ')})`;
        const inStrides = stridesOf(inShape);
        const size = shapeSize(inShape);
        // An empty operand is never read (only under a guard or a loop that never runs), but a
        // literal division by its zero strides would still be a WGSL shader-creation error.
        if (size === 0) return { index: inShape.map(() => '0i') };
        return {
          index: inShape.map((d, j) => {
            if (d === 1) return '0i';
            const q = inStrides[j] === 1 ? flat : `(${flat} / ${inStrides[j]}i)`;
            // the outermost axis needs no wrap
            return inStrides[j] * d === size ? q : `${q} % ${d}i`;
          }),
        };
      },
    },
    infer(inputs, { shape }) {
      expectArity('reshape', inputs, 1);
      checkShape('reshape', shape);
      if (shapeSize(shape) !== shapeSize(inputs[0].shape)) {
        throw new GrngError(
          'reshape',
          `cannot reshape ${fmtShape(inputs[0].shape)} ` +
            `(${shapeSize(inputs[0].shape)} elements) to ${fmtShape(shape)} ` +
            `(${shapeSize(shape)} elements); the element counts must match`,
        );
      }
      return { shape, dtype: inputs[0].dtype };
    },
    interpret: ({ inputs: [x] }) => Float64Array.from(x),
    vjp: (b, node, ct) => [b.reshape(ct, node.inputs[0].shape)],
    jvp: linearJvp((b, t, node) => b.reshape(t, node.shape)),
  },
  permute: {
    wgsl: {
      kind: 'index',
      operandIndex(index, node) {
        const out = new Array<string>(index.length);
        node.attrs.perm.forEach((p, i) => (out[p] = index[i]));
        return { index: out };
      },
    },
    infer(inputs, { perm }) {
      expectArity('permute', inputs, 1);
      const rank = inputs[0].shape.length;
      const sorted = [...perm].sort((p, q) => p - q);
      if (perm.length !== rank || !sorted.every((p, i) => p === i)) {
        throw new GrngError(
          'permute',
          `perm [${perm.join(', ')}] is not a permutation of the ${rank} axes of ` +
            `${fmtShape(inputs[0].shape)}`,
        );
      }
      return { shape: perm.map((p) => inputs[0].shape[p]), dtype: inputs[0].dtype };
    },
    interpret({ node, inputs: [x] }) {
      const inStrides = stridesOf(node.inputs[0].shape);
      return gather(
        x,
        stridedOffsets(
          node.shape,
          node.attrs.perm.map((p) => inStrides[p]),
        ),
      );
    },
    vjp(b, node, ct) {
      const inverse = new Array<number>(node.attrs.perm.length);
      node.attrs.perm.forEach((p, i) => (inverse[p] = i));
      return [b.permute(ct, inverse)];
    },
    jvp: linearJvp((b, t, node) => b.permute(t, (node as Node<'permute'>).attrs.perm)),
  },
  broadcast: {
    wgsl: {
      kind: 'index',
      operandIndex: (index, node) => ({
        index: node.inputs[0].shape.map((d, i) => (d === 1 ? '0i' : index[i])),
      }),
    },
    infer(inputs, { shape }) {
      expectArity('broadcast', inputs, 1);
      checkShape('broadcast', shape);
      const from = inputs[0].shape;
      if (from.length !== shape.length || !from.every((d, i) => d === shape[i] || d === 1)) {
        throw new GrngError(
          'broadcast',
          `cannot broadcast ${fmtShape(from)} to ${fmtShape(shape)}: ranks must ` +
            `match and each axis must be equal or 1`,
        );
      }
      return { shape, dtype: inputs[0].dtype };
    },
    interpret({ node, inputs: [x] }) {
      const from = node.inputs[0].shape;
      const strides = stridesOf(from).map((s, i) => (from[i] === 1 ? 0 : s));
      return gather(x, stridedOffsets(node.shape, strides));
    },
    vjp(b, node, ct) {
      const from = node.inputs[0].shape;
      const axes = from.flatMap((d, i) => (d === 1 && node.shape[i] !== 1 ? [i] : []));
      return [b.reshape(b.reduceSum(ct, axes), from)];
    },
    jvp: linearJvp((b, t, node) => b.broadcast(t, node.shape)),
  },
  slice: {
    wgsl: {
      kind: 'index',
      operandIndex: (index, node) => ({
        index: index.map((e, i) =>
          node.attrs.starts[i] === 0 ? e : `(${e} + ${node.attrs.starts[i]}i)`,
        ),
      }),
    },
    infer(inputs, { starts, ends }) {
      expectArity('slice', inputs, 1);
      const x = inputs[0];
      expectPerAxis('slice', x, 'starts', starts);
      expectPerAxis('slice', x, 'ends', ends);
      x.shape.forEach((d, i) => {
        if (!(0 <= starts[i] && starts[i] <= ends[i] && ends[i] <= d)) {
          throw new GrngError(
            'slice',
            `axis ${i}: range [${starts[i]}, ${ends[i]}) is not within [0, ${d}] ` +
              `of ${fmtShape(x.shape)}`,
          );
        }
      });
      return { shape: x.shape.map((_, i) => ends[i] - starts[i]), dtype: x.dtype };
    },
    interpret({ node, inputs: [x] }) {
      const strides = stridesOf(node.inputs[0].shape);
      const base = node.attrs.starts.reduce((acc, s, i) => acc + s * strides[i], 0);
      return gather(x, stridedOffsets(node.shape, strides, base));
    },
    vjp(b, node, ct) {
      const from = node.inputs[0].shape;
      return [
        b.pad(
          ct,
          node.attrs.starts,
          node.attrs.ends.map((e, i) => from[i] - e),
        ),
      ];
    },
    jvp: linearJvp((b, t, node) =>
      b.slice(t, (node as Node<'slice'>).attrs.starts, (node as Node<'slice'>).attrs.ends),
    ),
  },
  pad: {
    // Reads stay in bounds (clamped); the guard selects zero outside the operand.
    wgsl: {
      kind: 'index',
      operandIndex(index, node) {
        const { lo } = node.attrs;
        const dims = node.inputs[0].shape;
        const guards = index.flatMap((e, i) =>
          lo[i] === 0 && node.attrs.hi[i] === 0
            ? []
            : [`(${e} >= ${lo[i]}i && ${e} < ${lo[i] + dims[i]}i)`],
        );
        return {
          index: index.map((e, i) =>
            lo[i] === 0 && node.attrs.hi[i] === 0
              ? e
              : `clamp(${e} - ${lo[i]}i, 0i, ${Math.max(dims[i] - 1, 0)}i)`,
          ),
          inBounds: guards.length > 0 ? guards.join(' && ') : undefined,
        };
      },
    },
    infer(inputs, { lo, hi }) {
      expectArity('pad', inputs, 1);
      const x = inputs[0];
      expectPerAxis('pad', x, 'lo', lo);
      expectPerAxis('pad', x, 'hi', hi);
      if (![...lo, ...hi].every((p) => p >= 0))
        throw new GrngError(
          'pad',
          `padding must be non-negative, got lo [${lo.join(', ')}] hi ` +
            `[${hi.join(', ')}]; use slice to crop`,
        );
      return { shape: x.shape.map((d, i) => lo[i] + d + hi[i]), dtype: x.dtype };
    },
    interpret({ node, inputs: [x] }) {
      const strides = stridesOf(node.shape);
      const base = node.attrs.lo.reduce((acc, p, i) => acc + p * strides[i], 0);
      const offsets = stridedOffsets(node.inputs[0].shape, strides, base);
      const out = new Float64Array(shapeSize(node.shape));
      for (let i = 0; i < offsets.length; i++) out[offsets[i]] = x[i];
      return out;
    },
    vjp(b, node, ct) {
      const { lo } = node.attrs;
      return [
        b.slice(
          ct,
          lo,
          node.inputs[0].shape.map((d, i) => lo[i] + d),
        ),
      ];
    },
    jvp: linearJvp((b, t, node) =>
      b.pad(t, (node as Node<'pad'>).attrs.lo, (node as Node<'pad'>).attrs.hi),
    ),
  },
};
