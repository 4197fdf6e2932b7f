/**
 * WGSL helpers for primitives whose built-in form is not accurate or not defined where the
 * reference interpreter is: included in a kernel only when it calls them.
 */
export const PRELUDE: readonly { name: string; code: string }[] = [
  {
    // Non-finite f32 values: WGSL has no literals for them and rejects them in constant expressions.
    name: 'grng_bits',
    code: `fn grng_bits(b: u32) -> f32 { return bitcast<f32>(b); }`,
  },
  {
    // WGSL's pow is exp2(b·log2(a)): undefined for a < 0 and for pow(0, 0). JS semantics here.
    name: 'grng_pow',
    code: `fn grng_pow(a: f32, b: f32) -> f32 {
  if (b == 0.0f) { return 1.0f; }
  let m = pow(abs(a), b);
  if (a >= 0.0f) { return m; }
  if (floor(b) != b) { return grng_bits(0x7fc00000u); }
  let odd = (b - 2.0f * floor(b * 0.5f)) == 1.0f;
  return select(m, -m, odd);
}`,
  },
  {
    // Built-in tanh inherits sinh/cosh accuracy and may overflow for large |x|: a short series
    // near 0 (relative error < 1e-7 for |x| < 0.1) and (1 − e^(−2|x|)) / (1 + e^(−2|x|)) elsewhere.
    name: 'grng_tanh',
    code: `fn grng_tanh(x: f32) -> f32 {
  let ax = abs(x);
  if (ax < 0.1f) { let x2 = x * x; return x * (1.0f - x2 * (0.33333334f - x2 * 0.13333334f)); }
  let e = exp(-2.0f * ax);
  return sign(x) * (1.0f - e) / (1.0f + e);
}`,
  },
];
