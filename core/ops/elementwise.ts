import { GrngError } from '../errors.js';
import type { Builder } from '../ir/builder.js';
import type { DType } from '../ir/dtype.js';
import { DTYPES } from '../ir/dtype.js';
import type { Node } from '../ir/node.js';
import type { Primitive } from '../ir/primitives.js';
import type { OpRule, RuleTable } from './rule.js';
import { expectArity, expectDType, expectSameDType, expectSameShape } from './check.js';
import { erf } from './erf.js';

const FLOAT: readonly DType[] = ['f32'];
const NUMERIC: readonly DType[] = ['f32', 'i32'];
const ANY: readonly DType[] = ['f32', 'i32', 'bool'];

/**
 * A unary elementwise primitive from its scalar function and its derivative d(x, y) as a graph
 * (null: zero). VJP is ct·d and JVP is t·d, so the two modes can never disagree on the math.
 */
function unary<P extends Primitive>(
  op: P,
  dtypes: readonly DType[],
  f: (x: number, dtype: DType) => number,
  derivative: ((b: Builder, x: Node, y: Node) => Node) | null,
  wgsl: (a: string) => string,
): OpRule<P> {
  return {
    wgsl: { kind: 'expr', expr: ([a]) => wgsl(a) },
    infer(inputs) {
      expectArity(op, inputs, 1);
      expectDType(op, inputs[0], dtypes);
      return { shape: inputs[0].shape, dtype: inputs[0].dtype };
    },
    interpret({ node, inputs: [x], round }) {
      const out = new Float64Array(x.length);
      const r = node.dtype === 'f32' ? round : (v: number) => v;
      for (let i = 0; i < x.length; i++) out[i] = r(f(x[i], node.dtype));
      return out;
    },
    vjp(b, node, ct) {
      if (derivative === null || node.dtype !== 'f32') return [null];
      return [b.mul(ct, derivative(b, node.inputs[0], node))];
    },
    jvp(b, node, [t]) {
      if (derivative === null || t === null || node.dtype !== 'f32') return null;
      return b.mul(t, derivative(b, node.inputs[0], node));
    },
  };
}

/** Integer wrap-around as in WGSL's i32. */
const i32 = (v: number): number => v | 0;

/**
 * A binary elementwise primitive from its scalar function and partial derivatives
 * (∂/∂a, ∂/∂b as graphs; null: zero). Operands have equal shapes and dtypes.
 */
function binary<P extends Primitive>(
  op: P,
  dtypes: readonly DType[],
  resultDType: 'same' | 'bool',
  f: (a: number, b: number, dtype: DType) => number,
  partials: ((b: Builder, x: Node, y: Node, out: Node) => [Node | null, Node | null]) | null,
  wgsl: (a: string, b: string) => string,
): OpRule<P> {
  return {
    wgsl: { kind: 'expr', expr: ([a, c]) => wgsl(a, c) },
    infer(inputs) {
      expectArity(op, inputs, 2);
      expectSameShape(op, inputs[0], inputs[1]);
      expectSameDType(op, inputs[0], inputs[1]);
      expectDType(op, inputs[0], dtypes);
      return { shape: inputs[0].shape, dtype: resultDType === 'bool' ? 'bool' : inputs[0].dtype };
    },
    interpret({ node, inputs: [a, b], round }) {
      const out = new Float64Array(a.length);
      const dtype = node.inputs[0].dtype;
      const r = node.dtype === 'f32' ? round : (v: number) => v;
      for (let i = 0; i < a.length; i++) out[i] = r(f(a[i], b[i], dtype));
      return out;
    },
    vjp(b, node, ct) {
      if (partials === null || node.dtype !== 'f32') return [null, null];
      const [da, db] = partials(b, node.inputs[0], node.inputs[1], node);
      return [da === null ? null : b.mul(ct, da), db === null ? null : b.mul(ct, db)];
    },
    jvp(b, node, [ta, tb]) {
      if (partials === null || node.dtype !== 'f32' || (ta === null && tb === null)) return null;
      const [da, db] = partials(b, node.inputs[0], node.inputs[1], node);
      const fa = ta === null || da === null ? null : b.mul(ta, da);
      const fb = tb === null || db === null ? null : b.mul(tb, db);
      return fa === null ? fb : fb === null ? fa : b.add(fa, fb);
    },
  };
}

