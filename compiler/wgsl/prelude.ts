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
    // x / d for 0 ≤ x < 2^30, 1 ≤ d, given r = f32(1/d): kernels whose sizes come from a uniform
    // unravel their index with it, where an integer division by a runtime value would run as one
    // scalar division per lane on CPU adapters. The float quotient is off by at most a few hundred
    // (f32 keeps 24 bits); the exact remainder of that estimate, small enough for f32, corrects it
    // to within one, and the final remainder's sign fixes the last unit.
    name: 'grng_idiv',
    code: () => `fn grng_idiv(x: i32, d: i32, r: f32) -> i32 {
  var q = i32(f32(x) * r);
  q = q + i32(floor(f32(x - q * d) * r));
  let rest = x - q * d;
  return q + select(0i, 1i, rest >= d) - select(0i, 1i, rest < 0i);
}`,
  },
  {
    // Non-finite f32 values: WGSL has no literals for them and rejects them in constant
    // expressions.
    name: 'grng_bits',
    code: () => `fn grng_bits(b: u32) -> f32 { return bitcast<f32>(b); }`,
  },
  {
    // f32 → i32 as the interpreter converts (core/ops/elementwise.ts): toward zero, saturating at
    // −2^31 and 2^31 − 1, NaN to 0. WGSL's i32(x) clamps to [−2^31, 2^31 − 128] and leaves NaN to
    // the implementation. NaN is found from its bits: WGSL lets a driver assume x == x.
    name: 'grng_ftoi',
    code: () => `fn grng_ftoi(x: f32) -> i32 {
  let t = i32(clamp(x, -2147483648.0f, 2147483520.0f));
  let nan = (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
  return select(select(t, 2147483647i, x >= 2147483648.0f), 0i, nan);
}`,
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
  {
    // WGSL has no erf. Two branches, with f32 coefficients fitted for this helper (minimax by
    // Lawson's reweighted least squares, then rounded to f32):
    // - |x| < 0.921875: x + x·q(x²), q of degree 5 fitted to erf(x)/x − 1 (relative error
    //   1.6e-8). Adding the exact x last keeps q's rounding (|q| ≤ 0.13) out of the leading
    //   digits; x·P(x²) with P(0) = 2/√π ≈ 1.13 would round P at a coarser relative step than
    //   the result (2.5 ULP measured).
    // - |x| ≥ 0.921875: 1 − e^p(|x|), p of degree 6 fitted to log erfc on [0.921875, 4]
    //   (erfc's absolute error 1.5e-9); |x| is clamped to 4, past which erf rounds to ±1 in f32.
    // Why this form: polynomials need no division (WGSL's is within 2.5 ULP only, a rational
    // x·P(x²)/Q(x²) would pay it) and one exp; both branches are cheap enough to compute and
    // select, as vec4 lanes cannot branch.
    // Max error, evaluated in f32 on every f32 in [2^-20, 4.5] with a correctly rounded exp and
    // the multiply-adds fused or not: 1.44 ULP, 8.6e-8 absolute. A GPU's exp adds little: e^p ≤
    // erfc(0.921875) < 0.2, so each ULP of exp's error is at most ¼ ULP of the result.
    name: 'grng_erf',
    generic: true,
    code: (t) => `fn grng_erf(x: ${t}) -> ${t} {
  let a = abs(x);
  let s = a * a;
  let q = ((((-5.9908355e-4f * s + 4.9931766e-3f) * s - 2.6766613e-2f) * s + 1.1281816e-1f) * s
    - 3.7612495e-1f) * s + 1.2837915e-1f;
  let c = min(a, ${t}(4.0f));
  let p = (((((1.9473532e-4f * c - 3.0316093e-3f) * c + 2.2181435e-2f) * c - 1.0383899e-1f) * c
    - 6.3728565e-1f) * c - 1.1276156f) * c - 2.0989921e-4f;
  return select(sign(x) * (1.0f - exp(p)), x + x * q, a < ${t}(0.921875f));
}`,
  },
];

/** The generic helpers written for `type`, renamed `<name><suffix>`. */
const twins = (suffix: string, type: string): readonly Helper[] =>
  PRELUDE.filter((h) => h.generic).map((h) => ({
    name: `${h.name}${suffix}`,
    code: () => h.code(type).replace(`fn ${h.name}(`, `fn ${h.name}${suffix}(`),
  }));

/** `expr` with its generic helper calls turned into their `suffix` twins'. */
const twinCalls = (expr: string, suffix: string): string =>
  PRELUDE.filter((h) => h.generic).reduce(
    (text, h) => text.replaceAll(`${h.name}(`, `${h.name}${suffix}(`),
    expr,
  );

/** The f32 twins of the generic helpers (vectorized kernels call them on uniform scalars). */
export const SCALAR_TWINS = twins('_s', 'f32');

/**
 * The vec4 twins of the generic helpers, `<name>_v`: kernels over f32 (a matmul) call them in a
 * vector epilogue.
 */
export const VECTOR_TWINS = twins('_v', 'vec4<f32>');

/** `expr` with its generic helper calls turned into their vec4 twins'. */
export const vectorHelperCalls = (expr: string): string => twinCalls(expr, '_v');

/**
 * `expr` with its generic helper calls turned into their f32 twins' (an expression over scalars in
 * a vector kernel).
 */
export const scalarHelperCalls = (expr: string): string => twinCalls(expr, '_s');
