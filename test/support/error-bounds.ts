// A rounding-error bound for every element of a graph's outputs: the tolerance of the compiler
// fuzz (test/support/fuzz-run.ts), derived by running error analysis alongside a float64
// evaluation instead of guessing one number for all programs.
//
// For each node the float64 interpreter gives v̂ (the reference) and this module a bound E with
// |v − v̂| ≤ E for the value v that ANY float32 implementation computes whose every operation
// errs by at most the allowance below (first-order interval propagation: the operands may be
// anywhere within their bounds, then the operation rounds). Both the float32 interpreter
// (correct rounding) and WGSL (docs: https://www.w3.org/TR/WGSL/#floating-point-accuracy) are
// such implementations, so they agree to within 2E. E = 0 means "computed exactly": exact
// operands, and a result every grouping of its sums and products reproduces bit for bit (shader
// compilers regroup them: error-bounds-chains.ts). E = ∞ means the analysis gives up on the
// element (a comparison that may flip, a division by an interval holding 0, an overflow): it is
// not compared. bool values have E = 0 (certain) or 1 (may be either).
//
// Allowances (ULP of the result unless said otherwise), WGSL's own except sin/cos:
//   + − ×: correctly rounded, in any grouping of a chain of them (sums and products are bounded
//   over all groupings: error-bounds-chains.ts, error-bounds-reduce.ts); ÷ and 1/x: 2.5;
//   sqrt: 5 (WGSL: inherited from 1/inverseSqrt);
//   inverseSqrt: 2; exp: 3 + 2|x|; log: 3, or 2^-21 absolute on [0.5, 2]; pow: exp2(b·log2 a)'s;
//   tanh (grng_tanh): 16; erf (grng_erf): 4 plus 2^-23 absolute; floor, sign, abs, neg, max,
//   min, select, movement and casts between integers: exact.
//   sin/cos: WGSL allows 2^-11 absolute, which would leave them unchecked; here 2^-21 + 2^-24·|x|
//   absolute (the software adapters measured ≤ 8e-8 for |x| ≤ 200). A hardware adapter with
//   coarse sin/cos could exceed this without a compiler bug (as webgpu-parity.test.ts says).
// Every inexact result also gets 2^-126 absolute: WGSL may flush subnormals to zero.
import { topoSort, type Node } from '../../core/ir/node.js';
import { erf } from '../../core/ops/erf.js';
import { ruleOf } from '../../core/ops/table.js';
import { addBound, mulBound, type AddChain } from './error-bounds-chains.js';
import { F32_MAX, matmulBound, reduceMaxBound, reduceSumBound } from './error-bounds-reduce.js';

/** f32 unit roundoff: a correctly rounded result errs by at most U·|value|. */
export const U = 2 ** -24;
/** One ULP of y is at most 2U·|y|. */
const ULP = 2 * U;
/** What a flushed subnormal may cost. */
export const TINY = 2 ** -126;

/** A node's float64 value and the error bound of its elements. */
export interface Bounded {
  readonly value: Float64Array;
  readonly bound: Float64Array;
  /** f32 sums and products: what regrouping them may cost (error-bounds-chains.ts). */
  readonly chain?: AddChain;
  readonly factors?: number;
}

/**
 * Evaluates `outputs` in float64 with error bounds. Inputs must be f32 numbers (then exact);
 * intermediate values are dropped after their last reader, so large graphs fit in memory.
 */
export function boundedEval(
  outputs: readonly Node[],
  inputs: ReadonlyMap<string, Float64Array>,
): Bounded[] {
  const order = topoSort(outputs);
  const lastUse = new Map<number, number>();
  order.forEach((n, k) => n.inputs.forEach((x) => lastUse.set(x.id, k)));
  const kept = new Set(outputs.map((n) => n.id));
  const values = new Map<number, Bounded>();
  order.forEach((node, k) => {
    const args = node.inputs.map((n) => values.get(n.id) as Bounded);
    let value: Float64Array;
    if (node.op === 'input') {
      const name = (node as Node<'input'>).attrs.name;
      const given = inputs.get(name);
      if (given === undefined) throw new Error(`boundedEval: no value for input ${name}`);
      value = given;
    } else {
      value = ruleOf(node).interpret({ node, inputs: args.map((a) => a.value), round: same });
    }
    const bounded = regrouped(node, args, value) ?? { bound: boundOf(node, args, value) };
    if (node.dtype === 'f32') giveUpNearOverflow(value, bounded);
    values.set(node.id, { value, ...bounded });
    for (const x of node.inputs)
      if (lastUse.get(x.id) === k && !kept.has(x.id)) values.delete(x.id);
  });
  return outputs.map((n) => values.get(n.id) as Bounded);
}

