import type { DType } from './dtype.js';
import type { Shape } from './shape.js';

/**
 * Every IR primitive and its attributes. This is the registry the op table is checked against:
 * adding a primitive here without giving it every rule in `ops/table.ts` fails `tsc`.
 */
export interface PrimitiveAttrs {
  // leaves
  input: { name: string; shape: Shape; dtype: DType };
  constant:
    | { shape: Shape; dtype: DType; value: number }
    | { shape: Shape; dtype: DType; data: Float64Array };
  iota: { shape: Shape; axis: number; dtype: DType };
  // unary elementwise
  neg: Empty;
  exp: Empty;
  log: Empty;
  sqrt: Empty;
  rsqrt: Empty;
  recip: Empty;
  sin: Empty;
  cos: Empty;
  tanh: Empty;
  /** The error function, 2/√π ∫₀ˣ e^(−t²) dt. */
  erf: Empty;
  abs: Empty;
  sign: Empty;
  floor: Empty;
  /** True where an f32 is neither ±∞ nor NaN (read from its exponent bits: exact everywhere). */
  isFinite: Empty;
  cast: { dtype: DType };
  /** Identity whose derivative is zero (JAX's stop_gradient, PyTorch's detach). */
  stopGradient: Empty;
  // binary elementwise (operands of equal shape and dtype; the DSL broadcasts)
  add: Empty;
  sub: Empty;
  mul: Empty;
  div: Empty;
  pow: Empty;
  max: Empty;
  min: Empty;
  lt: Empty;
  le: Empty;
  gt: Empty;
  ge: Empty;
  eq: Empty;
  ne: Empty;
  // bitwise, on i32's 32-bit pattern (shift amounts modulo 32; shiftRight is logical)
  bitAnd: Empty;
  bitOr: Empty;
  bitXor: Empty;
  shiftLeft: Empty;
  shiftRight: Empty;
  // selection
  select: Empty;
  // movement
  reshape: { shape: Shape };
  permute: { perm: readonly number[] };
  /** Same rank; each input axis is either equal to the output's or 1. */
  broadcast: { shape: Shape };
  slice: { starts: readonly number[]; ends: readonly number[] };
  /** Zero padding, `lo[i]` before and `hi[i]` after axis i. */
  pad: { lo: readonly number[]; hi: readonly number[] };
  /**
   * Sliding windows of NHWC images (im2col as a view): [B, H, W, C] → [B, H_out, W_out, C, k_h,
   * k_w], zero outside the image (core/ops/windows.ts).
   */
  windows: {
    window: readonly [number, number];
    stride: readonly [number, number];
    padding: readonly [number, number];
  };
  /**
   * Rows of a table picked by integer ids (an embedding lookup): operands table [V, ...rest] and
   * ids [...idx] (i32), result [...idx, ...rest]; an id outside [0, V) reads the row it clamps to.
   */
  gather: Empty;
  // reductions (the reduced axes are removed)
  reduceSum: { axes: readonly number[] };
  reduceMax: { axes: readonly number[] };
  // batched matmul: [...b, m, k] x [...b, k, n] -> [...b, m, n]
  matmul: Empty;
  // dense solvers (core/ops/solvers.ts), reading the lower triangle of their matrix operand
  /** L with L Lᵀ = A for symmetric positive definite A [d, d] (NaN pivots otherwise). */
  cholesky: Empty;
  /** X [d, k] with L X = B (transpose: Lᵀ X = B) for lower-triangular L [d, d] and B [d, k]. */
  triangularSolve: { transpose: boolean };
}

// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export type Empty = {};

export type Primitive = keyof PrimitiveAttrs;
