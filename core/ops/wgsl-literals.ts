import type { DType } from '../ir/dtype.js';

/** The WGSL register type of a dtype (bool is stored in buffers as i32 0/1). */
export function wgslType(dtype: DType): string {
  return dtype === 'f32' ? 'f32' : dtype === 'i32' ? 'i32' : 'bool';
}

/**
 * A WGSL literal of `value` as `dtype`; non-finite floats come from bit patterns (WGSL has no
 * literal for them).
 */
export function literal(value: number, dtype: DType): string {
  if (dtype === 'bool') return value !== 0 ? 'true' : 'false';
  if (dtype === 'i32') {
    const v = value | 0;
    return v === -2147483648 ? 'i32(-2147483648)' : `${v}i`;
  }
  const f = Math.fround(value);
  // A function call is not a constant expression, so the shader compiler cannot reject these.
  if (Number.isNaN(f)) return 'grng_bits(0x7fc00000u)';
  if (f === Infinity) return 'grng_bits(0x7f800000u)';
  if (f === -Infinity) return 'grng_bits(0xff800000u)';
  if (Object.is(f, -0)) return 'grng_bits(0x80000000u)';
  // Shortest round-trip digits of the f32 value; an 'f' suffix keeps it f32 (not abstract).
  const text = String(f);
  return /[.eE]/.test(text) ? `${text}f` : `${text}.0f`;
}
