// Independent float64 reference for R-Kalman (docs/algorithms.md §5): plain dense linear algebra on
// row-major Float64Arrays, written from docs/algorithms.md, sharing nothing with
// optimizers/rkalman.ts or the DSL (no Cholesky sweeps, no autodiff). It gives the filter's three
// update forms (covariance, information, Joseph), the diagonal variant, the regularized online NGD
// recursion of §5.3, the closed-form Bayesian linear regression posterior, and the exact
// observation quantities (H, R, e, gradients, Fisher) of a linear softmax classifier and of linear
// regression. Eigenvalues come from the Jacobi solver of the other float64 references
// (test/curvature/reference.ts).
import { mat, symmetricEigen } from '../curvature/reference.js';

/**
 * The guard added to R's diagonal for adapter A (docs/algorithms.md §5.2: "add 1e-12·I as a
 * guard").
 */
export const JITTER = 1e-12;

// ---- dense linear algebra (row-major) -------------------------------------------------------

/** [n, k] × [k, m]. */
export function matmul(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  n: number,
  k: number,
  m: number,
): Float64Array {
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < k; p++) {
      const aip = a[i * k + p];
      if (aip === 0) continue;
      for (let j = 0; j < m; j++) out[i * m + j] += aip * b[p * m + j];
    }
  }
  return out;
}

export function transpose(a: ArrayLike<number>, n: number, m: number): Float64Array {
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) out[j * n + i] = a[i * m + j];
  return out;
}

export function eye(n: number, scale = 1): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) out[i * n + i] = scale;
  return out;
}

export const add = (a: ArrayLike<number>, b: ArrayLike<number>): Float64Array =>
  Float64Array.from(a, (v, i) => v + b[i]);
export const sub = (a: ArrayLike<number>, b: ArrayLike<number>): Float64Array =>
  Float64Array.from(a, (v, i) => v - b[i]);
export const scale = (a: ArrayLike<number>, s: number): Float64Array =>
  Float64Array.from(a, (v) => v * s);
export const norm = (a: ArrayLike<number>): number =>
  Math.sqrt(Array.from(a).reduce((s, v) => s + v * v, 0));
export const diagonal = (a: ArrayLike<number>, n: number): Float64Array =>
  Float64Array.from({ length: n }, (_, i) => a[i * n + i]);
export const diagMatrix = (p: ArrayLike<number>): Float64Array => {
  const out = new Float64Array(p.length * p.length);
  for (let i = 0; i < p.length; i++) out[i * p.length + i] = p[i];
  return out;
};
export const symmetrize = (a: ArrayLike<number>, n: number): Float64Array =>
  scale(add(a, transpose(a, n, n)), 0.5);

/** rel(x, y) = ‖x − y‖ / max(‖y‖, 1e-300) (docs/algorithms.md §8). */
export function rel(x: ArrayLike<number>, y: ArrayLike<number>): number {
  return norm(sub(x, y)) / Math.max(norm(y), 1e-300);
}

/** X with A X = B ([n, n] × [n, k]) by Gaussian elimination with partial pivoting. */
export function solve(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  n: number,
  k: number,
): Float64Array {
  const m = Float64Array.from(a);
  const x = Float64Array.from(b);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++)
      if (Math.abs(m[r * n + col]) > Math.abs(m[pivot * n + col])) pivot = r;
    if (m[pivot * n + col] === 0) throw new Error('solve: singular matrix');
    if (pivot !== col) {
      for (let j = 0; j < n; j++)
        [m[col * n + j], m[pivot * n + j]] = [m[pivot * n + j], m[col * n + j]];
      for (let j = 0; j < k; j++)
        [x[col * k + j], x[pivot * k + j]] = [x[pivot * k + j], x[col * k + j]];
    }
    for (let r = col + 1; r < n; r++) {
      const f = m[r * n + col] / m[col * n + col];
      if (f === 0) continue;
      for (let j = col; j < n; j++) m[r * n + j] -= f * m[col * n + j];
      for (let j = 0; j < k; j++) x[r * k + j] -= f * x[col * k + j];
    }
  }
  for (let col = n - 1; col >= 0; col--) {
    for (let j = 0; j < k; j++) {
      let s = x[col * k + j];
      for (let p = col + 1; p < n; p++) s -= m[col * n + p] * x[p * k + j];
      x[col * k + j] = s / m[col * n + col];
    }
  }
  return x;
}

export const inverse = (a: ArrayLike<number>, n: number): Float64Array => solve(a, eye(n), n, n);