const same = (x: number) => x;

/**
 * Elements that may overflow in f32 (float64 does not): ∞ bound, and ∞ in the sums they lead.
 */
function giveUpNearOverflow(value: Float64Array, bounded: Omit<Bounded, 'value'>): void {
  value.forEach((v, i) => {
    const b = bounded.bound[i];
    // exact: an f32 number, or an exact ∞ or NaN (a literal, a maximum of nothing)
    if (b === 0 && !(Math.abs(v) > F32_MAX && Number.isFinite(v))) return;
    if (Math.abs(v) + b < F32_MAX) return;
    bounded.bound[i] = Infinity;
    if (bounded.chain !== undefined) bounded.chain.propagated[i] = Infinity;
  });
}

/** f32 +, −, × and negation: bounded as the driver may regroup them (error-bounds-chains.ts). */
function regrouped(
  node: Node,
  [a, b]: readonly Bounded[],
  y: Float64Array,
): Omit<Bounded, 'value'> | undefined {
  if (node.dtype !== 'f32') return undefined;
  if (node.op === 'add' || node.op === 'sub') return addBound(a, b);
  if (node.op === 'mul') return mulBound(a, b, y);
  // −x is exact, and x's chain stays one (a − b is a + (−b))
  if (node.op === 'neg' && a.chain !== undefined)
    return {
      bound: a.bound.slice(),
      chain: { ...a.chain, propagated: a.chain.propagated.slice() },
    };
  return undefined;
}

/** ∞ for NaN (an interval end outside a domain): the analysis gives up there. */
const finiteOr = (e: number): number => (Number.isNaN(e) ? Infinity : e);

function boundOf(node: Node, args: readonly Bounded[], y: Float64Array): Float64Array {
  const op = node.op;
  const dtype = node.dtype;
  const [a, b] = args;
  switch (op) {
    case 'input':
    case 'constant':
      // f32 data and literals are what both sides compute with: their distance from the float64
      // value the reference uses (0 for inputs, which are f32 already).
      return y.map((v) =>
        dtype !== 'f32' || Object.is(Math.fround(v), v) ? 0 : Math.abs(Math.fround(v) - v),
      );
    case 'iota':
      return new Float64Array(y.length);
    case 'reshape':
    case 'permute':
    case 'broadcast':
    case 'slice':
    case 'pad':
    case 'windows':
      // Movement copies values (pads and windows add exact zeros): bounds move the same way.
      return ruleOf(node).interpret({ node, inputs: [a.bound], round: same });
    case 'stopGradient':
      return a.bound.slice();
    case 'gather':
      return gatherBound(node, a, b);
    case 'reduceSum':
      return reduceSumBound(node as Node<'reduceSum'>, a);
    case 'reduceMax':
      return reduceMaxBound(node as Node<'reduceMax'>, a);
    case 'matmul':
      return matmulBound(node, a, b);
    case 'cast':
      return castBound(node, a, y);
    case 'select':
      return selectBound(args, y);
    case 'isFinite':
      // certain unless the interval reaches past the largest f32 (or is unknown)
      return a.value.map((v, i) =>
        a.bound[i] === 0 || Math.abs(v) + a.bound[i] < F32_MAX ? 0 : 1,
      );
    case 'lt':
    case 'le':
    case 'gt':
    case 'ge':
    case 'eq':
    case 'ne':
      return compareBound(a, b);
    case 'max':
    case 'min':
      // 1-Lipschitz in each operand (sup norm); NaN operands are not modelled.
      return y.map((v, i) => (Number.isNaN(v) ? Infinity : Math.max(a.bound[i], b.bound[i])));
    case 'neg':
    case 'abs':
      return dtype === 'f32' ? a.bound.slice() : integerExact(args, y);
    case 'bitAnd':
    case 'bitOr':
    case 'bitXor':
    case 'shiftLeft':
    case 'shiftRight':
      return integerExact(args, y);
    case 'add':
    case 'sub':
    case 'mul':
      return integerArithmetic(op, a, b, y); // f32: regrouped()
    case 'div':
      return dtype === 'f32' ? divBound(a, b, y) : integerExact(args, y);
    case 'pow':
      return powBound(a, b, y);
    default:
      return unaryBound(node, a, y);
  }
}