/** WGSL semantics for i32 division: truncation, and e1 when dividing by zero or overflowing. */
function divide(a: number, b: number, dtype: DType): number {
  if (dtype !== 'i32') return a / b;
  if (b === 0 || (a === -2147483648 && b === -1)) return a;
  return Math.trunc(a / b) | 0;
}

/**
 * WGSL conversions: to bool is x ≠ 0 (so NaN is true, as `ne(x, 0)` says); f32 to i32
 * truncates toward zero and saturates, and `| 0` keeps −0 out of integers (i32 has none).
 */
function convert(x: number, from: DType, to: DType): number {
  if (to === 'bool') return x !== 0 ? 1 : 0;
  if (to === 'f32' || from !== 'f32') return x;
  if (Number.isNaN(x)) return 0;
  return Math.max(-2147483648, Math.min(2147483647, Math.trunc(x))) | 0;
}

/**
 * The WGSL form of `convert`. f32 → i32 goes through grng_ftoi (compiler/wgsl/prelude.ts): WGSL's
 * own i32(x) clamps to [−2^31, 2^31 − 128] and leaves NaN to the implementation (llvmpipe gives
 * −2^31 for NaN and 2^31 − 128 for 3e9, where `convert` gives 0 and 2^31 − 1).
 */
function convertWgsl(a: string, from: DType, to: DType): string {
  if (from === to) return a;
  if (from === 'bool') return to === 'f32' ? `select(0.0f, 1.0f, ${a})` : `select(0i, 1i, ${a})`;
  if (to === 'bool') return from === 'f32' ? `(${a} != 0.0f)` : `(${a} != 0i)`;
  if (to === 'f32') return `f32(${a})`;
  return from === 'f32' ? `grng_ftoi(${a})` : `i32(${a})`;
}

// Weight of the first operand of max/min in the derivative: 1 where it wins, ½ on ties (as JAX).
function winnerWeight(b: Builder, wins: Node, x: Node, y: Node): Node {
  return b.select(
    wins,
    b.fillLike(1, x),
    b.select(b.eq(x, y), b.fillLike(0.5, x), b.fillLike(0, x)),
  );
}

export const elementwiseRules: RuleTable<
  | 'neg'
  | 'exp'
  | 'log'
  | 'sqrt'
  | 'rsqrt'
  | 'recip'
  | 'sin'
  | 'cos'
  | 'tanh'
  | 'erf'
  | 'abs'
  | 'sign'
  | 'floor'
  | 'isFinite'
  | 'cast'
  | 'stopGradient'
  | 'add'
  | 'sub'
  | 'mul'
  | 'div'
  | 'pow'
  | 'max'
  | 'min'
  | 'lt'
  | 'le'
  | 'gt'
  | 'ge'
  | 'eq'
  | 'ne'
  | 'select'
