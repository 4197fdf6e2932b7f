// A tiny scalar reverse-mode tape for float64 references, independent of the DSL: every value is a
// dual number (value, tangent). Forward ops record nodes with their local partials, themselves
// dual numbers; the backward sweep in dual arithmetic then gives the gradient (values) and, when
// the inputs' tangents are v, the Hessian-vector product H·v (tangents): forward over reverse.
// Meant for small models written as plain loops (reference-transformer.ts); one node per scalar.

import { GrngError } from '../core/errors.js';

/** A node of the tape (its index). */
export type Scalar = number;

/** The gradient and H·v of one output with respect to every node. */
export interface Adjoints {
  /** ∂out/∂node. */
  gradient(node: Scalar): number;
  /** The tangent of ∂out/∂node: (∇²out·v) at the inputs when their tangents are v. */
  hvp(node: Scalar): number;
}

const NONE = -1;

// erf in float64 for gelu: below |x| = 3 the series erf(x) = (2/√π)·e^{−x²}·Σₙ 2ⁿx^{2n+1}/(2n+1)!!
// (all terms positive, so no cancellation); above it, erfc by its continued fraction
// erfc(x) = (e^{−x²}/√π)·1/(x + ½/(x + 1/(x + (3/2)/(x + …)))), evaluated bottom-up from depth 60
// (converged to ulps for x ≥ 3).
export function erf(x: number): number {
  const ax = Math.abs(x);
  let r: number;
  if (ax < 3) {
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 200 && term > 1e-17 * sum; n++) {
      term *= (2 * ax * ax) / (2 * n + 1);
      sum += term;
    }
    r = (2 / Math.sqrt(Math.PI)) * Math.exp(-ax * ax) * sum;
  } else {
    let tail = ax;
    for (let n = 60; n >= 1; n--) tail = ax + n / 2 / tail;
    r = 1 - Math.exp(-ax * ax) / Math.sqrt(Math.PI) / tail;
  }
  return x < 0 ? -r : r;
}

/** The standard normal density φ and distribution Φ. */
const density = (s: number) => Math.exp((-s * s) / 2) / Math.sqrt(2 * Math.PI);
const cdf = (s: number) => 0.5 * (1 + erf(s / Math.SQRT2));

export class Tape {
  private readonly value: number[] = [];
  private readonly tangent: number[] = [];
  // Up to two parents per node, each with its local partial (value, tangent).
  private readonly p0: number[] = [];
  private readonly p1: number[] = [];
  private readonly d0: number[] = [];
  private readonly t0: number[] = [];
  private readonly d1: number[] = [];
  private readonly t1: number[] = [];

  private node(v: number, t: number, p0 = NONE, d0 = 0, t0 = 0, p1 = NONE, d1 = 0, t1 = 0) {
    this.value.push(v);
    this.tangent.push(t);
    this.p0.push(p0);
    this.d0.push(d0);
    this.t0.push(t0);
    this.p1.push(p1);
    this.d1.push(d1);
    this.t1.push(t1);
    return this.value.length - 1;
  }

  /** A leaf the gradient is taken with respect to; `tangent` is its entry of v. */
  input(value: number, tangent = 0): Scalar {
    return this.node(value, tangent);
  }
  /** A leaf outside the differentiation (no tangent). */
  constant(value: number): Scalar {
    return this.node(value, 0);
  }
  val(a: Scalar): number {
    return this.value[a];
  }
  tan(a: Scalar): number {
    return this.tangent[a];
  }

