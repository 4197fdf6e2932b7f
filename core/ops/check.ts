import { GrngError, fmtShape } from '../errors.js';
import type { DType } from '../ir/dtype.js';
import type { Node } from '../ir/node.js';
import { shapesEqual } from '../ir/shape.js';

/** Shared operand checks for rules; every message names the op, the shapes and the fix. */
export function expectArity(op: string, inputs: readonly Node[], n: number): void {
  if (inputs.length !== n) throw new GrngError(op, `expects ${n} operand(s), got ${inputs.length}`);
}

export function expectDType(
  op: string,
  x: Node,
  allowed: readonly DType[],
  which = 'operand',
): void {
  if (!allowed.includes(x.dtype)) {
    throw new GrngError(
      op,
      `${which} has dtype ${x.dtype} (shape ${fmtShape(x.shape)}) but ${op} ` +
        `needs ${allowed.join(' or ')}; convert it with cast`,
    );
  }
}

export function expectSameShape(op: string, a: Node, b: Node): void {
  if (!shapesEqual(a.shape, b.shape)) {
    throw new GrngError(
      op,
      `operands have shapes ${fmtShape(a.shape)} and ${fmtShape(b.shape)}; ` +
        `the IR needs equal shapes (broadcast first)`,
    );
  }
}

export function expectSameDType(op: string, a: Node, b: Node): void {
  if (a.dtype !== b.dtype) {
    throw new GrngError(
      op,
      `operands have dtypes ${a.dtype} and ${b.dtype} (shapes ` +
        `${fmtShape(a.shape)}, ${fmtShape(b.shape)}); cast one of them`,
    );
  }
}
