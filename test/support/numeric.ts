// Independent float64 numerics for checking autodiff: finite differences and dot products.
// Nothing here uses grng's autodiff.

/** Central differences of a scalar function: error h²·|f'''|/6 + ε·|f|/h per component. */
export function centralGradient(
  f: (x: Float64Array) => number,
  x: Float64Array,
  h: number,
): Float64Array {
  const g = new Float64Array(x.length);
  const y = Float64Array.from(x);
  for (let i = 0; i < x.length; i++) {
    y[i] = x[i] + h;
    const fp = f(y);
    y[i] = x[i] - h;
    const fm = f(y);
    y[i] = x[i];
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}

/** Central difference of a vector function along direction v: (F(x+hv) − F(x−hv)) / 2h. */
export function centralDirectional(
  F: (x: Float64Array) => Float64Array,
  x: Float64Array,
  v: Float64Array,
  h: number,
): Float64Array {
  const plus = F(x.map((xi, i) => xi + h * v[i]));
  const minus = F(x.map((xi, i) => xi - h * v[i]));
  return plus.map((p, i) => (p - minus[i]) / (2 * h));
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/**
 * Largest |a − b| relative to a scale that is at least 1 (absolute near zero, relative for large
 * values).
 */
export function maxScaledError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++)
    m = Math.max(m, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  return m;
}
