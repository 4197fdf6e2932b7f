import type { DType } from '../ir/dtype.js';
import type { Node } from '../ir/node.js';
import type { Primitive, PrimitiveAttrs } from '../ir/primitives.js';
import type { Shape } from '../ir/shape.js';
import type { Builder } from '../ir/builder.js';

/** What the interpreter hands a rule: the node, its input values (row-major) and the rounding mode. */
export interface InterpretContext<P extends Primitive> {
  readonly node: Node<P>;
  readonly inputs: readonly Float64Array[];
  /** Identity in float64 mode; Math.fround in float32 mode (applied after every f32 operation). */
  readonly round: (x: number) => number;
}

/**
 * Everything grng knows about one primitive. A primitive missing any rule fails `tsc`
 * (see `ops/table.ts`), so the interpreter, both modes of autodiff and (later) codegen can
 * rely on finding a rule for every node.
 */
export interface OpRule<P extends Primitive> {
  /** Checks operands and attributes (GrngError naming the op otherwise) and gives the result type. */
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
}

export type RuleTable<K extends Primitive> = { readonly [P in K]: OpRule<P> };
