/**
 * WGSL helpers for primitives whose built-in form is not accurate or not defined where the
 * reference interpreter is: included in a kernel only when it calls them. Each is written for
 * a type T (f32, or vec4<f32> in vectorized kernels) using only component-wise operations.
 */
export interface Helper {
  readonly name: string;
  code(t: string): string;
  /**
   * Written for T: vectorized kernels also get an f32 twin, `<name>_s`, for their uniform scalars.
   */
  readonly generic?: boolean;
}

export const PRELUDE: readonly Helper[] = [
  {
    // Non-finite f32 values: WGSL has no literals for them and rejects them in constant
    // expressions.
    name: 'grng_bits',
    code: () => `fn grng_bits(b: u32) -> f32 { return bitcast<f32>(b); }`,
  },
  {
    // WGSL's pow is exp2(b·log2(a)): undefined for a < 0 and for pow(0, 0). JS semantics here.
    name: 'grng_pow',
    generic: true,
    code: (t) => `fn grng_pow(a: ${t}, b: ${t}) -> ${t} {
  let m = pow(abs(a), b);
  let odd = (b - 2.0f * floor(b * 0.5f)) == ${t}(1.0f);
  let negative = select(select(m, -m, odd), ${t}(grng_bits(0x7fc00000u)), floor(b) != b);
  return select(select(negative, m, a >= ${t}(0.0f)), ${t}(1.0f), b == ${t}(0.0f));
}`,
  },
  {
    // Built-in tanh inherits sinh/cosh accuracy and may overflow for large |x|: a short series
    // near 0 (relative error < 1e-7 for |x| < 0.1) and (1 − e^(−2|x|)) / (1 + e^(−2|x|)) elsewhere.
    name: 'grng_tanh',
    generic: true,
    code: (t) => `fn grng_tanh(x: ${t}) -> ${t} {
  let ax = abs(x);
  let x2 = x * x;
  let series = x * (1.0f - x2 * (0.33333334f - x2 * 0.13333334f));
  let e = exp(-2.0f * ax);
  return select(sign(x) * (1.0f - e) / (1.0f + e), series, ax < ${t}(0.1f));
}`,
  },
];

/** The f32 twins of the generic helpers (vectorized kernels call them on uniform scalars). */
export const SCALAR_TWINS: readonly Helper[] = PRELUDE.filter((h) => h.generic).map((h) => ({
  name: `${h.name}_s`,
  code: () => h.code('f32').replace(`fn ${h.name}(`, `fn ${h.name}_s(`),
}));

/**
 * `expr` with its generic helper calls turned into their f32 twins' (an expression over scalars in
 * a vector kernel).
 */
export function scalarHelperCalls(expr: string): string {
  return PRELUDE.filter((h) => h.generic).reduce(
    (text, h) => text.replaceAll(`${h.name}(`, `${h.name}_s(`),
    expr,
  );
}
