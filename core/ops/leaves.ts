import { GrngError, fmtShape } from '../errors.js';
import { DTYPES } from '../ir/dtype.js';
import { checkShape, normalizeAxis, shapeSize, stridesOf } from '../ir/shape.js';
import type { RuleTable } from './rule.js';
import { literal } from './wgsl-literals.js';

const noDerivative = { vjp: () => [], jvp: () => null };

/** Leaves: named inputs, constants and iota. They have no operands, so nothing to differentiate. */
export const leafRules: RuleTable<'input' | 'constant' | 'iota'> = {
  input: {
    wgsl: { kind: 'leaf', value: () => null }, // bound to a buffer
    infer(inputs, { name, shape, dtype }) {
      if (typeof name !== 'string' || name.length === 0)
        throw new GrngError('input', 'needs a non-empty name');
      checkShape('input', shape);
      if (!DTYPES.includes(dtype))
        throw new GrngError('input', `unknown dtype ${String(dtype)}; use f32, i32 or bool`);
      return { shape, dtype };
    },
    interpret({ node }) {
      // The interpreter binds inputs itself; reaching this rule means an input had no value.
      throw new GrngError(
        'interpret',
        `input "${node.attrs.name}" ${fmtShape(node.shape)} was not given a value`,
      );
    },
    ...noDerivative,
  },
  constant: {
    // Splats are literals; data constants are uploaded once and read from a buffer.
    wgsl: {
      kind: 'leaf',
      value: (_index, node) =>
        'value' in node.attrs ? literal(node.attrs.value, node.dtype) : null,
    },
    infer(_inputs, attrs) {
      checkShape('constant', attrs.shape);
      if ('data' in attrs && attrs.data.length !== shapeSize(attrs.shape)) {
        throw new GrngError(
          'constant',
          `got ${attrs.data.length} values for shape ${fmtShape(attrs.shape)} ` +
            `(${shapeSize(attrs.shape)} elements)`,
        );
      }
      return { shape: attrs.shape, dtype: attrs.dtype };
    },
    interpret({ node, round }) {
      const attrs = node.attrs;
      const n = shapeSize(node.shape);
      // i32 as WGSL stores it (literal() and Int32Array both truncate and wrap): 0x9e3779b9 is
      // −1640531527.
      const r =
        node.dtype === 'f32'
          ? round
          : node.dtype === 'i32'
            ? (x: number) => x | 0
            : (x: number) => x;
      if ('data' in attrs) return Float64Array.from(attrs.data, r);
      return new Float64Array(n).fill(r(attrs.value));
    },
    ...noDerivative,
  },
  iota: {
    wgsl: {
      kind: 'leaf',
      value: (index, node) =>
        node.dtype === 'f32' ? `f32(${index[node.attrs.axis]})` : index[node.attrs.axis],
    },
    infer(_inputs, { shape, axis, dtype }) {
      checkShape('iota', shape);
      if (normalizeAxis('iota', axis, shape.length) !== axis)
        throw new GrngError('iota', `axis ${axis} must be non-negative`);
      if (dtype === 'bool') throw new GrngError('iota', 'dtype must be f32 or i32');
      return { shape, dtype };
    },
    interpret({ node }) {
      const { shape, axis } = node.attrs;
      const stride = stridesOf(shape)[axis];
      const size = shape[axis];
      const out = new Float64Array(shapeSize(shape));
      for (let i = 0; i < out.length; i++) out[i] = Math.floor(i / stride) % size;
      return out;
    },
    ...noDerivative,
  },
};
