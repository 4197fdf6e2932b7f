import { builder as b } from '../../core/ir/index.js';
import type { Operand, Tensor } from '../tensor.js';
import { broadcastPair, wrap } from './operands.js';

type BitwiseOp = 'bitAnd' | 'bitOr' | 'bitXor' | 'shiftLeft' | 'shiftRight';

/**
 * Broadcasting i32 bitwise op; numbers are i32 scalars read as their 32-bit pattern (0x9e3779b9 is
 * −1640531527).
 */
function bitwise(op: BitwiseOp, x: Operand, y: Operand): Tensor {
  const bits = (v: Operand): Operand => (typeof v === 'number' ? v | 0 : v);
  // Two numbers: make the first an i32 scalar, or broadcastPair would make both f32.
  const first =
    typeof x === 'number' && typeof y === 'number' ? wrap(b.fill(x | 0, [], 'i32')) : bits(x);
  const [p, q] = broadcastPair(op, first, bits(y));
  return wrap(b[op](p, q));
}

/** Bitwise AND of i32 tensors (with NumPy broadcasting). */
export const bitAnd = (x: Operand, y: Operand): Tensor => bitwise('bitAnd', x, y);
/** Bitwise OR of i32 tensors. */
export const bitOr = (x: Operand, y: Operand): Tensor => bitwise('bitOr', x, y);
/** Bitwise XOR of i32 tensors. */
export const bitXor = (x: Operand, y: Operand): Tensor => bitwise('bitXor', x, y);
/** `x << (s mod 32)` on the 32-bit pattern (bits shifted out are lost; i32 wraps). */
export const shiftLeft = (x: Operand, s: Operand): Tensor => bitwise('shiftLeft', x, s);
/** Logical right shift `x >>> (s mod 32)`: zeros enter at the top, the result is read as i32. */
export const shiftRight = (x: Operand, s: Operand): Tensor => bitwise('shiftRight', x, s);
