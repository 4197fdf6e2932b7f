import { GrngError } from '../core/errors.js';
import type { DType, Node } from '../core/ir/index.js';
import type {
  Broadcast,
  BroadcastCheck,
  MatmulCheck,
  MatmulShape,
  Reverse,
  Shape,
} from './shape-types.js';
import * as ew from './ops/elementwise.js';
import * as mv from './ops/movement.js';
import * as rd from './ops/reduce.js';
import * as la from './ops/linalg.js';

/** A number or a tensor: numbers become constants of the other operand's dtype. */
export type Operand = Tensor | number;

/**
 * A symbolic tensor: a handle on an IR node, with its shape in the type where it is a literal.
 * Tensors are immutable; every op returns a new one. Methods are sugar for the functional ops.
 */
export class Tensor<out S extends Shape = Shape> {
  /** The IR node this tensor stands for. */
  readonly node: Node;

  constructor(node: Node) {
    // Users build tensors with input(), constant() or the ops; a node is the IR's own object.
    if (typeof node !== 'object' || node === null || !Array.isArray(node.shape))
      throw new GrngError(
        'Tensor',
        `expected an IR node, got ${node === null ? 'null' : typeof node}${typeof node === 'object' && node !== null ? ' without a shape' : ''}; ` +
          `build tensors with input(), constant() or array() and the ops`,
      );
    this.node = node;
  }

  get shape(): S {
    return this.node.shape as S;
  }
  get dtype(): DType {
    return this.node.dtype;
  }
  get rank(): number {
    return this.node.shape.length;
  }
  get size(): number {
    return this.node.shape.reduce((a, d) => a * d, 1);
  }
  toString(): string {
    return `Tensor(${this.dtype}[${this.node.shape.join(', ')}])`;
  }

  add<T extends Shape, B extends Shape = readonly []>(
    this: Tensor<T>,
    y: (Tensor<B> & BroadcastCheck<T, B>) | number,
  ): Tensor<Broadcast<T, B>> {
    return ew.binary('add', this, y as Operand) as Tensor<Broadcast<T, B>>;
  }
  sub<T extends Shape, B extends Shape = readonly []>(
    this: Tensor<T>,
    y: (Tensor<B> & BroadcastCheck<T, B>) | number,
  ): Tensor<Broadcast<T, B>> {
    return ew.binary('sub', this, y as Operand) as Tensor<Broadcast<T, B>>;
  }
  mul<T extends Shape, B extends Shape = readonly []>(
    this: Tensor<T>,
    y: (Tensor<B> & BroadcastCheck<T, B>) | number,
  ): Tensor<Broadcast<T, B>> {
    return ew.binary('mul', this, y as Operand) as Tensor<Broadcast<T, B>>;
  }
  div<T extends Shape, B extends Shape = readonly []>(
    this: Tensor<T>,
    y: (Tensor<B> & BroadcastCheck<T, B>) | number,
  ): Tensor<Broadcast<T, B>> {
    return ew.binary('div', this, y as Operand) as Tensor<Broadcast<T, B>>;
  }
  pow<T extends Shape, B extends Shape = readonly []>(
    this: Tensor<T>,
    y: (Tensor<B> & BroadcastCheck<T, B>) | number,
  ): Tensor<Broadcast<T, B>> {
    return ew.binary('pow', this, y as Operand) as Tensor<Broadcast<T, B>>;
  }
  maximum<T extends Shape, B extends Shape = readonly []>(
    this: Tensor<T>,
    y: (Tensor<B> & BroadcastCheck<T, B>) | number,
  ): Tensor<Broadcast<T, B>> {
    return ew.binary('max', this, y as Operand) as Tensor<Broadcast<T, B>>;
  }
  minimum<T extends Shape, B extends Shape = readonly []>(
    this: Tensor<T>,
    y: (Tensor<B> & BroadcastCheck<T, B>) | number,
  ): Tensor<Broadcast<T, B>> {
    return ew.binary('min', this, y as Operand) as Tensor<Broadcast<T, B>>;
  }
  lt(y: Operand): Tensor {
    return ew.lt(this, y);
  }
  le(y: Operand): Tensor {
    return ew.le(this, y);
  }
  gt(y: Operand): Tensor {
    return ew.gt(this, y);
  }
  ge(y: Operand): Tensor {
    return ew.ge(this, y);
  }
  eq(y: Operand): Tensor {
    return ew.eq(this, y);
  }
  ne(y: Operand): Tensor {
    return ew.ne(this, y);
  }

  neg(): Tensor<S> {
    return ew.neg(this);
  }
  exp(): Tensor<S> {
    return ew.exp(this);
  }
  log(): Tensor<S> {
    return ew.log(this);
  }
  sqrt(): Tensor<S> {
    return ew.sqrt(this);
  }
  rsqrt(): Tensor<S> {
    return ew.rsqrt(this);
  }
  recip(): Tensor<S> {
    return ew.recip(this);
  }
  square(): Tensor<S> {
    return ew.square(this);
  }
  sin(): Tensor<S> {
    return ew.sin(this);
  }
  cos(): Tensor<S> {
    return ew.cos(this);
  }
  tanh(): Tensor<S> {
    return ew.tanh(this);
  }
  abs(): Tensor<S> {
    return ew.abs(this);
  }
  sign(): Tensor<S> {
    return ew.sign(this);
  }
  floor(): Tensor<S> {
    return ew.floor(this);
  }
  relu(): Tensor<S> {
    return ew.relu(this);
  }
  sigmoid(): Tensor<S> {
    return ew.sigmoid(this);
  }
  cast(dtype: DType): Tensor<S> {
    return ew.cast(this, dtype);
  }
  stopGradient(): Tensor<S> {
    return ew.stopGradient(this);
  }

  matmul<T extends Shape, B extends Shape>(
    this: Tensor<T>,
    b: Tensor<B> & MatmulCheck<T, B>,
  ): Tensor<MatmulShape<T, B>> {
    return la.matmulAny(this, b) as Tensor<MatmulShape<T, B>>;
  }
  reshape<const T extends Shape>(shape: T): Tensor<[...T]> {
    return mv.reshape(this, shape);
  }
  transpose<T extends Shape>(this: Tensor<T>, perm?: readonly number[]): Tensor<Reverse<T>> {
    return mv.transpose(this, perm);
  }
  /** Swaps the last two axes (matrix transpose, batched). */
  get mT(): Tensor {
    return mv.mT(this);
  }
  broadcastTo<const T extends Shape>(shape: T): Tensor<[...T]> {
    return mv.broadcastTo(this, shape);
  }
  flatten(): Tensor<[number]> {
    return mv.flatten(this);
  }

  sum(axis?: number | readonly number[], keepdims = false): Tensor {
    return rd.sum(this, axis, keepdims);
  }
  mean(axis?: number | readonly number[], keepdims = false): Tensor {
    return rd.mean(this, axis, keepdims);
  }
  max(axis?: number | readonly number[], keepdims = false): Tensor {
    return rd.max(this, axis, keepdims);
  }
  min(axis?: number | readonly number[], keepdims = false): Tensor {
    return rd.min(this, axis, keepdims);
  }
}

export function isTensor(x: unknown): x is Tensor {
  return x instanceof Tensor;
}