> = {
  neg: unary(
    'neg',
    NUMERIC,
    (x, t) => (t === 'i32' ? i32(-x) : -x),
    (b, x) => b.fillLike(-1, x),
    (a) => `(-${a})`,
  ),
  exp: unary(
    'exp',
    FLOAT,
    Math.exp,
    (_b, _x, y) => y,
    (a) => `exp(${a})`,
  ),
  log: unary(
    'log',
    FLOAT,
    Math.log,
    (b, x) => b.recip(x),
    (a) => `log(${a})`,
  ),
  sqrt: unary(
    'sqrt',
    FLOAT,
    Math.sqrt,
    (b, _x, y) => b.div(b.fillLike(0.5, y), y),
    (a) => `sqrt(${a})`,
  ),
  // d/dx x^(-1/2) = -½ x^(-3/2) = -½ · y / x
  rsqrt: unary(
    'rsqrt',
    FLOAT,
    (x) => 1 / Math.sqrt(x),
    (b, x, y) => b.scale(b.div(y, x), -0.5),
    (a) => `inverseSqrt(${a})`,
  ),
  recip: unary(
    'recip',
    FLOAT,
    (x) => 1 / x,
    (b, _x, y) => b.neg(b.mul(y, y)),
    (a) => `(1.0f / ${a})`,
  ),
  sin: unary(
    'sin',
    FLOAT,
    Math.sin,
    (b, x) => b.cos(x),
    (a) => `sin(${a})`,
  ),
  cos: unary(
    'cos',
    FLOAT,
    Math.cos,
    (b, x) => b.neg(b.sin(x)),
    (a) => `cos(${a})`,
  ),
  tanh: unary(
    'tanh',
    FLOAT,
    Math.tanh,
    (b, _x, y) => b.sub(b.fillLike(1, y), b.mul(y, y)),
    (a) => `grng_tanh(${a})`,
  ),
  // d/dx erf(x) = (2/√π)·e^(−x²), from primitives so that it differentiates again. WGSL has no
  // erf: grng_erf (compiler/wgsl/prelude.ts) approximates it within 1.44 f32 ULP given a
  // correctly rounded exp (3 ULP with WGSL's exp allowance).
  erf: unary(
    'erf',
    FLOAT,
    erf,
    (b, x) => b.scale(b.exp(b.neg(b.mul(x, x))), 2 / Math.sqrt(Math.PI)),
    (a) => `grng_erf(${a})`,
  ),
  abs: unary(
    'abs',
    NUMERIC,
    (x, t) => (t === 'i32' ? i32(Math.abs(x)) : Math.abs(x)),
    (b, x) => b.sign(x),
    (a) => `abs(${a})`,
  ),
  sign: unary(
    'sign',
    NUMERIC,
    (x) => (Number.isNaN(x) ? x : x > 0 ? 1 : x < 0 ? -1 : 0),
    null,
    (a) => `sign(${a})`,
  ),
  floor: unary('floor', FLOAT, Math.floor, null, (a) => `floor(${a})`),
  // The exponent bits rather than x == x or |x| < ∞: WGSL lets implementations assume that
  // floating-point values are finite, so comparisons may be folded away; integer bits may not.
  isFinite: {
    wgsl: {
      kind: 'expr',
      expr: ([a]) => `((bitcast<u32>(${a}) & 0x7f800000u) != 0x7f800000u)`,
    },
    infer(inputs) {
      expectArity('isFinite', inputs, 1);
      expectDType('isFinite', inputs[0], FLOAT);
      return { shape: inputs[0].shape, dtype: 'bool' };
    },
    interpret({ inputs: [x] }) {
      // f32 operands arrive rounded (overflow is ∞ already); the f64 interpreter's are wider.
      return Float64Array.from(x, (v) => (Number.isFinite(v) ? 1 : 0));
    },
    vjp: () => [null],
    jvp: () => null,
  },
  stopGradient: unary(
    'stopGradient',
    ANY,
    (x) => x,
    null,
    (a) => a,
  ),
  cast: {
    wgsl: { kind: 'expr', expr: ([a], node) => convertWgsl(a, node.inputs[0].dtype, node.dtype) },
    infer(inputs, { dtype }) {
      expectArity('cast', inputs, 1);
      if (!DTYPES.includes(dtype))
        throw new GrngError('cast', `unknown target dtype ${String(dtype)}; use f32, i32 or bool`);
      return { shape: inputs[0].shape, dtype };
    },
    interpret({ node, inputs: [x], round }) {
      const from = node.inputs[0].dtype;
      const r = node.dtype === 'f32' ? round : (v: number) => v;
      return x.map((v) => r(convert(v, from, node.dtype)));
    },
    // Only float → float carries a derivative; integers and booleans are constants to autodiff.
    vjp: (_b, node, ct) => [node.dtype === 'f32' && node.inputs[0].dtype === 'f32' ? ct : null],
    jvp: (_b, node, [t]) => (node.dtype === 'f32' && node.inputs[0].dtype === 'f32' ? t : null),
  },

  add: binary(
    'add',
    NUMERIC,
    'same',
    (a, c, t) => (t === 'i32' ? i32(a + c) : a + c),
    (b, x) => [b.fillLike(1, x), b.fillLike(1, x)],
    (a, c) => `(${a} + ${c})`,
  ),
  sub: binary(
    'sub',
    NUMERIC,
    'same',
    (a, c, t) => (t === 'i32' ? i32(a - c) : a - c),
    (b, x) => [b.fillLike(1, x), b.fillLike(-1, x)],
    (a, c) => `(${a} - ${c})`,
  ),
  mul: binary(
    'mul',
    NUMERIC,
    'same',
    (a, c, t) => (t === 'i32' ? Math.imul(a, c) : a * c),
    (_b, x, y) => [y, x],
    (a, c) => `(${a} * ${c})`,
  ),
  // WGSL rejects an i32 division by a literal 0i (even of a runtime value); its value is e1, as at
  // run time.
  div: binary(
    'div',
    NUMERIC,
    'same',
    divide,
    (b, _x, y, out) => [b.recip(y), b.neg(b.div(out, y))],
    (a, c) => (c === '0i' ? a : `(${a} / ${c})`),
  ),
  // ∂/∂a = b·a^(b−1); ∂/∂b = log(a)·a^b, with log taken of 1 where a ≤ 0 so the unused branch stays
  // finite.
  pow: binary(
    'pow',
    FLOAT,
    'same',
    Math.pow,
    (b, x, y, out) => [
      b.mul(y, b.pow(x, b.sub(y, b.fillLike(1, y)))),
      b.mul(b.log(b.select(b.gt(x, b.fillLike(0, x)), x, b.fillLike(1, x))), out),
    ],
    (a, c) => `grng_pow(${a}, ${c})`,
  ),
  max: binary(
    'max',
    NUMERIC,
    'same',
    (a, c) => (Number.isNaN(a) || Number.isNaN(c) ? NaN : Math.max(a, c)),
    (b, x, y) => {
      const w = winnerWeight(b, b.gt(x, y), x, y);
      return [w, b.sub(b.fillLike(1, w), w)];
    },
    (a, c) => `max(${a}, ${c})`,
  ),
  min: binary(
    'min',
    NUMERIC,
    'same',
    (a, c) => (Number.isNaN(a) || Number.isNaN(c) ? NaN : Math.min(a, c)),
    (b, x, y) => {
      const w = winnerWeight(b, b.lt(x, y), x, y);
      return [w, b.sub(b.fillLike(1, w), w)];
    },
    (a, c) => `min(${a}, ${c})`,
  ),
  lt: binary(
    'lt',
    NUMERIC,
    'bool',
    (a, c) => (a < c ? 1 : 0),
    null,
    (a, c) => `(${a} < ${c})`,
  ),
  le: binary(
    'le',
    NUMERIC,
    'bool',
    (a, c) => (a <= c ? 1 : 0),
    null,
    (a, c) => `(${a} <= ${c})`,
  ),
  gt: binary(
    'gt',
    NUMERIC,
    'bool',
    (a, c) => (a > c ? 1 : 0),
    null,
    (a, c) => `(${a} > ${c})`,
  ),
  ge: binary(
    'ge',
    NUMERIC,
    'bool',
    (a, c) => (a >= c ? 1 : 0),
    null,
    (a, c) => `(${a} >= ${c})`,
  ),
  eq: binary(
    'eq',
    ANY,
    'bool',
    (a, c) => (a === c ? 1 : 0),
    null,
    (a, c) => `(${a} == ${c})`,
  ),
  ne: binary(
    'ne',
    ANY,
    'bool',
    (a, c) => (a !== c ? 1 : 0),
    null,
    (a, c) => `(${a} != ${c})`,
  ),

  select: {
    wgsl: { kind: 'expr', expr: ([c, a, b]) => `select(${b}, ${a}, ${c})` },
    infer(inputs) {
      expectArity('select', inputs, 3);
      const [cond, a, b] = inputs;
      expectDType('select', cond, ['bool'], 'condition');
      expectSameShape('select', cond, a);
      expectSameShape('select', a, b);
      expectSameDType('select', a, b);
      return { shape: a.shape, dtype: a.dtype };
    },
    interpret({ inputs: [c, a, b] }) {
      const out = new Float64Array(a.length);
      for (let i = 0; i < a.length; i++) out[i] = c[i] !== 0 ? a[i] : b[i];
      return out;
    },
    vjp(b, node, ct) {
      if (node.dtype !== 'f32') return [null, null, null];
      const [cond] = node.inputs;
      const zero = b.zerosLike(ct);
      return [null, b.select(cond, ct, zero), b.select(cond, zero, ct)];
    },
    jvp(b, node, [, ta, tb]) {
      if (node.dtype !== 'f32' || (ta === null && tb === null)) return null;
      const zero = b.zerosLike(node);
      return b.select(node.inputs[0], ta ?? zero, tb ?? zero);
    },
  },
};
