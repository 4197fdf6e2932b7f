// Dense Cholesky factorization and triangular solves as primitives (R-Kalman's innovation
// covariance S, whose size is the observation dimension, up to a few hundred). Each runs as a
// kernel of its own (compiler/wgsl/solvers.ts): a graph of d column steps would be thousands of
// nodes and kernels at that size. Both read only the lower triangle of their matrix operand, and
// the interpreter performs the kernels' operations in the kernels' order, so the float32
// interpreter predicts them rounding for rounding. Derivatives are built from these primitives
// again (so they differentiate twice):
//   X = op(L)⁻¹B:  Ẋ = op(L)⁻¹(Ḃ − op(tril L̇)X);  B̄ = op(L)⁻ᵀX̄,  L̄ = −tril(B̄Xᵀ) or −tril(XB̄ᵀ)
//   L = chol(A):   L̇ = L·Φ(L⁻¹ȦL⁻ᵀ);  Ā = tril(G + Gᵀ) − diag G with G = L⁻ᵀΦ(LᵀL̄)L⁻¹
// with A read as sym(tril A), Φ(X) = strictly lower part of X + half its diagonal, and op(L) = L
// or Lᵀ (`transpose`).
import { GrngError, fmtShape } from '../errors.js';
import type { Builder } from '../ir/builder.js';
import type { Node } from '../ir/node.js';
import type { RuleTable } from './rule.js';
import { expectArity, expectDType } from './check.js';

function squareOrder(op: string, a: Node, which: string): number {
  if (a.shape.length !== 2 || a.shape[0] !== a.shape[1])
    throw new GrngError(op, `${which} must be a square matrix [d, d], got ${fmtShape(a.shape)}`);
  return a.shape[0];
}

/** Lower-triangle masks of a d×d matrix: row > col, row = col. */
function masks(b: Builder, d: number): { below: Node; diagonal: Node } {
  const rows = b.iota([d, d], 0);
  const cols = b.iota([d, d], 1);
  return { below: b.gt(rows, cols), diagonal: b.eq(rows, cols) };
}

/** tril(x): the lower triangle, diagonal included. */
function lower(b: Builder, x: Node): Node {
  const { below, diagonal } = masks(b, x.shape[0]);
  const zero = b.zerosLike(x);
  return b.select(below, x, b.select(diagonal, x, zero));
}

/** Φ(x): the strictly lower triangle plus half the diagonal. */
function phi(b: Builder, x: Node): Node {
  const { below, diagonal } = masks(b, x.shape[0]);
  const zero = b.zerosLike(x);
  return b.select(below, x, b.select(diagonal, b.mul(x, b.fillLike(0.5, x)), zero));
}

/** The symmetric matrix a lower triangle stands for: tril(x) + tril(x, −1)ᵀ. */
function symmetricFromLower(b: Builder, x: Node): Node {
  const { below, diagonal } = masks(b, x.shape[0]);
  const zero = b.zerosLike(x);
  const strict = b.select(below, x, zero);
  return b.add(b.add(strict, b.transposeLast(strict)), b.select(diagonal, x, zero));
}

const solve = (b: Builder, l: Node, rhs: Node, transpose: boolean): Node =>
  b.emit('triangularSolve', [l, rhs], { transpose });