/**
 * Eigenvalues of a symmetric matrix (the Jacobi solver of test/curvature/reference.ts), ascending.
 */
export function symmetricEigenvalues(a: ArrayLike<number>, n: number): Float64Array {
  return Float64Array.from(symmetricEigen(mat(n, n, symmetrize(a, n))).values).sort();
}

// ---- the filter (docs/algorithms.md §5.2)
// -------------------------------------------------------------------

export interface Observation {
  /** H [d, n]: rows of ∂h/∂θ. */
  readonly h: Float64Array;
  /** The innovation e [d]. */
  readonly e: Float64Array;
  /** The observation noise R [d, d] as the filter uses it. */
  readonly r: Float64Array;
  readonly d: number;
}

export interface FullStep {
  /** P_{k|k−1} = P/β, after the pseudo-observation of precision rGr (when rGr > 0). */
  readonly prior: Float64Array;
  /** Covariance form P' − K H P'. */
  readonly covariance: Float64Array;
  /** Information form (β P⁻¹ + r I + HᵀR⁻¹H)⁻¹. */
  readonly information: Float64Array;
  /** Joseph form (I − K H) P' (I − K H)ᵀ + K R Kᵀ. */
  readonly joseph: Float64Array;
  /** μ + α K e (covariance-form gain). */
  readonly mu: Float64Array;
  /** μ + α P_info Hᵀ R⁻¹ e (information-form gain). */
  readonly muInformation: Float64Array;
}

/**
 * One full-covariance R-Kalman step: predict P/β, pseudo-observation of precision rGr·I, then the
 * observation.
 */
export function kalmanFull(
  mu: ArrayLike<number>,
  p: ArrayLike<number>,
  n: number,
  obs: Observation,
  beta: number,
  rGr: number,
  alpha = 1,
): FullStep {
  const { h, e, r, d } = obs;
  const predicted = scale(p, 1 / beta);
  const prior = rGr > 0 ? inverse(add(inverse(predicted, n), eye(n, rGr)), n) : predicted;
  const ht = transpose(h, d, n);
  const pht = matmul(prior, ht, n, n, d); // P' Hᵀ
  const s = add(matmul(h, pht, d, n, d), r);
  const k = transpose(solve(s, transpose(pht, n, d), d, n), d, n); // P' Hᵀ S⁻¹ (S symmetric)
  const kh = matmul(k, h, n, d, n);
  const covariance = sub(prior, matmul(kh, prior, n, n, n));
  const rInvH = solve(r, h, d, n);
  const information = inverse(
    add(add(scale(inverse(p, n), beta), eye(n, rGr)), matmul(ht, rInvH, n, d, n)),
    n,
  );
  const iMinusKh = sub(eye(n), kh);
  const joseph = add(
    matmul(matmul(iMinusKh, prior, n, n, n), transpose(iMinusKh, n, n), n, n, n),
    matmul(matmul(k, r, n, d, d), transpose(k, n, d), n, d, n),
  );
  const ke = matmul(k, e, n, d, 1);
  const infoGain = matmul(information, matmul(ht, solve(r, e, d, 1), n, d, 1), n, n, 1);
  return {
    prior,
    covariance,
    information,
    joseph,
    mu: Float64Array.from(mu, (v, i) => v + alpha * ke[i]),
    muInformation: Float64Array.from(mu, (v, i) => v + alpha * infoGain[i]),
  };
}

/**
 * The diagonal variant (docs/algorithms.md §5.4): p' = 1/(β/p + r), the mean by the full gain with
 * P' = diag(p'), p ← diag(P' − K H P').
 */
export function kalmanDiagonal(
  mu: ArrayLike<number>,
  p: ArrayLike<number>,
  obs: Observation,
  beta: number,
  rGr: number,
): { prior: Float64Array; p: Float64Array; mu: Float64Array } {
  const n = p.length;
  const prior = Float64Array.from(p, (v) => 1 / (beta / v + rGr));
  const full = kalmanFull(mu, diagMatrix(prior), n, obs, 1, 0);
  return { prior, p: diagonal(full.covariance, n), mu: full.mu };
}

// ---- models -------------------------------------------------------------------------------------

/**
 * A linear softmax classifier z_n = W x_n + b (C classes, d features) with θ flattened as the
 * filter flattens its parameter tree {b, w} (objects by sorted key): θ = [b (C), W row-major
 * (C×d)].
 */
export class SoftmaxLinear {
  constructor(
    readonly classes: number,
    readonly features: number,
  ) {}

