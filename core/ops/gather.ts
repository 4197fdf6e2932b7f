import { GrngError, fmtShape } from '../errors.js';
import type { Builder } from '../ir/builder.js';
import type { Node } from '../ir/node.js';
import { shapeSize, type Shape } from '../ir/shape.js';
import type { RuleTable } from './rule.js';
import { expectArity, expectDType } from './check.js';

/**
 * The row of a table of `rows` rows that `id` reads: ids outside [0, rows) clamp to the nearest
 * row (as JAX's gather does on GPUs), so every read is in bounds and the interpreter and WGSL
 * agree without a fill value.
 */
export const clampRow = (id: number, rows: number): number => Math.min(Math.max(id, 0), rows - 1);

/**
 * The transpose of gather: each cotangent row ct[p, …] added into row clamp(ids[p]) of a
 * [V, …rest] zero tensor (a scatter-add). Written as the one-hot matrix [V, n] of the clamped ids
 * (iota == id) times ct as [n, r], so it is a graph of primitives that differentiates again: its
 * own VJP with respect to ct is the gather back (the transposed one-hot times the cotangent).
 */
function scatterRows(b: Builder, ct: Node, ids: Node, tableShape: Shape): Node {
  const rows = tableShape[0];
  const n = shapeSize(ids.shape);
  const width = shapeSize(tableShape.slice(1));
  const lo = b.fill(0, ids.shape, 'i32');
  const hi = b.fill(rows - 1, ids.shape, 'i32');
  const row = b.reshape(b.min(b.max(ids, lo), hi), [1, n]);
  const oneHot = b.cast(b.eq(b.iota([rows, n], 0, 'i32'), b.broadcast(row, [rows, n])), 'f32');
  return b.reshape(b.matmul(oneHot, b.reshape(ct, [n, width])), tableShape);
}

export const gatherRules: RuleTable<'gather'> = {
  gather: {
    // The ids are read at the output's leading axes; their value picks the table's row.
    wgsl: {
      kind: 'gather',
      idsIndex: (index, node) => index.slice(0, node.inputs[1].shape.length),
      operandIndex(index, node, id) {
        const rows = node.inputs[0].shape[0];
        const rest = index.slice(node.inputs[1].shape.length);
        return [rows === 1 ? '0i' : `clamp(${id}, 0i, ${rows - 1}i)`, ...rest];
      },
    },
    infer(inputs) {
      expectArity('gather', inputs, 2);
      const [table, ids] = inputs;
      expectDType('gather', ids, ['i32'], 'the ids operand');
      if (table.shape.length === 0 || table.shape[0] === 0) {
        throw new GrngError(
          'gather',
          `the table ${fmtShape(table.shape)} needs a row axis (axis 0) with at least one row ` +
            `to pick from; reshape a scalar table to [1]`,
        );
      }
      return { shape: [...ids.shape, ...table.shape.slice(1)], dtype: table.dtype };
    },
    interpret({ node, inputs: [table, ids] }) {
      const rows = node.inputs[0].shape[0];
      const width = shapeSize(node.inputs[0].shape.slice(1));
      const out = new Float64Array(ids.length * width);
      for (let p = 0; p < ids.length; p++) {
        const row = clampRow(ids[p], rows);
        out.set(table.subarray(row * width, (row + 1) * width), p * width);
      }
      return out;
    },
    // Linear in the table; the ids are integers, constants to autodiff.
    vjp: (b, node, ct) => [
      node.dtype === 'f32' ? scatterRows(b, ct, node.inputs[1], node.inputs[0].shape) : null,
      null,
    ],
    jvp: (b, node, [t]) =>
      t === null || t === undefined ? null : b.emit('gather', [t, node.inputs[1]], {}),
  },
};