export const solverRules: RuleTable<'cholesky' | 'triangularSolve'> = {
  cholesky: {
    wgsl: { kind: 'sequential' },
    infer(inputs) {
      expectArity('cholesky', inputs, 1);
      expectDType('cholesky', inputs[0], ['f32']);
      squareOrder('cholesky', inputs[0], 'the operand');
      return { shape: [...inputs[0].shape], dtype: 'f32' };
    },
    interpret({ node, inputs: [a], round }) {
      // Right-looking, as the kernel: the lower triangle of A, then for each column j its pivot,
      // the column below it, and the trailing lower triangle, each element in column order.
      const d = node.shape[0];
      const l = new Float64Array(d * d);
      for (let r = 0; r < d; r++) for (let c = 0; c <= r; c++) l[r * d + c] = a[r * d + c];
      for (let j = 0; j < d; j++) {
        l[j * d + j] = round(Math.sqrt(l[j * d + j]));
        for (let i = j + 1; i < d; i++) l[i * d + j] = round(l[i * d + j] / l[j * d + j]);
        for (let i = j + 1; i < d; i++)
          for (let c = j + 1; c <= i; c++)
            l[i * d + c] = round(l[i * d + c] - round(l[i * d + j] * l[c * d + j]));
      }
      return l;
    },
    vjp(b, node, ct) {
      const l = node;
      const p = phi(b, b.matmul(b.transposeLast(l), ct));
      const w = solve(b, l, p, true); // L⁻ᵀP
      const g = b.transposeLast(solve(b, l, b.transposeLast(w), true)); // L⁻ᵀPL⁻¹
      const { diagonal } = masks(b, l.shape[0]);
      const sym = lower(b, b.add(g, b.transposeLast(g)));
      return [b.sub(sym, b.select(diagonal, g, b.zerosLike(g)))];
    },
    jvp(b, node, [ta]) {
      if (ta === null) return null;
      const l = node;
      const y = solve(b, l, symmetricFromLower(b, ta), false); // L⁻¹Ȧ
      const m = solve(b, l, b.transposeLast(y), false); // L⁻¹ȦL⁻ᵀ (Ȧ symmetric)
      return b.matmul(l, phi(b, m));
    },
  },
  triangularSolve: {
    wgsl: { kind: 'sequential' },
    infer(inputs, attrs) {
      expectArity('triangularSolve', inputs, 2);
      const [l, rhs] = inputs;
      expectDType('triangularSolve', l, ['f32'], 'the triangular matrix');
      expectDType('triangularSolve', rhs, ['f32'], 'the right-hand side');
      const d = squareOrder('triangularSolve', l, 'the triangular matrix');
      if (rhs.shape.length !== 2 || rhs.shape[0] !== d)
        throw new GrngError(
          'triangularSolve',
          `the right-hand side must be [${d}, k], got ${fmtShape(rhs.shape)}`,
        );
      if (typeof attrs?.transpose !== 'boolean')
        throw new GrngError('triangularSolve', 'transpose must be true or false');
      return { shape: [...rhs.shape], dtype: 'f32' };
    },
    interpret({ node, inputs: [l, rhs], round }) {
      // Column by column; row i after the rows it depends on, its products summed in the order
      // the rows were solved (as the kernel does).
      const [d, k] = node.shape;
      const { transpose } = node.attrs;
      const x = new Float64Array(d * k);
      for (let col = 0; col < k; col++)
        for (let step = 0; step < d; step++) {
          const i = transpose ? d - 1 - step : step;
          let s = rhs[i * k + col];
          for (let q = 0; q < step; q++) {
            const j = transpose ? d - 1 - q : q;
            const lij = transpose ? l[j * d + i] : l[i * d + j];
            s = round(s - round(lij * x[j * k + col]));
          }
          x[i * k + col] = round(s / l[i * d + i]);
        }
      return x;
    },
    vjp(b, node, ct) {
      const [l] = node.inputs;
      const { transpose } = node.attrs;
      const rhsBar = solve(b, l, ct, !transpose);
      const outer = transpose
        ? b.matmul(node, b.transposeLast(rhsBar))
        : b.matmul(rhsBar, b.transposeLast(node));
      return [b.neg(lower(b, outer)), rhsBar];
    },
    jvp(b, node, [tl, tb]) {
      const [l] = node.inputs;
      const { transpose } = node.attrs;
      let rhs: Node | null = tb;
      if (tl !== null) {
        const t = lower(b, tl);
        const moved = b.matmul(transpose ? b.transposeLast(t) : t, node);
        rhs = rhs === null ? b.neg(moved) : b.sub(rhs, moved);
      }
      return rhs === null ? null : solve(b, l, rhs, transpose);
    },
  },
};
