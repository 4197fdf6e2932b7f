// Independent float64 linear algebra for the curvature tests, written from docs/algorithms.md §2,
// §3.4, §3.5 and §8.1–8.2: plain dense loops over row-major Float64Arrays (matrix products,
// Kronecker products, column-major vec, Gaussian-elimination solves, Gauss–Jordan inverses,
// symmetric eigenvalues by cyclic Jacobi rotations). Nothing here imports dsl/, runtime/ or
// compiler/.

/** A dense matrix, row-major: entry (i, j) is data[i·cols + j]. */
export interface Mat {
  readonly rows: number;
  readonly cols: number;
  readonly data: Float64Array;
}

/** Machine epsilon of float64, 2^-52 (docs/algorithms.md's ε_mach). */
export const EPS = Number.EPSILON;
/** Machine epsilon of float32, 2^-23. */
export const EPS32 = 2 ** -23;

export function mat(rows: number, cols: number, data?: ArrayLike<number>): Mat {
  const out = new Float64Array(rows * cols);
  if (data !== undefined) {
    if (data.length !== rows * cols)
      throw new Error(`reference: ${data.length} values for a ${rows}×${cols} matrix`);
    out.set(data);
  }
  return { rows, cols, data: out };
}

export const at = (m: Mat, i: number, j: number): number => m.data[i * m.cols + j];

export function eye(n: number): Mat {
  const m = mat(n, n);
  for (let i = 0; i < n; i++) m.data[i * n + i] = 1;
  return m;
}

export function transpose(a: Mat): Mat {
  const t = mat(a.cols, a.rows);
  for (let i = 0; i < a.rows; i++)
    for (let j = 0; j < a.cols; j++) t.data[j * a.rows + i] = a.data[i * a.cols + j];
  return t;
}

export function matmul(a: Mat, b: Mat): Mat {
  if (a.cols !== b.rows)
    throw new Error(`reference: matmul ${a.rows}×${a.cols} · ${b.rows}×${b.cols}`);
  const c = mat(a.rows, b.cols);
  for (let i = 0; i < a.rows; i++) {
    for (let j = 0; j < b.cols; j++) {
      let s = 0;
      for (let k = 0; k < a.cols; k++) s += a.data[i * a.cols + k] * b.data[k * b.cols + j];
      c.data[i * b.cols + j] = s;
    }
  }
  return c;
}

/** Entrywise |a|, for rounding-error bounds of products (|fl(AB) − AB| ≤ γ_k·|A||B|). */
export const absMat = (a: Mat): Mat => mat(a.rows, a.cols, a.data.map(Math.abs));

export function addMat(a: Mat, b: Mat, cb = 1, ca = 1): Mat {
  if (a.rows !== b.rows || a.cols !== b.cols) throw new Error('reference: add of different shapes');
  return mat(
    a.rows,
    a.cols,
    a.data.map((v, k) => ca * v + cb * b.data[k]),
  );
}

export const subMat = (a: Mat, b: Mat): Mat => addMat(a, b, -1);
export const scaleMat = (a: Mat, c: number): Mat =>
  mat(
    a.rows,
    a.cols,
    a.data.map((v) => c * v),
  );

export function frobenius(a: Mat | ArrayLike<number>): number {
  const d = 'data' in a ? a.data : a;
  let s = 0;
  for (let i = 0; i < d.length; i++) s += d[i] * d[i];
  return Math.sqrt(s);
}

/** rel(x, y) = ‖x − y‖_F / max(‖y‖_F, 1e-300) (docs/algorithms.md §8). */
export function rel(x: Mat | ArrayLike<number>, y: Mat | ArrayLike<number>): number {
  const xd = 'data' in x ? x.data : x;
  const yd = 'data' in y ? y.data : y;
  if (xd.length !== yd.length)
    throw new Error(`reference: rel of ${xd.length} and ${yd.length} values`);
  let s = 0;
  for (let i = 0; i < xd.length; i++) s += (xd[i] - yd[i]) ** 2;
  return Math.sqrt(s) / Math.max(frobenius(yd), 1e-300);
}

