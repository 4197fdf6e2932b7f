// Independent float64 references for RING (docs/algorithms.md §3, §8.2) and RENG (§4, §8.3),
// written from docs/algorithms.md in plain dense loops over Float64Arrays, on top of the dense
// linear algebra of ../curvature/reference.ts (Kronecker products, Gaussian elimination, Jacobi
// eigenvalues, the tanh-MLP backprop). Nothing here imports dsl/, runtime/, compiler/ or
// optimizers/: the preconditioner is a dense Kronecker solve (never the factored form), λ_max comes
// from Jacobi (never power iteration), the Hessian from finite differences of hand-written
// gradients (never autodiff).
import {
  addMat,
  at,
  eigenvalues,
  eye,
  inverse,
  kron,
  lambdaMax,
  mat,
  matmul,
  mlpBackprop,
  scaleMat,
  tanhMlpBackward,
  tanhMlpForward,
  secondMoment,
  solve,
  subMat,
  transpose,
  unvecCol,
  vecCol,
  withOnesColumn,
  type Mat,
} from '../curvature/reference.js';

/**
 * The degenerate-factor guard: λ_max ≤ 1e-30 → the damped factor is I. (docs/algorithms.md §3.3
 * [inferred] suggests 1e-8·I; grng uses I so that RENG's nonzero G_G on a zero factor stays finite
 * — for RING both give U = 0, since a zero factor means G = 0.)
 */
export const DEGENERATE = 1e-30;

/**
 * The spectrally damped factor F + max(c·λ_max(F), floor)·I (§3.3), λ_max by Jacobi; the degenerate
 * guard included.
 */
export function spectrallyDamped(f: Mat, coef: number, floor = 0): Mat {
  const top = lambdaMax(f);
  return top <= DEGENERATE ? eye(f.rows) : addMat(f, eye(f.rows), Math.max(coef * top, floor));
}

/** tr F/n, kept ≥ 1e-30. */
export function meanEigenvalue(f: Mat): number {
  let t = 0;
  for (let i = 0; i < f.rows; i++) t += at(f, i, i);
  return Math.max(t / f.rows, 1e-30);
}

/**
 * The π-rule's π = √((tr Λ/d_in)/(tr Γ/d_out)), each mean eigenvalue kept ≥ 1e-30 so that π stays
 * finite for an all-zero factor.
 */
export function piRule(lambda: Mat, gamma: Mat): number {
  return Math.sqrt(meanEigenvalue(lambda) / meanEigenvalue(gamma));
}

/**
 * The π-rule's factored Tikhonov damping λ (K-FAC §6.4, RING's 'grad_norm' §3.3): the inverses of
 * Λ + π√λ·I and Γ + (√λ/π)·I, or I for both when either factor is degenerate (tr F/n ≤ 1e-30:
 * with one factor zero, Λ ⊗ Γ = 0 and the split means nothing).
 */
export function piRuleInverses(
  lambda: Mat,
  gamma: Mat,
  damping: number,
): { lambdaInv: Mat; gammaInv: Mat } {
  const degenerate = Math.min(meanEigenvalue(lambda), meanEigenvalue(gamma)) <= DEGENERATE;
  const pi = piRule(lambda, gamma);
  const root = Math.sqrt(damping);
  const shifted = (f: Mat, shift: number) =>
    degenerate ? eye(f.rows) : inverse(addMat(f, eye(f.rows), shift));
  return { lambdaInv: shifted(lambda, pi * root), gammaInv: shifted(gamma, root / pi) };
}

/**
 * vec⁻¹((Λ ⊗ Γ)⁻¹ vec G), column-major vec (§2), by Gaussian elimination on the dense Kronecker
 * product.
 */
export function kroneckerSolve(lambda: Mat, gamma: Mat, G: Mat): Mat {
  return unvecCol(solve(kron(lambda, gamma), vecCol(G)), G.rows, G.cols);
}

/** vec⁻¹((Λ ⊗ Γ) vec X), by the dense Kronecker product. */
export function kroneckerApply(lambda: Mat, gamma: Mat, x: Mat): Mat {
  const k = kron(lambda, gamma);
  const v = vecCol(x);
  const out = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) {
    let s = 0;
    for (let j = 0; j < v.length; j++) s += at(k, i, j) * v[j];
    out[i] = s;
  }
  return unvecCol(out, x.rows, x.cols);
}