/** Bounds of integer results that are exact when their operands are, else unknown. */
function integerExact(args: readonly Bounded[], y: Float64Array): Float64Array {
  return y.map((_, i) => (args.every((x) => x.bound[i] === 0) ? 0 : Infinity));
}

/** i32 +, −, ×: exact (wrapping alike) when the operands are; else interval arithmetic, no wrap. */
function integerArithmetic(op: string, a: Bounded, b: Bounded, y: Float64Array): Float64Array {
  return y.map((v, i) => {
    const ea = a.bound[i];
    const eb = b.bound[i];
    if (ea === 0 && eb === 0) return 0;
    const e =
      op === 'mul' ? Math.abs(a.value[i]) * eb + Math.abs(b.value[i]) * ea + ea * eb : ea + eb;
    return Math.abs(v) + e >= 2 ** 31 ? Infinity : e;
  });
}

/** x / y: |a/b − â/b̂| ≤ (ε_a|b̂| + |â|ε_b) / (|b̂|(|b̂| − ε_b)), then 2.5 ULP. */
function divBound(a: Bounded, b: Bounded, y: Float64Array): Float64Array {
  return y.map((v, i) => {
    const p = a.value[i];
    const q = b.value[i];
    const ea = a.bound[i];
    const eb = b.bound[i];
    if (Math.abs(q) <= eb) return Infinity;
    const dev = (ea * Math.abs(q) + Math.abs(p) * eb) / (Math.abs(q) * (Math.abs(q) - eb));
    return finiteOr(dev + 2.5 * ULP * (Math.abs(v) + dev) + TINY);
  });
}

/**
 * pow(a, b) for a > 0 (grng_pow; other bases are not modelled): monotone in each operand, so the
 * extremes over the operands' box are at its corners; then exp2(t)'s 3 + 2|t| ULP for
 * t = b·log2(a), and log2's error (3 ULP, or 2^-21 absolute on [0.5, 2]) scaled by |b|·ln 2.
 */
function powBound(a: Bounded, b: Bounded, y: Float64Array): Float64Array {
  return y.map((v, i) => {
    const p = a.value[i];
    const q = b.value[i];
    const ea = a.bound[i];
    const eb = b.bound[i];
    if (p - ea <= 0) return Infinity;
    let dev = 0;
    for (const s of [p - ea, p + ea])
      for (const t of [q - eb, q + eb]) dev = Math.max(dev, Math.abs(Math.pow(s, t) - v));
    const big = Math.abs(v) + dev;
    const t = Math.abs((Math.abs(q) + eb) * Math.log2(p + ea));
    const log2Error = Math.max(
      3 * ULP * Math.abs(Math.log2(p + ea)),
      p - ea >= 0.5 && p + ea <= 2 ? 2 ** -21 : 0,
    );
    const relative = (3 + 2 * t) * ULP + (Math.abs(q) + eb) * Math.LN2 * log2Error;
    return finiteOr(dev + relative * big + TINY);
  });
}

/** Elementwise unary f32 functions: interval images, then the function's allowance. */
function unaryBound(node: Node, a: Bounded, y: Float64Array): Float64Array {
  const op = node.op;
  if (node.dtype !== 'f32') return integerExact([a], y); // i32 sign
  const f = MONOTONE[op];
  const round = ROUNDING[op];
  if ((f === undefined && op !== 'sin' && op !== 'cos') || round === undefined)
    throw new Error(`error bounds: no rule for ${op}`);
  return y.map((v, i) => {
    const x = a.value[i];
    const e = a.bound[i];
    let dev: number;
    if (f === undefined)
      dev = Math.min(e, 2); // sin, cos: 1-Lipschitz
    else if (e === 0) dev = 0;
    // 1/x across 0 is unbounded
    else if (op === 'recip' && Math.sign(x - e) !== Math.sign(x + e)) dev = Infinity;
    else dev = Math.max(Math.abs(f(x - e) - v), Math.abs(f(x + e) - v));
    return finiteOr(dev + round(Math.abs(v) + dev, x, e));
  });
}

