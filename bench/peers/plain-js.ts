// The peer workloads in plain single-threaded JavaScript over typed arrays: the CPU floor a GPU
// library has to beat. Written to be reasonably fast (no allocation in run(), i-k-j matmul loops,
// typed arrays only) but with no WASM or SIMD, so it measures what ordinary JS code gets.
import type { AdamWHyper } from '../hand-written-adamw.js';
import type { MlpSetup } from './peers.js';

/** The kernels are generic so the test can run them in float64 and the bench in float32. */
export type Floats = Float32Array | Float64Array;

/** A zeroed array of the same element type as `like`. */
function alike<T extends Floats>(like: T, n: number): T {
  return (like instanceof Float64Array ? new Float64Array(n) : new Float32Array(n)) as T;
}

/** Deterministic values in [-0.5, 0.5) (a sine hash), so runs and tests see the same data. */
function hashed(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const s = Math.sin((i + 1) * 12.9898 + seed * 78.233) * 43758.5453;
    out[i] = s - Math.floor(s) - 0.5;
  }
  return out;
}

/**
 * One Adam(W) update in place, with the bias corrections c1 = 1 − β1^t and c2 = 1 − β2^t passed in
 * so a caller that advances t does not build a hyperparameter object per step.
 */
function adamUpdate(
  theta: Floats,
  m: Floats,
  v: Floats,
  g: Floats,
  lr: number,
  b1: number,
  b2: number,
  eps: number,
  wd: number,
  c1: number,
  c2: number,
): void {
  const a1 = 1 - b1;
  const a2 = 1 - b2;
  for (let i = 0; i < theta.length; i++) {
    const gi = g[i];
    const m1 = m[i] * b1 + gi * a1;
    const v1 = v[i] * b2 + gi * gi * a2;
    // The hand-written WGSL kernel's formula: decay on the old θ, decoupled from the moments.
    theta[i] -= lr * (m1 / c1 / (Math.sqrt(v1 / c2) + eps) + theta[i] * wd);
    m[i] = m1;
    v[i] = v1;
  }
}

/** θ, m, v, g of one parameter tensor. */
export interface AdamWTensor {
  readonly theta: Float32Array;
  readonly m: Float32Array;
  readonly v: Float32Array;
  readonly g: Float32Array;
}

/** An AdamW step (fixed h.step, as the WGSL kernel bakes it in) over tensors of the given sizes. */
export function plainAdamW(
  sizes: readonly number[],
  h: AdamWHyper,
): { run(): Promise<void>; readonly tensors: readonly AdamWTensor[] } {
  const tensors = sizes.map((n, k): AdamWTensor => {
    const theta = hashed(n, 4 * k);
    // v must be non-negative; m and g are any sign.
    return {
      theta,
      m: hashed(n, 4 * k + 1),
      v: hashed(n, 4 * k + 2).map((x) => x * x),
      g: hashed(n, 4 * k + 3),
    };
  });
  const [c1, c2] = [1 - h.beta1 ** h.step, 1 - h.beta2 ** h.step];
  return {
    tensors,
    async run() {
      for (const t of tensors)
        adamUpdate(t.theta, t.m, t.v, t.g, h.lr, h.beta1, h.beta2, h.eps, h.weightDecay, c1, c2);
    },
  };
}

/**
 * c = a·b for row-major a (rows×inner), b (inner×cols); i-k-j order keeps the inner loop
 * contiguous.
 */
function matmulInto(
  c: Floats,
  a: Floats,
  b: Floats,
  rows: number,
  inner: number,
  cols: number,
): void {
  c.fill(0);
  for (let i = 0; i < rows; i++) {
    const ci = i * cols;
    for (let p = 0; p < inner; p++) {
      const aip = a[i * inner + p];
      const bp = p * cols;
      for (let j = 0; j < cols; j++) c[ci + j] += aip * b[bp + j];
    }
  }
}

/** A k×k×k f32 matmul per run. */
export function plainMatmul(k: number): { run(): Promise<void> } {
  const [a, b, c] = [hashed(k * k, 1), hashed(k * k, 2), new Float32Array(k * k)];
  return {
    async run() {
      matmulInto(c, a, b, k, k, k);
    },
  };
}

/** Activations, deltas and gradients of one MLP evaluation, allocated once and reused. */
export interface MlpWorkspace<T extends Floats> {
  /** Per layer, batch×out: post-ReLU activations for hidden layers, logits for the last. */
  readonly acts: readonly T[];
  /** Per layer, batch×out: ∂loss/∂(pre-activation). */
  readonly deltas: readonly T[];
  /** Same layout as params: w0, b0, w1, b1, …. */
  readonly grads: readonly T[];
}

export function mlpWorkspace<T extends Floats>(
  params: readonly T[],
  sizes: readonly number[],
  batch: number,
): MlpWorkspace<T> {
  const outs = sizes.slice(1);
  return {
    acts: outs.map((n) => alike(params[0], batch * n)),
    deltas: outs.map((n) => alike(params[0], batch * n)),
    grads: params.map((p) => alike(p, p.length)),
  };
}