  get size(): number {
    return this.classes * (1 + this.features);
  }

  /** Per-sample probabilities [m, C]. */
  probs(theta: ArrayLike<number>, x: ArrayLike<number>, m: number): Float64Array {
    const { classes: C, features: d } = this;
    const out = new Float64Array(m * C);
    for (let n = 0; n < m; n++) {
      const z = Array.from({ length: C }, (_, c) => {
        let s = theta[c];
        for (let j = 0; j < d; j++) s += theta[C + c * d + j] * x[n * d + j];
        return s;
      });
      const top = Math.max(...z);
      const w = z.map((v) => Math.exp(v - top));
      const total = w.reduce((a, v) => a + v, 0);
      w.forEach((v, c) => (out[n * C + c] = v / total));
    }
    return out;
  }

  /** ∂z_n/∂θ [C, size]: ∂z_c/∂b_c = 1, ∂z_c/∂W_cj = x_nj. */
  jacobian(x: ArrayLike<number>, n: number): Float64Array {
    const { classes: C, features: d } = this;
    const out = new Float64Array(C * this.size);
    for (let c = 0; c < C; c++) {
      out[c * this.size + c] = 1;
      for (let j = 0; j < d; j++) out[c * this.size + C + c * d + j] = x[n * d + j];
    }
    return out;
  }

  /** ∇ℓ_n = J_nᵀ(p_n − onehot(y_n)) per sample [m, size], and their mean ḡ. */
  gradients(
    theta: ArrayLike<number>,
    x: ArrayLike<number>,
    y: ArrayLike<number>,
    m: number,
  ): { perSample: Float64Array; mean: Float64Array } {
    const { classes: C } = this;
    const probs = this.probs(theta, x, m);
    const perSample = new Float64Array(m * this.size);
    for (let n = 0; n < m; n++) {
      const residual = Float64Array.from(
        { length: C },
        (_, c) => probs[n * C + c] - (y[n] === c ? 1 : 0),
      );
      perSample.set(matmul(residual, this.jacobian(x, n), 1, C, this.size), n * this.size);
    }
    const mean = new Float64Array(this.size);
    for (let n = 0; n < m; n++)
      for (let i = 0; i < this.size; i++) mean[i] += perSample[n * this.size + i] / m;
    return { perSample, mean };
  }

  /** Σ_n J_nᵀ (diag p_n − p_n p_nᵀ) J_n [size, size]: the summed true Fisher (GGN). */
  fisher(theta: ArrayLike<number>, x: ArrayLike<number>, m: number): Float64Array {
    const { classes: C } = this;
    const probs = this.probs(theta, x, m);
    let total: Float64Array = new Float64Array(this.size * this.size);
    for (let n = 0; n < m; n++) {
      const j = this.jacobian(x, n);
      const mn = new Float64Array(C * C);
      for (let a = 0; a < C; a++)
        for (let b = 0; b < C; b++)
          mn[a * C + b] = (a === b ? probs[n * C + a] : 0) - probs[n * C + a] * probs[n * C + b];
      total = add(
        total,
        matmul(transpose(j, C, this.size), matmul(mn, j, C, C, this.size), this.size, C, this.size),
      );
    }
    return total;
  }

  /**
   * Adapter A (docs/algorithms.md §5.2): per sample the first C − 1 one-hot coordinates, H_n =
   * M_n[:C−1, :] J_n, R_n = diag(p') − p'p'ᵀ (+ JITTER·I), e_n = y' − p', stacked sample-major.
   */
  softmaxObservation(
    theta: ArrayLike<number>,
    x: ArrayLike<number>,
    y: ArrayLike<number>,
    m: number,
  ): Observation {
    const { classes: C, size } = this;
    const k = C - 1;
    const d = m * k;
    const probs = this.probs(theta, x, m);
    const h = new Float64Array(d * size);
    const e = new Float64Array(d);
    const r = eye(d, JITTER);
    for (let n = 0; n < m; n++) {
      const j = this.jacobian(x, n);
      for (let a = 0; a < k; a++) {
        const pa = probs[n * C + a];
        for (let b = 0; b < C; b++) {
          const mab = (a === b ? pa : 0) - pa * probs[n * C + b];
          for (let i = 0; i < size; i++) h[(n * k + a) * size + i] += mab * j[b * size + i];
        }
        e[n * k + a] = (y[n] === a ? 1 : 0) - pa;
        for (let b = 0; b < k; b++)
          r[(n * k + a) * d + n * k + b] += (a === b ? pa : 0) - pa * probs[n * C + b];
      }
    }
    return { h, e, r, d };
  }

