import type { DType } from '../ir/dtype.js';
import type { Node } from '../ir/node.js';
import type { Primitive, PrimitiveAttrs } from '../ir/primitives.js';
import type { Shape } from '../ir/shape.js';
import type { Builder } from '../ir/builder.js';

/**
 * What the interpreter hands a rule: the node, its input values (row-major) and the rounding mode.
 */
export interface InterpretContext<P extends Primitive> {
  readonly node: Node<P>;
  readonly inputs: readonly Float64Array[];
  /** Identity in float64 mode; Math.fround in float32 mode (applied after every f32 operation). */
  readonly round: (x: number) => number;
}

/**
 * Everything grng knows about one primitive. A primitive missing any rule fails `tsc`
 * (see `ops/table.ts`), so the interpreter, both modes of autodiff and WGSL generation can
 * rely on finding a rule for every node.
 */
export interface OpRule<P extends Primitive> {
  /**
   * Checks operands and attributes (GrngError naming the op otherwise) and gives the result type.
   */
  infer(inputs: readonly Node[], attrs: PrimitiveAttrs[P]): { shape: Shape; dtype: DType };
  /** Reference semantics: float64 (or float32-rounded) evaluation on the CPU. */
  interpret(ctx: InterpretContext<P>): Float64Array;
  /**
   * Reverse mode: cotangents of the inputs given the output's cotangent `ct`, built from
   * primitives so that the rule itself can be differentiated again. null means zero.
   */
  vjp(b: Builder, node: Node<P>, ct: Node): readonly (Node | null)[];
  /** Forward mode: the output's tangent given the inputs' tangents (null means zero). */
  jvp(b: Builder, node: Node<P>, tangents: readonly (Node | null)[]): Node | null;
  /** How WGSL code generation computes this primitive (see WgslRule). */
  wgsl: WgslRule<P>;
}

/**
 * The WGSL side of a primitive, by how it is lowered:
 * - `expr`: elementwise; a WGSL expression of the operands' values at the same index.
 * - `index`: movement; the operand index (and an in-bounds guard, for pad) for an output index.
 *   Movement never copies: it becomes index arithmetic inside whatever kernel reads it.
 * - `gather`: movement whose operand index depends on a value: the output index gives an index
 *   into operand 1 (the ids), whose value (a WGSL i32) then gives the index into operand 0. It is
 *   inlined like `index` movement, but reads operand 0 at data-dependent elements.
 * - `leaf`: a value from the index alone (splat constants, iota), or null for buffer-backed leaves.
 * - `reduce`: a reduction kernel's accumulator (initial value and combine step).
 * - `matmul`: the batched matrix product kernel.
 * - `sequential`: a kernel of its own running a sequential algorithm (Cholesky, triangular solves).
 * Index expressions are WGSL i32 expressions; values are WGSL expressions of the node's type
 * (bool stays bool in registers and is stored as i32 0/1).
 */
export type WgslRule<P extends Primitive> =
  | { readonly kind: 'expr'; expr(args: readonly string[], node: Node<P>): string }
  | {
      readonly kind: 'index';
      operandIndex(index: readonly string[], node: Node<P>): { index: string[]; inBounds?: string };
    }
  | {
      readonly kind: 'gather';
      idsIndex(index: readonly string[], node: Node<P>): string[];
      operandIndex(index: readonly string[], node: Node<P>, id: string): string[];
    }
  | { readonly kind: 'leaf'; value(index: readonly string[], node: Node<P>): string | null }
  | {
      readonly kind: 'reduce';
      init(node: Node<P>): string;
      combine(acc: string, value: string): string;
    }
  | { readonly kind: 'matmul' }
  | { readonly kind: 'sequential' };

export type RuleTable<K extends Primitive> = { readonly [P in K]: OpRule<P> };