/**
 * Mean softmax cross-entropy of the MLP (x·W + b, ReLU between layers) over the batch, and its
 * gradient into work.grads. params are w0, b0, w1, b1, … with w_l row-major in×out (TF.js's
 * layout); x is batch×sizes[0]; labels holds one class index per row.
 */
export function mlpLossAndGradient<T extends Floats>(
  params: readonly T[],
  x: T,
  labels: ArrayLike<number>,
  sizes: readonly number[],
  work: MlpWorkspace<T> = mlpWorkspace(params, sizes, labels.length),
): number {
  const batch = labels.length;
  const layers = sizes.length - 1;
  const { acts, deltas, grads } = work;
  for (let l = 0; l < layers; l++) {
    const input = l === 0 ? x : acts[l - 1];
    const out = acts[l];
    const bias = params[2 * l + 1];
    const fanIn = sizes[l];
    const fanOut = sizes[l + 1];
    matmulInto(out, input, params[2 * l], batch, fanIn, fanOut);
    const relu = l < layers - 1;
    for (let b = 0; b < batch; b++) {
      for (let j = 0; j < fanOut; j++) {
        const z = out[b * fanOut + j] + bias[j];
        out[b * fanOut + j] = relu && z < 0 ? 0 : z;
      }
    }
  }
  // Loss and ∂loss/∂logits = (softmax − onehot) / batch, with the max subtracted for stability.
  const classes = sizes[layers];
  const logits = acts[layers - 1];
  const top = deltas[layers - 1];
  let loss = 0;
  for (let b = 0; b < batch; b++) {
    const row = b * classes;
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, logits[row + c]);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp(logits[row + c] - max);
    const label = labels[b];
    loss += Math.log(sum) + max - logits[row + label];
    for (let c = 0; c < classes; c++)
      top[row + c] = (Math.exp(logits[row + c] - max) / sum - (c === label ? 1 : 0)) / batch;
  }
  for (let l = layers - 1; l >= 0; l--) {
    const input = l === 0 ? x : acts[l - 1];
    const delta = deltas[l];
    const w = params[2 * l];
    const gw = grads[2 * l];
    const gb = grads[2 * l + 1];
    const fanIn = sizes[l];
    const fanOut = sizes[l + 1];
    // ∂W = inputᵀ·δ, accumulated row by row of the batch so every inner loop is contiguous.
    gw.fill(0);
    gb.fill(0);
    for (let b = 0; b < batch; b++) {
      const xb = b * fanIn;
      const db = b * fanOut;
      for (let j = 0; j < fanOut; j++) gb[j] += delta[db + j];
      for (let p = 0; p < fanIn; p++) {
        const xp = input[xb + p];
        if (xp === 0) continue; // ReLU zeros contribute nothing
        const wp = p * fanOut;
        for (let j = 0; j < fanOut; j++) gw[wp + j] += xp * delta[db + j];
      }
    }
    if (l === 0) break; // the input needs no gradient
    // δ_{l−1} = (δ·Wᵀ) ⊙ [a_{l−1} > 0]; a ReLU output is positive exactly where its input was.
    const below = deltas[l - 1];
    for (let b = 0; b < batch; b++) {
      const xb = b * fanIn;
      const db = b * fanOut;
      for (let p = 0; p < fanIn; p++) {
        if (input[xb + p] <= 0) {
          below[xb + p] = 0;
          continue;
        }
        const wp = p * fanOut;
        let s = 0;
        for (let j = 0; j < fanOut; j++) s += delta[db + j] * w[wp + j];
        below[xb + p] = s;
      }
    }
  }
  return loss / batch;
}

/**
 * The MLP's weights (uniform, std 0.05 as tfMlpStep's normal) and zero biases, in
 * mlpLossAndGradient's order.
 */
export function mlpParams(sizes: readonly number[]): Float32Array[] {
  // hashed() is uniform on [-0.5, 0.5): std 1/√12.
  return sizes
    .slice(1)
    .flatMap((out, l) => [
      hashed(sizes[l] * out, 100 + l).map((x) => x * 0.05 * Math.sqrt(12)),
      new Float32Array(out),
    ]);
}

/**
 * tfMlpStep's training step: forward, loss, backward and Adam (lr 1e-3, bias-corrected) on every
 * tensor.
 */
export function plainMlpStep(setup: MlpSetup): { run(): Promise<void>; loss(): number } {
  const { sizes, batch } = setup;
  const classes = sizes[sizes.length - 1];
  const params = mlpParams(sizes);
  const [m, v] = [
    params.map((p) => new Float32Array(p.length)),
    params.map((p) => new Float32Array(p.length)),
  ];
  const x = hashed(batch * sizes[0], 7).map((u) => u + 0.5);
  const labels = Int32Array.from({ length: batch }, (_, i) => i % classes);
  const work = mlpWorkspace(params, sizes, batch);
  let [t, last] = [0, NaN];
  return {
    async run() {
      last = mlpLossAndGradient(params, x, labels, sizes, work);
      t++;
      const c1 = 1 - 0.9 ** t;
      const c2 = 1 - 0.999 ** t;
      for (let i = 0; i < params.length; i++)
        adamUpdate(params[i], m[i], v[i], work.grads[i], 1e-3, 0.9, 0.999, 1e-8, 0, c1, c2);
    },
    loss: () => last,
  };
}