/** Largest |a_ij − a_ji| (0 exactly for an exactly symmetric matrix). */
export function asymmetry(a: Mat): number {
  let m = 0;
  for (let i = 0; i < a.rows; i++)
    for (let j = 0; j < i; j++) m = Math.max(m, Math.abs(at(a, i, j) - at(a, j, i)));
  return m;
}

/** Kronecker product: (A⊗B)[i·p + k, j·q + l] = A[i, j]·B[k, l] for B of size p×q. */
export function kron(a: Mat, b: Mat): Mat {
  const out = mat(a.rows * b.rows, a.cols * b.cols);
  for (let i = 0; i < a.rows; i++)
    for (let j = 0; j < a.cols; j++)
      for (let k = 0; k < b.rows; k++)
        for (let l = 0; l < b.cols; l++)
          out.data[(i * b.rows + k) * out.cols + j * b.cols + l] = at(a, i, j) * at(b, k, l);
  return out;
}

/** Column-major vec (docs/algorithms.md §2): the columns of X stacked. */
export function vecCol(x: Mat): Float64Array {
  const v = new Float64Array(x.rows * x.cols);
  for (let j = 0; j < x.cols; j++) for (let i = 0; i < x.rows; i++) v[j * x.rows + i] = at(x, i, j);
  return v;
}

/** The inverse of vecCol: a rows×cols matrix from its stacked columns. */
export function unvecCol(v: ArrayLike<number>, rows: number, cols: number): Mat {
  const x = mat(rows, cols);
  for (let j = 0; j < cols; j++)
    for (let i = 0; i < rows; i++) x.data[i * cols + j] = v[j * rows + i];
  return x;
}

export function matVec(a: Mat, v: ArrayLike<number>): Float64Array {
  const out = new Float64Array(a.rows);
  for (let i = 0; i < a.rows; i++) {
    let s = 0;
    for (let k = 0; k < a.cols; k++) s += a.data[i * a.cols + k] * v[k];
    out[i] = s;
  }
  return out;
}

/** Solves A x = b by Gaussian elimination with partial pivoting. */
export function solve(a: Mat, b: ArrayLike<number>): Float64Array {
  const n = a.rows;
  if (a.cols !== n || b.length !== n) throw new Error('reference: solve needs a square system');
  const m = Float64Array.from(a.data);
  const x = Float64Array.from(b);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r * n + c]) > Math.abs(m[p * n + c])) p = r;
    if (m[p * n + c] === 0) throw new Error('reference: singular system');
    if (p !== c) {
      for (let k = 0; k < n; k++) [m[c * n + k], m[p * n + k]] = [m[p * n + k], m[c * n + k]];
      [x[c], x[p]] = [x[p], x[c]];
    }
    for (let r = c + 1; r < n; r++) {
      const f = m[r * n + c] / m[c * n + c];
      if (f === 0) continue;
      for (let k = c; k < n; k++) m[r * n + k] -= f * m[c * n + k];
      x[r] -= f * x[c];
    }
  }
  for (let r = n - 1; r >= 0; r--) {
    let s = x[r];
    for (let k = r + 1; k < n; k++) s -= m[r * n + k] * x[k];
    x[r] = s / m[r * n + r];
  }
  return x;
}

/** A⁻¹ by Gauss–Jordan elimination with partial pivoting on [A | I]. */
export function inverse(a: Mat): Mat {
  const n = a.rows;
  if (a.cols !== n) throw new Error('reference: inverse of a non-square matrix');
  const w = 2 * n;
  const m = new Float64Array(n * w);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) m[i * w + j] = at(a, i, j);
    m[i * w + n + i] = 1;
  }
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r * w + c]) > Math.abs(m[p * w + c])) p = r;
    if (m[p * w + c] === 0) throw new Error('reference: singular matrix');
    if (p !== c)
      for (let k = 0; k < w; k++) [m[c * w + k], m[p * w + k]] = [m[p * w + k], m[c * w + k]];
    const pivot = m[c * w + c];
    for (let k = 0; k < w; k++) m[c * w + k] /= pivot;
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = m[r * w + c];
      if (f === 0) continue;
      for (let k = 0; k < w; k++) m[r * w + k] -= f * m[c * w + k];
    }
  }
  const inv = mat(n, n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) inv.data[i * n + j] = m[i * w + n + j];
  return inv;
}