  add(a: Scalar, b: Scalar): Scalar {
    const { value: v, tangent: t } = this;
    return this.node(v[a] + v[b], t[a] + t[b], a, 1, 0, b, 1, 0);
  }
  sub(a: Scalar, b: Scalar): Scalar {
    const { value: v, tangent: t } = this;
    return this.node(v[a] - v[b], t[a] - t[b], a, 1, 0, b, -1, 0);
  }
  mul(a: Scalar, b: Scalar): Scalar {
    const { value: v, tangent: t } = this;
    // ∂/∂a = b and ∂/∂b = a, as dual numbers.
    return this.node(v[a] * v[b], t[a] * v[b] + v[a] * t[b], a, v[b], t[b], b, v[a], t[a]);
  }
  /** c·a for a constant c. */
  scale(a: Scalar, c: number): Scalar {
    return this.node(c * this.value[a], c * this.tangent[a], a, c, 0);
  }
  div(a: Scalar, b: Scalar): Scalar {
    const { value: v, tangent: t } = this;
    const q = v[a] / v[b];
    const dq = (t[a] - q * t[b]) / v[b];
    // ∂q/∂a = 1/b (tangent −ḃ/b²); ∂q/∂b = −q/b (tangent −(q̇ b − q ḃ)/b²).
    const ib = 1 / v[b];
    return this.node(q, dq, a, ib, -t[b] * ib * ib, b, -q * ib, -(dq - q * t[b] * ib) * ib);
  }
  /** Σ of the nodes (a left-to-right chain of adds). */
  sum(xs: readonly Scalar[]): Scalar {
    let s = xs[0];
    for (let i = 1; i < xs.length; i++) s = this.add(s, xs[i]);
    return s;
  }
  /** Σ aᵢ·bᵢ. */
  dot(a: readonly Scalar[], b: readonly Scalar[]): Scalar {
    return this.sum(a.map((x, i) => this.mul(x, b[i])));
  }

  /** A unary op from f(x), f′(x) and f″(x). */
  private unary(a: Scalar, f: number, df: number, ddf: number): Scalar {
    const ta = this.tangent[a];
    return this.node(f, df * ta, a, df, ddf * ta);
  }
  exp(a: Scalar): Scalar {
    const e = Math.exp(this.value[a]);
    return this.unary(a, e, e, e);
  }
  log(a: Scalar): Scalar {
    const x = this.value[a];
    return this.unary(a, Math.log(x), 1 / x, -1 / (x * x));
  }
  tanh(a: Scalar): Scalar {
    const y = Math.tanh(this.value[a]);
    const dy = 1 - y * y;
    return this.unary(a, y, dy, -2 * y * dy);
  }
  sqrt(a: Scalar): Scalar {
    const r = Math.sqrt(this.value[a]);
    return this.unary(a, r, 0.5 / r, -0.25 / (r * r * r));
  }
  /** 1/√a. */
  rsqrt(a: Scalar): Scalar {
    const x = this.value[a];
    const r = 1 / Math.sqrt(x);
    return this.unary(a, r, (-0.5 * r) / x, (0.75 * r) / (x * x));
  }
  /** max(a, 0), whose derivative splits the tie at 0 (½, as max(s, 0) differentiates in grng). */
  relu(a: Scalar): Scalar {
    const x = this.value[a];
    return this.unary(a, x > 0 ? x : 0, x > 0 ? 1 : x === 0 ? 0.5 : 0, 0);
  }
  /** Exact gelu x·Φ(x). */
  gelu(a: Scalar): Scalar {
    const x = this.value[a];
    const phi = density(x);
    const big = cdf(x);
    return this.unary(a, x * big, big + x * phi, phi * (2 - x * x));
  }

  /** Reverse sweep from `out` in dual arithmetic. */
  backward(out: Scalar): Adjoints {
    const n = this.value.length;
    // Any other index would sweep nothing (or read past the tape) and give all-zero adjoints.
    if (!Number.isInteger(out) || out < 0 || out >= n)
      throw new GrngError(
        'Tape.backward',
        `out must be a node of this tape (an integer in [0, ${n})), got node ${String(out)}`,
      );
    const g = new Float64Array(n);
    const h = new Float64Array(n);
    g[out] = 1;
    const { p0, p1, d0, t0, d1, t1 } = this;
    for (let i = out; i >= 0; i--) {
      const gi = g[i];
      const hi = h[i];
      if (gi === 0 && hi === 0) continue;
      // (ā, ǡ) += (ḡ, ḣ)·(d, ḋ) = (ḡ d, ḣ d + ḡ ḋ).
      if (p0[i] !== NONE) {
        g[p0[i]] += gi * d0[i];
        h[p0[i]] += hi * d0[i] + gi * t0[i];
      }
      if (p1[i] !== NONE) {
        g[p1[i]] += gi * d1[i];
        h[p1[i]] += hi * d1[i] + gi * t1[i];
      }
    }
    return { gradient: (a) => g[a], hvp: (a) => h[a] };
  }
}