/**
 * RING's direction U = vec⁻¹((Λ_d ⊗ Γ_d)⁻¹ vec G) with Λ_d, Γ_d spectrally damped by `coef` (§3.3)
 * over the absolute floor λ₀ = `floor`, split as π√λ₀ on Λ and √λ₀/π on Γ with
 * π = √((tr Λ/d_in)/(tr Γ/d_out)).
 */
export function ringDirection(lambda: Mat, gamma: Mat, G: Mat, coef: number, floor = 0): Mat {
  const pi = piRule(lambda, gamma);
  const root = Math.sqrt(floor);
  return kroneckerSolve(
    spectrallyDamped(lambda, coef, pi * root),
    spectrallyDamped(gamma, coef, root / pi),
    G,
  );
}

/** λ₂/λ₁ of a symmetric PSD matrix (0 when d = 1 or λ₁ = 0): how fast power iteration converges. */
export function gapRatio(f: Mat): number {
  const ev = eigenvalues(f);
  const n = ev.length;
  return n < 2 || ev[n - 1] <= 0 ? 0 : Math.max(0, ev[n - 2]) / ev[n - 1];
}

/** [W | b] (d_out × (d_in + 1)) from a weight matrix and an optional bias. */
export function withBias(w: Mat, b?: ArrayLike<number>): Mat {
  if (b === undefined) return w;
  const out = mat(w.rows, w.cols + 1);
  for (let o = 0; o < w.rows; o++) {
    for (let i = 0; i < w.cols; i++) out.data[o * out.cols + i] = at(w, o, i);
    out.data[o * out.cols + w.cols] = b[o];
  }
  return out;
}

export interface DenseLayer {
  readonly w: Mat;
  readonly b?: Float64Array;
}

/**
 * RING steps (§3.3, §3.6) on a tanh MLP with softmax cross-entropy, straight from
 * docs/algorithms.md: per step and layer, a and g by backprop (empirical Fisher: the batch's
 * labels), Λ̂ = aᵀa/B, Γ̂ = gᵀg/B (statDecay 0, covEvery 1: the factors are this batch's
 * statistics), G = gᵀa/B, U = (Λ_d ⊗ Γ_d)⁻¹vec G by a dense solve with λ_max by Jacobi
 * (inverseEvery 1), v ← μv + U, W̃ ← (1 − ηλ_wd)W̃ − ηv.
 */
export function ringStepsReference(
  layers: readonly DenseLayer[],
  batches: readonly { x: Mat; labels: ArrayLike<number> }[],
  h: { lr: number; momentum: number; weightDecay: number; coef: number; floor?: number },
): { layers: DenseLayer[]; U: Mat[][]; lambda: Mat[][]; gamma: Mat[][] } {
  let current = layers.map((l) => ({ w: l.w, b: l.b }));
  let velocity: Mat[] | undefined;
  const U: Mat[][] = [];
  const lambdas: Mat[][] = [];
  const gammas: Mat[][] = [];
  for (const { x, labels } of batches) {
    const { a, g } = mlpBackprop(current, x, labels);
    const B = x.rows;
    const lambda = a.map(secondMoment);
    const gamma = g.map(secondMoment);
    const u = current.map((_, i) =>
      ringDirection(
        lambda[i],
        gamma[i],
        scaleMat(matmul(transpose(g[i]), a[i]), 1 / B),
        h.coef,
        h.floor,
      ),
    );
    velocity = u.map((ui, i) =>
      velocity === undefined ? ui : addMat(scaleMat(velocity[i], h.momentum), ui),
    );
    const v = velocity;
    current = current.map((l, i) => {
      const next = addMat(scaleMat(withBias(l.w, l.b), 1 - h.lr * h.weightDecay), v[i], -h.lr);
      const w = mat(l.w.rows, l.w.cols);
      for (let o = 0; o < l.w.rows; o++)
        for (let k = 0; k < l.w.cols; k++) w.data[o * l.w.cols + k] = at(next, o, k);
      return {
        w,
        b:
          l.b === undefined
            ? undefined
            : Float64Array.from({ length: l.w.rows }, (_, o) => at(next, o, l.w.cols)),
      };
    });
    U.push(u);
    lambdas.push(lambda);
    gammas.push(gamma);
  }
  return { layers: current, U, lambda: lambdas, gamma: gammas };
}

// ---------------------------------------------------------------------------------------------
// Flat-parameter objectives for RENG (§4): the mean cross-entropy of a network as a function of
// one parameter vector θ, with its gradient by hand-written backprop.

/** A scalar objective with its exact gradient. */
export type Objective = (theta: Float64Array) => { loss: number; grad: Float64Array };

/**
 * Layer shapes of an MLP for flattening: each layer's W (out × in, row-major), then b when present.
 */