/**
 * Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations (the symmetric part is
 * used). Eigenvalues ascending, with their unit eigenvectors as the columns of `vectors`. Jacobi
 * is backward stable: each eigenvalue is within a small multiple of ε·‖A‖₂ of the exact one.
 */
export function symmetricEigen(a: Mat): { values: Float64Array; vectors: Mat } {
  const n = a.rows;
  if (a.cols !== n) throw new Error('reference: eigenvalues of a non-square matrix');
  const m = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) m[i * n + j] = (at(a, i, j) + at(a, j, i)) / 2;
  const v = eye(n).data;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    let diag = 0;
    for (let i = 0; i < n; i++) {
      diag += m[i * n + i] ** 2;
      for (let j = 0; j < n; j++) if (i !== j) off += m[i * n + j] ** 2;
    }
    if (off <= 1e-34 * diag || off === 0) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = m[p * n + q];
        if (apq === 0) continue;
        const theta = (m[q * n + q] - m[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const mkp = m[k * n + p];
          const mkq = m[k * n + q];
          m[k * n + p] = c * mkp - s * mkq;
          m[k * n + q] = s * mkp + c * mkq;
        }
        for (let k = 0; k < n; k++) {
          const mpk = m[p * n + k];
          const mqk = m[q * n + k];
          m[p * n + k] = c * mpk - s * mqk;
          m[q * n + k] = s * mpk + c * mqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p];
          const vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => m[i * n + i] - m[j * n + j]);
  const values = Float64Array.from(order, (i) => m[i * n + i]);
  const vectors = mat(n, n);
  order.forEach((src, dst) => {
    for (let k = 0; k < n; k++) vectors.data[k * n + dst] = v[k * n + src];
  });
  return { values, vectors };
}

export const eigenvalues = (a: Mat): Float64Array => symmetricEigen(a).values;
export const lambdaMax = (a: Mat): number => eigenvalues(a)[a.rows - 1];

/** ‖M‖₂ = √λ_max(MᵀM) for any M (relative accuracy ~ε, since Jacobi's error is ε‖MᵀM‖). */
export function spectralNorm(m: Mat): number {
  return Math.sqrt(Math.max(0, lambdaMax(matmul(transpose(m), m))));
}

/** κ₂ of a symmetric positive definite matrix: λ_max / λ_min. */
export function condition(a: Mat): number {
  const ev = eigenvalues(a);
  return ev[ev.length - 1] / ev[0];
}

/**
 * The second moment (1/B)·XᵀX of the rows of X (B × d): Λ̂ for X = a, Γ̂ for X = g
 * (docs/algorithms.md §2).
 */
export function secondMoment(x: Mat): Mat {
  return scaleMat(matmul(transpose(x), x), 1 / x.rows);
}

/** X with a ones column appended (the dense layer's bias input, docs/algorithms.md §2). */
export function withOnesColumn(x: Mat): Mat {
  const out = mat(x.rows, x.cols + 1);
  for (let n = 0; n < x.rows; n++) {
    for (let i = 0; i < x.cols; i++) out.data[n * out.cols + i] = at(x, n, i);
    out.data[n * out.cols + x.cols] = 1;
  }
  return out;
}

/** A random d×d orthogonal matrix: modified Gram–Schmidt, applied twice, on the columns of `m`. */
export function orthonormalColumns(m: Mat): Mat {
  const n = m.rows;
  const cols = Array.from({ length: m.cols }, (_, j) =>
    Float64Array.from({ length: n }, (_, i) => at(m, i, j)),
  );
  for (let pass = 0; pass < 2; pass++) {
    for (let j = 0; j < cols.length; j++) {
      for (let k = 0; k < j; k++) {
        let d = 0;
        for (let i = 0; i < n; i++) d += cols[k][i] * cols[j][i];
        for (let i = 0; i < n; i++) cols[j][i] -= d * cols[k][i];
      }
      const norm = frobenius(cols[j]);
      for (let i = 0; i < n; i++) cols[j][i] /= norm;
    }
  }
  const q = mat(n, m.cols);
  cols.forEach((c, j) => c.forEach((v, i) => (q.data[i * m.cols + j] = v)));
  return q;
}

