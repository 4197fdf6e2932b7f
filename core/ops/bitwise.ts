import type { Node } from '../ir/node.js';
import type { Primitive } from '../ir/primitives.js';
import type { OpRule, RuleTable } from './rule.js';
import { expectArity, expectDType, expectSameDType, expectSameShape } from './check.js';

/**
 * Bitwise operations on the 32-bit two's-complement pattern of i32 values, identical in the
 * interpreter (JS's int32 operators) and in WGSL. They are integer-only, so no derivative.
 *
 * Shifts take the amount modulo 32 everywhere: JS does that by itself, WGSL does it at run time
 * but rejects a constant amount ≥ 32 when both operands are literals (a const-expression), so the
 * WGSL masks the amount with `& 31u` explicitly. A constant u32 `<<` may also not shift out a 1
 * bit, hence the left shift clears those bits first: `(a & (0xffffffff >> s)) << s` is `a << s`.
 */
function integerBinary<P extends Primitive>(
  op: P,
  f: (a: number, b: number) => number,
  wgsl: (a: string, b: string) => string,
): OpRule<P> {
  return {
    wgsl: { kind: 'expr', expr: ([a, b]) => wgsl(a, b) },
    infer(inputs) {
      expectArity(op, inputs, 2);
      expectSameShape(op, inputs[0], inputs[1]);
      expectSameDType(op, inputs[0], inputs[1]);
      expectDType(op, inputs[0], ['i32']);
      return { shape: inputs[0].shape, dtype: 'i32' };
    },
    interpret({ inputs: [a, b] }) {
      const out = new Float64Array(a.length);
      for (let i = 0; i < a.length; i++) out[i] = f(a[i], b[i]);
      return out;
    },
    vjp: (): readonly (Node | null)[] => [null, null],
    jvp: () => null,
  };
}

/** The shift amount as WGSL u32, modulo 32. */
const amount = (b: string): string => `(bitcast<u32>(${b}) & 31u)`;

export const bitwiseRules: RuleTable<'bitAnd' | 'bitOr' | 'bitXor' | 'shiftLeft' | 'shiftRight'> = {
  bitAnd: integerBinary(
    'bitAnd',
    (a, b) => a & b,
    (a, b) => `(${a} & ${b})`,
  ),
  bitOr: integerBinary(
    'bitOr',
    (a, b) => a | b,
    (a, b) => `(${a} | ${b})`,
  ),
  bitXor: integerBinary(
    'bitXor',
    (a, b) => a ^ b,
    (a, b) => `(${a} ^ ${b})`,
  ),
  // JS's << and >>> use the amount modulo 32 (negative amounts too: −1 is 31), as the WGSL mask
  // does.
  shiftLeft: integerBinary(
    'shiftLeft',
    (a, b) => a << b,
    (a, b) => {
      const s = amount(b);
      return `bitcast<i32>((bitcast<u32>(${a}) & (0xffffffffu >> ${s})) << ${s})`;
    },
  ),
  /** Logical: zeros shift in at the top (`>>>`), then the pattern is read back as i32. */
  shiftRight: integerBinary(
    'shiftRight',
    (a, b) => (a >>> b) | 0,
    (a, b) => `bitcast<i32>(bitcast<u32>(${a}) >> ${amount(b)})`,
  ),
};