export interface MlpShape {
  readonly out: number;
  readonly in: number;
  readonly bias: boolean;
}

export const mlpSize = (shapes: readonly MlpShape[]): number =>
  shapes.reduce((n, s) => n + s.out * s.in + (s.bias ? s.out : 0), 0);

export function unflattenMlp(shapes: readonly MlpShape[], theta: ArrayLike<number>): DenseLayer[] {
  let k = 0;
  return shapes.map((s) => {
    const w = mat(s.out, s.in, Array.prototype.slice.call(theta, k, k + s.out * s.in) as number[]);
    k += s.out * s.in;
    const b = s.bias
      ? Float64Array.from(Array.prototype.slice.call(theta, k, k + s.out) as number[])
      : undefined;
    if (s.bias) k += s.out;
    return { w, b };
  });
}

/**
 * The tanh MLP's mean cross-entropy over (x, labels) as a function of its flattened parameters
 * (mlpBackprop).
 */
export function mlpObjective(
  shapes: readonly MlpShape[],
  x: Mat,
  labels: ArrayLike<number>,
): Objective {
  return (theta) => {
    const layers = unflattenMlp(shapes, theta);
    const r = mlpBackprop(layers, x, labels);
    const grad = new Float64Array(theta.length);
    let k = 0;
    layers.forEach((l, i) => {
      grad.set(r.gradW[i].data, k);
      k += l.w.data.length;
      if (l.b !== undefined) {
        grad.set(r.gradB[i] as Float64Array, k);
        k += l.b.length;
      }
    });
    return { loss: r.loss, grad };
  };
}

/**
 * A two-layer tanh network with a per-unit gain outside the dense layers (a LayerNorm-like scale):
 * logits = W₁(γ ⊙ tanh(W₀x + b₀)) + b₁, mean cross-entropy. θ = [W₀ (h×d, row-major), b₀, γ, W₁
 * (C×h), b₁].
 */
export function gainMlpObjective(
  dIn: number,
  hidden: number,
  classes: number,
  x: Mat,
  labels: ArrayLike<number>,
): Objective {
  const B = x.rows;
  const offsets = {
    w0: 0,
    b0: hidden * dIn,
    gain: hidden * dIn + hidden,
    w1: hidden * dIn + 2 * hidden,
    b1: hidden * dIn + 2 * hidden + classes * hidden,
  };
  return (theta) => {
    const grad = new Float64Array(theta.length);
    const w0 = (o: number, i: number) => theta[offsets.w0 + o * dIn + i];
    const w1 = (c: number, j: number) => theta[offsets.w1 + c * hidden + j];
    let loss = 0;
    for (let n = 0; n < B; n++) {
      const t = new Float64Array(hidden);
      const hv = new Float64Array(hidden);
      for (let j = 0; j < hidden; j++) {
        let s = theta[offsets.b0 + j];
        for (let i = 0; i < dIn; i++) s += w0(j, i) * at(x, n, i);
        t[j] = Math.tanh(s);
        hv[j] = theta[offsets.gain + j] * t[j];
      }
      const logits = Array.from({ length: classes }, (_, c) => {
        let s = theta[offsets.b1 + c];
        for (let j = 0; j < hidden; j++) s += w1(c, j) * hv[j];
        return s;
      });
      const z = Math.max(...logits);
      const e = logits.map((v) => Math.exp(v - z));
      const total = e.reduce((u, v) => u + v, 0);
      loss += (Math.log(total) + z - logits[labels[n]]) / B;
      // Backward, everything divided by B (mean loss).
      const d1 = e.map((v, c) => (v / total - (labels[n] === c ? 1 : 0)) / B);
      const dh = new Float64Array(hidden);
      for (let c = 0; c < classes; c++) {
        grad[offsets.b1 + c] += d1[c];
        for (let j = 0; j < hidden; j++) {
          grad[offsets.w1 + c * hidden + j] += d1[c] * hv[j];
          dh[j] += d1[c] * w1(c, j);
        }
      }
      for (let j = 0; j < hidden; j++) {
        grad[offsets.gain + j] += dh[j] * t[j];
        const ds = dh[j] * theta[offsets.gain + j] * (1 - t[j] * t[j]);
        grad[offsets.b0 + j] += ds;
        for (let i = 0; i < dIn; i++) grad[offsets.w0 + j * dIn + i] += ds * at(x, n, i);
      }
    }
    return { loss, grad };
  };
}

