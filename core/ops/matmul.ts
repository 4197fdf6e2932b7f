import { GrngError, fmtShape } from '../errors.js';
import { shapeSize, shapesEqual } from '../ir/shape.js';
import type { RuleTable } from './rule.js';
import { expectArity, expectDType, expectSameDType } from './check.js';

/**
 * Batched matrix product [...b, m, k] × [...b, k, n] → [...b, m, n]; the DSL broadcasts batch axes.
 */
export const matmulRules: RuleTable<'matmul'> = {
  matmul: {
    wgsl: { kind: 'matmul' },
    infer(inputs) {
      expectArity('matmul', inputs, 2);
      const [a, b] = inputs;
      expectSameDType('matmul', a, b);
      expectDType('matmul', a, ['f32', 'i32']);
      const ra = a.shape.length;
      const rb = b.shape.length;
      if (ra < 2 || ra !== rb || !shapesEqual(a.shape.slice(0, -2), b.shape.slice(0, -2))) {
        throw new GrngError(
          'matmul',
          `operands ${fmtShape(a.shape)} and ${fmtShape(b.shape)} must both be ` +
            `[...batch, m, k] and [...batch, k, n] with equal batch axes`,
        );
      }
      if (a.shape[ra - 1] !== b.shape[rb - 2]) {
        throw new GrngError(
          'matmul',
          `inner dimensions differ: ${fmtShape(a.shape)} has ${a.shape[ra - 1]} ` +
            `columns but ${fmtShape(b.shape)} has ${b.shape[rb - 2]} rows; ` +
            `transpose one operand or fix the layer sizes`,
        );
      }
      return { shape: [...a.shape.slice(0, -1), b.shape[rb - 1]], dtype: a.dtype };
    },
    interpret({ node, inputs: [a, b], round }) {
      const shapeA = node.inputs[0].shape;
      const r = shapeA.length;
      const m = shapeA[r - 2];
      const k = shapeA[r - 1];
      const n = node.shape[r - 1];
      const batch = shapeSize(shapeA.slice(0, -2));
      const acc = node.dtype === 'f32' ? round : (v: number) => v | 0;
      const mul = node.dtype === 'f32' ? (p: number, q: number) => round(p * q) : Math.imul;
      const out = new Float64Array(batch * m * n);
      for (let t = 0; t < batch; t++) {
        const oa = t * m * k;
        const ob = t * k * n;
        const oc = t * m * n;
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            let s = 0;
            for (let p = 0; p < k; p++) s = acc(s + mul(a[oa + i * k + p], b[ob + p * n + j]));
            out[oc + i * n + j] = s;
          }
        }
      }
      return out;
    },
    vjp(b, node, ct) {
      if (node.dtype !== 'f32') return [null, null];
      const [x, y] = node.inputs;
      return [b.matmul(ct, b.transposeLast(y)), b.matmul(b.transposeLast(x), ct)];
    },
    jvp(b, node, [ta, tb]) {
      if (node.dtype !== 'f32') return null;
      const [x, y] = node.inputs;
      const fa = ta === null ? null : b.matmul(ta, y);
      const fb = tb === null ? null : b.matmul(x, tb);
      return fa === null ? fb : fb === null ? fa : b.add(fa, fb);
    },
  },
};