/**
 * Each function's own error given its result's magnitude `big`, its operand x and x's bound e
 * (the allowances of the file comment); floor and sign are exact.
 */
const ROUNDING: Readonly<Record<string, (big: number, x: number, e: number) => number>> = {
  floor: () => 0,
  sign: () => 0,
  exp: (big, x, e) => (3 + 2 * (Math.abs(x) + e)) * ULP * big + TINY,
  log: (big, x, e) => 3 * ULP * big + (x - e >= 0.5 && x + e <= 2 ? 2 ** -21 : 0) + TINY,
  sqrt: (big) => 5 * ULP * big + TINY,
  rsqrt: (big) => 2 * ULP * big + TINY,
  recip: (big) => 2.5 * ULP * big + TINY,
  tanh: (big) => 16 * ULP * big + TINY,
  erf: (big) => 4 * ULP * big + 2 ** -23,
  sin: (_big, x, e) => 2 ** -21 + U * (Math.abs(x) + e),
  cos: (_big, x, e) => 2 ** -21 + U * (Math.abs(x) + e),
};

/** Monotone (or monotone-by-piece, for recip) unary functions: images of interval ends. */
const MONOTONE: Readonly<Record<string, (x: number) => number>> = {
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  recip: (x) => 1 / x,
  tanh: Math.tanh,
  erf,
  floor: Math.floor,
  sign: (x) => Math.sign(x),
};

/**
 * Comparisons: certain unless the operands' intervals overlap (then the bool may be either: 1).
 * NaN operands are not modelled (WGSL may assume there are none).
 */
function compareBound(a: Bounded, b: Bounded): Float64Array {
  return a.value.map((p, i) => {
    const q = b.value[i];
    const e = a.bound[i] + b.bound[i];
    if (Number.isNaN(p) || Number.isNaN(q) || e === Infinity) return 1;
    return e > 0 && Math.abs(p - q) <= e ? 1 : 0;
  });
}

/** select(c, x, y): the chosen operand's bound, or either one's when c is uncertain. */
function selectBound([c, x, z]: readonly Bounded[], y: Float64Array): Float64Array {
  return y.map((_, i) => {
    if (c.bound[i] === 0) return c.value[i] !== 0 ? x.bound[i] : z.bound[i];
    return finiteOr(Math.max(x.bound[i], z.bound[i]) + Math.abs(x.value[i] - z.value[i]));
  });
}

/**
 * Casts: to bool certain unless the interval holds 0; f32 → i32 truncates (monotone, so the
 * interval ends bound it); i32 → f32 rounds once past 2^24.
 */
function castBound(node: Node, a: Bounded, y: Float64Array): Float64Array {
  const from = node.inputs[0].dtype;
  const to = node.dtype;
  const [x, e] = [a.value, a.bound];
  if (from === to || from === 'bool') return e.slice();
  if (to === 'bool') return x.map((v, i) => (e[i] > 0 && Math.abs(v) <= e[i] ? 1 : 0));
  if (to === 'f32')
    return x.map((v, i) =>
      e[i] === 0 && Math.fround(v) === v ? 0 : finiteOr(e[i] + U * (Math.abs(v) + e[i])),
    );
  // f32 → i32
  return y.map((v, i) => {
    if (e[i] === 0) return 0;
    if (Number.isNaN(x[i]) || e[i] === Infinity) return Infinity;
    return Math.max(Math.abs(truncate(x[i] - e[i]) - v), Math.abs(truncate(x[i] + e[i]) - v));
  });
}

/** f32 → i32 as the interpreter converts: toward zero, saturating. */
const truncate = (z: number) => Math.max(-2147483648, Math.min(2147483647, Math.trunc(z)));

/** Rows picked by exact ids carry their rows' bounds; an uncertain id could pick any row. */
function gatherBound(node: Node, table: Bounded, ids: Bounded): Float64Array {
  const out = ruleOf(node).interpret({ node, inputs: [table.bound, ids.value], round: same });
  const width = ids.value.length === 0 ? 0 : out.length / ids.value.length;
  ids.bound.forEach((e, p) => {
    if (e !== 0) out.fill(Infinity, p * width, (p + 1) * width);
  });
  return out;
}
