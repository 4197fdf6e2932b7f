import { builder as b, broadcastShapes, type DType, type Node } from '../../core/ir/index.js';
import { fmtShape, GrngError } from '../../core/errors.js';
import type { Broadcast, BroadcastCheck, Shape } from '../shape-types.js';
import type { Tensor } from '../tensor.js';
import { type Operand } from '../tensor.js';
import { broadcastNode, broadcastPair, nodeOf, wrap } from './operands.js';

// Typed signature of the broadcasting binary ops: a number operand is a scalar ([]).
type Second<A extends Shape, B extends Shape> = (Tensor<B> & BroadcastCheck<A, B>) | number;
type Result<A extends Shape, B extends Shape> = Tensor<Broadcast<A, B> & Shape>;

/** Shared body of the broadcasting binary ops (and of Tensor's method sugar). */
export function binary(
  op: 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'max' | 'min',
  x: Operand,
  y: Operand,
): Tensor {
  const [p, q] = broadcastPair(op, x, y);
  return wrap(b[op](p, q));
}

function compare(op: 'lt' | 'le' | 'gt' | 'ge' | 'eq' | 'ne', x: Operand, y: Operand): Tensor {
  const [p, q] = broadcastPair(op, x, y);
  return wrap(b[op](p, q));
}

/** Elementwise sum with NumPy broadcasting; numbers are scalars of the tensor's dtype. */
export function add<A extends Shape = readonly [], B extends Shape = readonly []>(
  x: Tensor<A> | number,
  y: Second<A, B>,
): Result<A, B> {
  return binary('add', x, y as Operand) as Result<A, B>;
}
export function sub<A extends Shape = readonly [], B extends Shape = readonly []>(
  x: Tensor<A> | number,
  y: Second<A, B>,
): Result<A, B> {
  return binary('sub', x, y as Operand) as Result<A, B>;
}
export function mul<A extends Shape = readonly [], B extends Shape = readonly []>(
  x: Tensor<A> | number,
  y: Second<A, B>,
): Result<A, B> {
  return binary('mul', x, y as Operand) as Result<A, B>;
}
export function div<A extends Shape = readonly [], B extends Shape = readonly []>(
  x: Tensor<A> | number,
  y: Second<A, B>,
): Result<A, B> {
  return binary('div', x, y as Operand) as Result<A, B>;
}
export function pow<A extends Shape = readonly [], B extends Shape = readonly []>(
  x: Tensor<A> | number,
  y: Second<A, B>,
): Result<A, B> {
  return binary('pow', x, y as Operand) as Result<A, B>;
}
/** Elementwise maximum (ties split the derivative equally, as in JAX). */
export function maximum<A extends Shape = readonly [], B extends Shape = readonly []>(
  x: Tensor<A> | number,
  y: Second<A, B>,
): Result<A, B> {
  return binary('max', x, y as Operand) as Result<A, B>;
}
export function minimum<A extends Shape = readonly [], B extends Shape = readonly []>(
  x: Tensor<A> | number,
  y: Second<A, B>,
): Result<A, B> {
  return binary('min', x, y as Operand) as Result<A, B>;
}

export const lt = (x: Operand, y: Operand): Tensor => compare('lt', x, y);
export const le = (x: Operand, y: Operand): Tensor => compare('le', x, y);
export const gt = (x: Operand, y: Operand): Tensor => compare('gt', x, y);
export const ge = (x: Operand, y: Operand): Tensor => compare('ge', x, y);
export const eq = (x: Operand, y: Operand): Tensor => compare('eq', x, y);
export const ne = (x: Operand, y: Operand): Tensor => compare('ne', x, y);

function unary<S extends Shape>(name: string, op: (n: Node) => Node, x: Tensor<S>): Tensor<S> {
  return wrap(op(nodeOf(name, x))) as Tensor<S>;
}