/** Q·diag(values)·Qᵀ, symmetrized exactly. */
export function withSpectrum(q: Mat, values: ArrayLike<number>): Mat {
  const n = q.rows;
  const out = mat(n, n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += at(q, i, k) * values[k] * at(q, j, k);
      out.data[i * n + j] = s;
      out.data[j * n + i] = s;
    }
  }
  return out;
}

/**
 * Newton–Schulz as docs/algorithms.md §3.5 writes it: X ← X(2I − AX), then X ← (X + Xᵀ)/2, `steps`
 * times. Returns X_0 … X_steps.
 */
export function newtonSchulzSteps(a: Mat, x0: Mat, steps: number): Mat[] {
  const n = a.rows;
  const twoI = scaleMat(eye(n), 2);
  const out = [x0];
  let x = x0;
  for (let j = 0; j < steps; j++) {
    const y = matmul(x, subMat(twoI, matmul(a, x)));
    x = scaleMat(addMat(y, transpose(y)), 0.5);
    out.push(x);
  }
  return out;
}

/** R = I − A X. */
export const residualMatrix = (a: Mat, x: Mat): Mat => subMat(eye(a.rows), matmul(a, x));

/**
 * The guarded inverse as docs/algorithms.md §3.5 (R9) and the contract of guardedInverse describe
 * it: start from the warm start X₀ if ‖I − AX₀‖_F < 1, else from I/λ̂; run `iterations` steps; the
 * attempt "missed" when its residual is not ≤ tolerance (a NaN residual from an overflowed
 * divergence misses too); `extra` further steps continue from it, or, when it diverged (residual
 * not < 1), restart from I/‖A‖_F (‖A‖_F ≥ λ_max, so that start always converges).
 */
export function guardedInverseReference(
  a: Mat,
  options: { lambdaMax: number; x0?: Mat; iterations: number; extra: number; tolerance: number },
): { inverse: Mat; residual: number; fellBack: number; warm: boolean; diverged: boolean } {
  const n = a.rows;
  const cold = scaleMat(eye(n), 1 / options.lambdaMax);
  const warm = options.x0 !== undefined && frobenius(residualMatrix(a, options.x0)) < 1;
  const start = warm ? (options.x0 as Mat) : cold;
  const first = newtonSchulzSteps(a, start, options.iterations)[options.iterations];
  const firstResidual = frobenius(residualMatrix(a, first));
  const diverged = !(firstResidual < 1);
  const restart = diverged ? scaleMat(eye(n), 1 / frobenius(a)) : first;
  const inverse = newtonSchulzSteps(a, restart, options.extra)[options.extra];
  return {
    inverse,
    residual: frobenius(residualMatrix(a, inverse)),
    fellBack: firstResidual <= options.tolerance ? 0 : 1,
    warm,
    diverged,
  };
}

/**
 * k_NS = ⌈log₂(ln τ / ln(1/(1+√ρ)))⌉ (docs/algorithms.md §3.5), evaluated independently: the
 * smallest k ≥ 1 with (1+√ρ)^(−2^k) ≤ τ, by counting.
 */
export function iterationsByCounting(sqrtRho: number, tau: number): number {
  let k = 1;
  while (2 ** k * Math.log(1 + sqrtRho) < -Math.log(tau)) k++;
  return k;
}

/** Row n of a B×d matrix as a plain array. */
export const row = (m: Mat, n: number): number[] =>
  Array.from(m.data.subarray(n * m.cols, (n + 1) * m.cols));

/**
 * Forward pass of a tanh MLP (the last layer linear): each layer's input and pre-activation, and
 * the output.
 */
export function tanhMlpForward(
  layers: readonly { w: Mat; b?: Float64Array }[],
  x: Mat,
): { inputs: Mat[]; pre: Mat[]; out: Mat } {
  const B = x.rows;
  const inputs: Mat[] = [];
  const pre: Mat[] = [];
  let h = x;
  layers.forEach((layer, i) => {
    inputs.push(h);
    const s = mat(B, layer.w.rows);
    for (let n = 0; n < B; n++) {
      for (let o = 0; o < layer.w.rows; o++) {
        let v = layer.b === undefined ? 0 : layer.b[o];
        for (let k = 0; k < layer.w.cols; k++) v += at(h, n, k) * at(layer.w, o, k);
        s.data[n * s.cols + o] = v;
      }
    }
    pre.push(s);
    h = i < layers.length - 1 ? mat(B, s.cols, s.data.map(Math.tanh)) : s;
  });
  return { inputs, pre, out: h };
}