/** Offsets of the gain network's blocks in θ (see gainMlpObjective). */
export const gainMlpLayout = (dIn: number, hidden: number, classes: number) => ({
  w0: [0, hidden * dIn],
  b0: [hidden * dIn, hidden * dIn + hidden],
  gain: [hidden * dIn + hidden, hidden * dIn + 2 * hidden],
  w1: [hidden * dIn + 2 * hidden, hidden * dIn + 2 * hidden + classes * hidden],
  b1: [
    hidden * dIn + 2 * hidden + classes * hidden,
    hidden * dIn + 2 * hidden + classes * hidden + classes,
  ],
});

/**
 * The dense Hessian by the five-point stencil on the exact gradient, column j =
 * (−∇L(θ+2he_j) + 8∇L(θ+he_j) − 8∇L(θ−he_j) + ∇L(θ−2he_j))/(12h), symmetrized.
 * Error per entry: h⁴·|∂⁵L|/30 (truncation) + ≈1.5·ε·max|∇L|/h (rounding of the differences).
 */
export function hessianByDifferences(objective: Objective, theta: Float64Array, h: number): Mat {
  const n = theta.length;
  const H = mat(n, n);
  const at = (j: number, step: number) => {
    const t = Float64Array.from(theta);
    t[j] += step;
    return objective(t).grad;
  };
  for (let j = 0; j < n; j++) {
    const [p2, p1, m1, m2] = [at(j, 2 * h), at(j, h), at(j, -h), at(j, -2 * h)];
    for (let i = 0; i < n; i++)
      H.data[i * n + j] = (-p2[i] + 8 * p1[i] - 8 * m1[i] + m2[i]) / (12 * h);
  }
  return scaleMat(addMat(H, transpose(H)), 0.5);
}

/**
 * ∇L_G = ∇L + ρ·H∇L (§4.1) with the dense Hessian H; `mask` (1 = counted) restricts the norm ½‖∇L‖²
 * to some parameters.
 */
export function regularizedGradient(
  objective: Objective,
  theta: Float64Array,
  rho: number,
  H: Mat,
  mask?: ArrayLike<number>,
): Float64Array {
  const g = objective(theta).grad;
  const v = mask === undefined ? g : g.map((x, i) => x * mask[i]);
  const out = new Float64Array(g.length);
  for (let i = 0; i < g.length; i++) {
    let s = 0;
    for (let j = 0; j < g.length; j++) s += at(H, i, j) * v[j];
    out[i] = g[i] + rho * s;
  }
  return out;
}

/** L_G(θ) = L(θ) + (ρ/2)‖∇L(θ)‖² (§4.1). */
export function penalizedLoss(objective: Objective, theta: Float64Array, rho: number): number {
  const { loss, grad } = objective(theta);
  return loss + 0.5 * rho * grad.reduce((s, v) => s + v * v, 0);
}

/**
 * Forward F-GR (§4.2): ∇L + (ρ/ε)(∇L(θ + ε∇L) − ∇L); central: ∇L + (ρ/2ε)(∇L(θ + ε∇L) − ∇L(θ −
 * ε∇L)).
 */
export function finiteDifferenceGradient(
  objective: Objective,
  theta: Float64Array,
  rho: number,
  eps: number,
  central: boolean,
): Float64Array {
  const g = objective(theta).grad;
  const plus = objective(theta.map((t, i) => t + eps * g[i])).grad;
  if (!central) return g.map((v, i) => v + (rho / eps) * (plus[i] - v));
  const minus = objective(theta.map((t, i) => t - eps * g[i])).grad;
  return g.map((v, i) => v + (rho / (2 * eps)) * (plus[i] - minus[i]));
}

/**
 * The tanh MLP of mlpBackprop with the mean squared-error loss L = (1/B)Σ_n ½‖f(x_n) − y_n‖²
 * instead of cross-entropy: per layer a (ones column with a bias), per-sample g_n = ∂ℓ_n/∂s_n
 * (output layer: f(x_n) − y_n), and G = gᵀa/B.
 */
export function mlpBackpropMse(
  layers: readonly DenseLayer[],
  x: Mat,
  y: Mat,
): { a: Mat[]; g: Mat[]; G: Mat[] } {
  const B = x.rows;
  const { inputs, pre, out } = tanhMlpForward(layers, x);
  const g = tanhMlpBackward(layers, pre, subMat(out, y));
  const a = layers.map((l, i) => (l.b === undefined ? inputs[i] : withOnesColumn(inputs[i])));
  return { a, g, G: a.map((ai, i) => scaleMat(matmul(transpose(g[i]), ai), 1 / B)) };
}