export const neg = <S extends Shape>(x: Tensor<S>): Tensor<S> => unary('neg', b.neg, x);
export const exp = <S extends Shape>(x: Tensor<S>): Tensor<S> => unary('exp', b.exp, x);
export const log = <S extends Shape>(x: Tensor<S>): Tensor<S> => unary('log', b.log, x);
export const sqrt = <S extends Shape>(x: Tensor<S>): Tensor<S> => unary('sqrt', b.sqrt, x);
export const rsqrt = <S extends Shape>(x: Tensor<S>): Tensor<S> => unary('rsqrt', b.rsqrt, x);
export const recip = <S extends Shape>(x: Tensor<S>): Tensor<S> => unary('recip', b.recip, x);
export const sin = <S extends Shape>(x: Tensor<S>): Tensor<S> => unary('sin', b.sin, x);
export const cos = <S extends Shape>(x: Tensor<S>): Tensor<S> => unary('cos', b.cos, x);
export const tanh = <S extends Shape>(x: Tensor<S>): Tensor<S> => unary('tanh', b.tanh, x);
/** The error function 2/√π ∫₀ˣ e^(−t²) dt (f32). */
export const erf = <S extends Shape>(x: Tensor<S>): Tensor<S> =>
  unary('erf', (n) => b.emit('erf', [n], {}), x);
export const abs = <S extends Shape>(x: Tensor<S>): Tensor<S> => unary('abs', b.abs, x);
export const sign = <S extends Shape>(x: Tensor<S>): Tensor<S> => unary('sign', b.sign, x);
export const floor = <S extends Shape>(x: Tensor<S>): Tensor<S> => unary('floor', b.floor, x);
/** Bool: true where x (f32) is neither ±∞ nor NaN, as numpy's isfinite. */
export const isFinite = <S extends Shape>(x: Tensor<S>): Tensor<S> =>
  unary('isFinite', b.isFinite, x);
/** Identity whose derivative is zero (JAX's stop_gradient, PyTorch's detach). */
export const stopGradient = <S extends Shape>(x: Tensor<S>): Tensor<S> =>
  unary('stopGradient', b.stopGradient, x);
export const cast = <S extends Shape>(x: Tensor<S>, dtype: DType): Tensor<S> =>
  unary('cast', (n) => b.cast(n, dtype), x);

export const square = <S extends Shape>(x: Tensor<S>): Tensor<S> =>
  unary('square', (n) => b.mul(n, n), x);
export const relu = <S extends Shape>(x: Tensor<S>): Tensor<S> =>
  unary('relu', (n) => b.max(n, b.zerosLike(n)), x);
/**
 * 1 / (1 + e^(−x)), evaluated with e = e^(−|x|) ≤ 1 so neither branch overflows or cancels:
 * 1/(1+e) for x ≥ 0 and e/(1+e) below. |x| is written s·x with a constant sign s, so the
 * derivative is right at 0 too.
 */
export const sigmoid = <S extends Shape>(x: Tensor<S>): Tensor<S> =>
  unary(
    'sigmoid',
    (n) => {
      const nonNegative = b.ge(n, b.zerosLike(n));
      const s = b.select(nonNegative, b.fillLike(1, n), b.fillLike(-1, n));
      const e = b.exp(b.neg(b.mul(s, n)));
      const r = b.recip(b.add(b.fillLike(1, n), e));
      return b.select(nonNegative, r, b.mul(e, r));
    },
    x,
  );

/**
 * `cond ? x : y` elementwise, with broadcasting; `cond` must be bool (make one with a comparison).
 */
export function where(cond: Tensor, x: Operand, y: Operand): Tensor {
  const c = nodeOf('where', cond);
  if (c.dtype !== 'bool') {
    throw new GrngError(
      'where',
      `condition has dtype ${c.dtype} (shape ${fmtShape(c.shape)}) but must ` +
        `be bool; compare first, e.g. x.gt(0)`,
    );
  }
  const [p, q] = broadcastPair('where', x, y);
  const shape = broadcastShapes('where', c.shape, p.shape);
  return wrap(b.select(broadcastNode(c, shape), broadcastNode(p, shape), broadcastNode(q, shape)));
}