/**
 * Per-sample pre-activation gradients g_i of every layer, back from the output's ∂ℓ_n/∂s (not
 * divided by B).
 */
export function tanhMlpBackward(
  layers: readonly { w: Mat; b?: Float64Array }[],
  pre: readonly Mat[],
  outputDelta: Mat,
): Mat[] {
  const B = outputDelta.rows;
  const g: Mat[] = new Array(layers.length);
  let delta = outputDelta;
  for (let i = layers.length - 1; i >= 0; i--) {
    g[i] = delta;
    if (i === 0) break;
    // Back through s_i = h W_iᵀ + b_i and h = tanh(s_{i−1}).
    const w = layers[i].w;
    const prev = pre[i - 1];
    const next = mat(B, w.cols);
    for (let n = 0; n < B; n++) {
      for (let k = 0; k < w.cols; k++) {
        let v = 0;
        for (let o = 0; o < w.rows; o++) v += at(delta, n, o) * at(w, o, k);
        const t = Math.tanh(at(prev, n, k));
        next.data[n * w.cols + k] = v * (1 - t * t);
      }
    }
    delta = next;
  }
  return g;
}

/**
 * Forward and backward pass of a tanh MLP with softmax cross-entropy (mean over the batch), the
 * dense layers in PyTorch's layout s = a Wᵀ + b. Returns, per layer, its input activations a (B ×
 * d_in, a ones column appended when it has a bias), the per-sample pre-activation gradients g_n =
 * ∂ℓ_n/∂s_n (B × d_out, not divided by B; docs/algorithms.md §2), and the gradient of the mean loss
 * with respect to [W | b] computed by the chain rule: ∂L/∂W = (1/B) Σ_n g_n a_nᵀ.
 */
export function mlpBackprop(
  layers: readonly { w: Mat; b?: Float64Array }[],
  x: Mat,
  labels: ArrayLike<number>,
): { a: Mat[]; g: Mat[]; gradW: Mat[]; gradB: (Float64Array | undefined)[]; loss: number } {
  const B = x.rows;
  const { inputs, pre, out: h } = tanhMlpForward(layers, x);
  // Softmax cross-entropy: ℓ_n = logsumexp(s_n) − s_n[y_n], ∂ℓ_n/∂s_n = softmax(s_n) − onehot(y_n).
  const logits = h;
  const C = logits.cols;
  const delta = mat(B, C);
  let loss = 0;
  for (let n = 0; n < B; n++) {
    const r = row(logits, n);
    const z = Math.max(...r);
    const e = r.map((v) => Math.exp(v - z));
    const total = e.reduce((u, v) => u + v, 0);
    loss += (Math.log(total) + z - r[labels[n]]) / B;
    for (let c = 0; c < C; c++) delta.data[n * C + c] = e[c] / total - (labels[n] === c ? 1 : 0);
  }
  const g = tanhMlpBackward(layers, pre, delta);
  const gradW = layers.map((layer, i) => {
    const gw = mat(layer.w.rows, layer.w.cols);
    for (let o = 0; o < layer.w.rows; o++) {
      for (let k = 0; k < layer.w.cols; k++) {
        let v = 0;
        for (let n = 0; n < B; n++) v += at(g[i], n, o) * at(inputs[i], n, k);
        gw.data[o * layer.w.cols + k] = v / B;
      }
    }
    return gw;
  });
  const gradB = layers.map((layer, i) => {
    if (layer.b === undefined) return undefined;
    const gb = new Float64Array(layer.w.rows);
    for (let o = 0; o < layer.w.rows; o++) {
      let v = 0;
      for (let n = 0; n < B; n++) v += at(g[i], n, o);
      gb[o] = v / B;
    }
    return gb;
  });
  const a = layers.map((layer, i) =>
    layer.b === undefined ? inputs[i] : withOnesColumn(inputs[i]),
  );
  return { a, g, gradW, gradB, loss };
}