  /**
   * Adapter B (docs/algorithms.md §5.2): ŷ_n = p(y_n|x_n) against 1, rows ∂ŷ_n/∂θ = p_y (e_y −
   * p_n)ᵀ J_n, R = σ_R² I.
   */
  scalarObservation(
    theta: ArrayLike<number>,
    x: ArrayLike<number>,
    y: ArrayLike<number>,
    m: number,
    obsNoise: number,
  ): Observation {
    const { classes: C, size } = this;
    const probs = this.probs(theta, x, m);
    const h = new Float64Array(m * size);
    const e = new Float64Array(m);
    for (let n = 0; n < m; n++) {
      const py = probs[n * C + y[n]];
      const dz = Float64Array.from(
        { length: C },
        (_, c) => py * ((c === y[n] ? 1 : 0) - probs[n * C + c]),
      );
      h.set(matmul(dz, this.jacobian(x, n), 1, C, size), n * size);
      e[n] = 1 - py;
    }
    return { h, e, r: eye(m, obsNoise), d: m };
  }
}

/**
 * Linear regression outputs h_{n,c} = Σ_j W_cj x_nj (C outputs, d features, θ = W row-major) with
 * R = σ_R² I (adapter C): H has rows x_nᵀ placed at output c's block, stacked sample-major.
 */
export function linearObservation(
  theta: ArrayLike<number>,
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  m: number,
  d: number,
  outputs: number,
  obsNoise: number,
): Observation {
  const size = outputs * d;
  const rows = m * outputs;
  const h = new Float64Array(rows * size);
  const e = new Float64Array(rows);
  for (let n = 0; n < m; n++) {
    for (let c = 0; c < outputs; c++) {
      let z = 0;
      for (let j = 0; j < d; j++) {
        h[(n * outputs + c) * size + c * d + j] = x[n * d + j];
        z += theta[c * d + j] * x[n * d + j];
      }
      e[n * outputs + c] = y[n * outputs + c] - z;
    }
  }
  return { h, e, r: eye(rows, obsNoise), d: rows };
}

/** Exact Bayesian linear regression (one output): P = (P₀⁻¹ + XᵀX/σ²)⁻¹, μ = P(P₀⁻¹μ₀ + XᵀY/σ²). */
export function bayesianLinearRegression(
  mu0: ArrayLike<number>,
  p0: ArrayLike<number>,
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  count: number,
  d: number,
  obsNoise: number,
): { mu: Float64Array; p: Float64Array } {
  const p0Inv = inverse(p0, d);
  const xt = transpose(x, count, d);
  const p = inverse(add(p0Inv, scale(matmul(xt, x, d, count, d), 1 / obsNoise)), d);
  const mu = matmul(
    p,
    add(matmul(p0Inv, mu0, d, d, 1), scale(matmul(xt, y, d, count, 1), 1 / obsNoise)),
    d,
    d,
    1,
  );
  return { mu, p };
}

/**
 * Regularized online NGD (docs/algorithms.md §5.3): J_k = β J_{k−1} + η(F̄_k + ρ‖ḡ_k‖² I), μ_k =
 * μ_{k−1} − η J_k⁻¹ ḡ_k, J_0 = (η/(m σ₀)) I, η = 1 − β, with F̄ the minibatch mean true Fisher and
 * ḡ the mean CE gradient at μ_{k−1}. Returns (μ_k, P_k = (η/m) J_k⁻¹) after each batch.
 */
export function regularizedNgd(
  model: SoftmaxLinear,
  theta0: ArrayLike<number>,
  sigma0: number,
  beta: number,
  rho: number,
  batches: readonly { readonly x: Float64Array; readonly y: Int32Array }[],
): { mu: Float64Array; p: Float64Array }[] {
  const n = model.size;
  const eta = 1 - beta;
  const m = batches[0].y.length;
  let j: Float64Array = eye(n, eta / (m * sigma0));
  let theta = Float64Array.from(theta0);
  return batches.map(({ x, y }) => {
    const g = model.gradients(theta, x, y, m).mean;
    const fbar = scale(model.fisher(theta, x, m), 1 / m);
    j = add(scale(j, beta), scale(add(fbar, eye(n, rho * norm(g) ** 2)), eta));
    const step = solve(j, g, n, 1);
    theta = Float64Array.from(theta, (v, i) => v - eta * step[i]);
    return { mu: theta, p: scale(inverse(j, n), eta / m) };
  });
}
