// Independent float64 references for layers that share weights over positions
// (docs/algorithms.md §10), in plain loops over row-major Float64Arrays: an attention classifier
// (multi-head self-attention, mean over tokens, linear head, cross-entropy) and a convolutional one
// (direct convolution, tanh, mean over positions, linear head). Each forward records every
// layer's inputs token by token (patch by patch for the convolution) and can add a perturbation to
// one pre-activation, so that g = B·∂L/∂s comes from central differences — never from autodiff.
// Nothing here imports dsl/, runtime/, compiler/ or optimizers/.

/** A dense layer's parameters: w [out × in] row-major and b [out]. */
export interface DenseRef {
  readonly w: Float64Array;
  readonly b: Float64Array;
  readonly out: number;
  readonly in: number;
}

/** A pre-activation to nudge: `delta` added to entry `index` of layer `layer`'s s. */
export type Nudge = { readonly layer: string; readonly index: number; readonly delta: number };

/** What a forward pass records per layer: its inputs with a ones column, [rows × (in + 1)]. */
export type Inputs = Record<string, { readonly a: Float64Array; readonly rows: number }>;

function affine(
  name: string,
  a: Float64Array,
  rows: number,
  layer: DenseRef,
  nudge: Nudge | undefined,
  inputs: Inputs,
): Float64Array {
  const s = new Float64Array(rows * layer.out);
  const withOnes = new Float64Array(rows * (layer.in + 1));
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < layer.in; i++) withOnes[r * (layer.in + 1) + i] = a[r * layer.in + i];
    withOnes[r * (layer.in + 1) + layer.in] = 1;
    for (let o = 0; o < layer.out; o++) {
      let acc = layer.b[o];
      for (let i = 0; i < layer.in; i++) acc += a[r * layer.in + i] * layer.w[o * layer.in + i];
      s[r * layer.out + o] = acc;
    }
  }
  if (nudge?.layer === name) s[nudge.index] += nudge.delta;
  inputs[name] = { a: withOnes, rows };
  return s;
}

/** Mean cross-entropy of logits [B × C] against labels. */
function crossEntropy(logits: Float64Array, labels: ArrayLike<number>, classes: number): number {
  let total = 0;
  for (let n = 0; n < labels.length; n++) {
    const row = logits.subarray(n * classes, (n + 1) * classes);
    const top = Math.max(...row);
    let z = 0;
    for (const v of row) z += Math.exp(v - top);
    total += top + Math.log(z) - row[labels[n]];
  }
  return total / labels.length;
}

/** Mean over the T positions of [B × T × d] → [B × d]. */
function meanOverPositions(x: Float64Array, batch: number, positions: number, d: number) {
  const out = new Float64Array(batch * d);
  for (let n = 0; n < batch; n++)
    for (let t = 0; t < positions; t++)
      for (let j = 0; j < d; j++) out[n * d + j] += x[(n * positions + t) * d + j] / positions;
  return out;
}

export interface AttentionClassifier {
  readonly q: DenseRef;
  readonly k: DenseRef;
  readonly v: DenseRef;
  readonly o: DenseRef;
  readonly head: DenseRef;
  readonly heads: number;
}

/**
 * Loss of the attention classifier on x [B × T × d]: per sample and head, softmax(q kᵀ/√d_h) v,
 * heads concatenated, the output projection, the mean token, the head, mean cross-entropy.
 */
export function attentionForward(
  p: AttentionClassifier,
  x: Float64Array,
  batch: number,
  tokens: number,
  labels: ArrayLike<number>,
  nudge?: Nudge,
): { loss: number; inputs: Inputs } {
  const inputs: Inputs = {};
  const d = p.q.in;
  const rows = batch * tokens;
  const q = affine('q', x, rows, p.q, nudge, inputs);
  const k = affine('k', x, rows, p.k, nudge, inputs);
  const v = affine('v', x, rows, p.v, nudge, inputs);
  const dh = d / p.heads;
  const mixed = new Float64Array(rows * d);
  for (let n = 0; n < batch; n++) {
    for (let h = 0; h < p.heads; h++) {
      for (let t = 0; t < tokens; t++) {
        const scores = Array.from({ length: tokens }, (_, u) => {
          let s = 0;
          for (let e = 0; e < dh; e++)
            s += q[(n * tokens + t) * d + h * dh + e] * k[(n * tokens + u) * d + h * dh + e];
          return s / Math.sqrt(dh);
        });
        const top = Math.max(...scores);
        const weights = scores.map((s) => Math.exp(s - top));
        const z = weights.reduce((a, w) => a + w, 0);
        for (let e = 0; e < dh; e++) {
          let acc = 0;
          for (let u = 0; u < tokens; u++)
            acc += (weights[u] / z) * v[(n * tokens + u) * d + h * dh + e];
          mixed[(n * tokens + t) * d + h * dh + e] = acc;
        }
      }
    }
  }
  const o = affine('o', mixed, rows, p.o, nudge, inputs);
  const pooled = meanOverPositions(o, batch, tokens, d);
  const logits = affine('head', pooled, batch, p.head, nudge, inputs);
  return { loss: crossEntropy(logits, labels, p.head.out), inputs };
}

export interface ConvGeometry {
  readonly height: number;
  readonly width: number;
  readonly channels: number;
  readonly kernel: readonly [number, number];
  readonly stride: readonly [number, number];
  readonly padding: readonly [number, number];
}

export const convOutput = (g: ConvGeometry): [number, number] => [
  Math.floor((g.height + 2 * g.padding[0] - g.kernel[0]) / g.stride[0]) + 1,
  Math.floor((g.width + 2 * g.padding[1] - g.kernel[1]) / g.stride[1]) + 1,
];

/**
 * The im2col patches of NHWC images x [B × H × W × C], one row per (sample, output row, output
 * column), entries in (channel, kernel row, kernel column) order, zero outside the image.
 */
export function im2col(x: Float64Array, batch: number, g: ConvGeometry): Float64Array {
  const [ho, wo] = convOutput(g);
  const [kh, kw] = g.kernel;
  const c = g.channels;
  const out = new Float64Array(batch * ho * wo * c * kh * kw);
  let at = 0;
  for (let n = 0; n < batch; n++)
    for (let oh = 0; oh < ho; oh++)
      for (let ow = 0; ow < wo; ow++)
        for (let ch = 0; ch < c; ch++)
          for (let i = 0; i < kh; i++)
            for (let j = 0; j < kw; j++) {
              const [r, col] = [
                oh * g.stride[0] + i - g.padding[0],
                ow * g.stride[1] + j - g.padding[1],
              ];
              const inside = r >= 0 && r < g.height && col >= 0 && col < g.width;
              out[at++] = inside ? x[((n * g.height + r) * g.width + col) * c + ch] : 0;
            }
  return out;
}

/**
 * Direct convolution y[n, oh, ow, o] = b[o] + Σ_{c,i,j} w[o, c, i, j]·x[n, oh·s + i − p,
 * ow·s + j − p, c] (zero outside), NHWC in and out, kernel [C_out, C_in, k_h, k_w].
 */
export function convDirect(
  x: Float64Array,
  batch: number,
  g: ConvGeometry,
  layer: DenseRef,
): Float64Array {
  const [ho, wo] = convOutput(g);
  const [kh, kw] = g.kernel;
  const c = g.channels;
  const y = new Float64Array(batch * ho * wo * layer.out);
  for (let n = 0; n < batch; n++)
    for (let oh = 0; oh < ho; oh++)
      for (let ow = 0; ow < wo; ow++)
        for (let o = 0; o < layer.out; o++) {
          let acc = layer.b[o];
          for (let ch = 0; ch < c; ch++)
            for (let i = 0; i < kh; i++)
              for (let j = 0; j < kw; j++) {
                const r = oh * g.stride[0] + i - g.padding[0];
                const col = ow * g.stride[1] + j - g.padding[1];
                if (r < 0 || r >= g.height || col < 0 || col >= g.width) continue;
                acc +=
                  layer.w[((o * c + ch) * kh + i) * kw + j] *
                  x[((n * g.height + r) * g.width + col) * c + ch];
              }
          y[((n * ho + oh) * wo + ow) * layer.out + o] = acc;
        }
  return y;
}

/**
 * Loss of the convolutional classifier on x [B × H × W × C]: the convolution as a dense layer over
 * im2col patches (recorded per patch), tanh, the mean over positions, the head, cross-entropy.
 */
export function convForward(
  conv: DenseRef,
  head: DenseRef,
  g: ConvGeometry,
  x: Float64Array,
  batch: number,
  labels: ArrayLike<number>,
  nudge?: Nudge,
): { loss: number; inputs: Inputs } {
  const inputs: Inputs = {};
  const [ho, wo] = convOutput(g);
  const s = affine('conv', im2col(x, batch, g), batch * ho * wo, conv, nudge, inputs);
  const pooled = meanOverPositions(s.map(Math.tanh), batch, ho * wo, conv.out);
  const logits = affine('head', pooled, batch, head, nudge, inputs);
  return { loss: crossEntropy(logits, labels, head.out), inputs };
}

/**
 * g = B·∂L/∂s for every entry of layer `layer`'s pre-activations ([rows × out]), by the five-point
 * central difference (−L(2h) + 8L(h) − 8L(−h) + L(−2h)) / 12h: error h⁴|L⁽⁵⁾|/30 + 1.5·ε|L|/h,
 * ≈ 3e-13 per entry at h = 1e-3 for O(1) losses.
 */
export function outputGradients(
  loss: (nudge: Nudge) => number,
  layer: string,
  entries: number,
  batch: number,
  h = 1e-3,
): Float64Array {
  const at = (index: number, delta: number) => loss({ layer, index, delta });
  return Float64Array.from(
    { length: entries },
    (_, i) => (batch * (-at(i, 2 * h) + 8 * at(i, h) - 8 * at(i, -h) + at(i, -2 * h))) / (12 * h),
  );
}

/**
 * K-FAC-expand factors (docs/algorithms.md §10.2) from per-row inputs ã [B·T × d_in] and output
 * gradients g [B·T × d_out]: Λ = Σ ã ãᵀ / (B·T), Γ = Σ g gᵀ / B, accumulated row by row.
 */
export function expandFactors(
  a: Float64Array,
  g: Float64Array,
  batch: number,
  positions: number,
): { lambda: Float64Array; gamma: Float64Array } {
  const rows = batch * positions;
  const [dIn, dOut] = [a.length / rows, g.length / rows];
  const lambda = new Float64Array(dIn * dIn);
  const gamma = new Float64Array(dOut * dOut);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < dIn; i++)
      for (let j = 0; j < dIn; j++) lambda[i * dIn + j] += (a[r * dIn + i] * a[r * dIn + j]) / rows;
    for (let i = 0; i < dOut; i++)
      for (let j = 0; j < dOut; j++)
        gamma[i * dOut + j] += (g[r * dOut + i] * g[r * dOut + j]) / batch;
  }
  return { lambda, gamma };
}

/**
 * K-FAC-reduce factors (§10.3): ā_n = mean over positions of ã, ĝ_n = sum of g (entries no larger
 * than 2⁻¹²·Σ_t |g| count as cancelled to zero, docs/algorithms.md §10.3), then
 * Λ = Σ_n ā āᵀ / B, Γ = Σ_n ĝ ĝᵀ / B.
 */
export function reduceFactors(
  a: Float64Array,
  g: Float64Array,
  batch: number,
  positions: number,
): { lambda: Float64Array; gamma: Float64Array } {
  const rows = batch * positions;
  const [dIn, dOut] = [a.length / rows, g.length / rows];
  const aBar = new Float64Array(batch * dIn);
  const gHat = new Float64Array(batch * dOut);
  for (let n = 0; n < batch; n++)
    for (let t = 0; t < positions; t++) {
      const r = n * positions + t;
      for (let i = 0; i < dIn; i++) aBar[n * dIn + i] += a[r * dIn + i] / positions;
      for (let i = 0; i < dOut; i++) gHat[n * dOut + i] += g[r * dOut + i];
    }
  for (let n = 0; n < batch; n++)
    for (let i = 0; i < dOut; i++) {
      let spread = 0;
      for (let t = 0; t < positions; t++) spread += Math.abs(g[(n * positions + t) * dOut + i]);
      if (Math.abs(gHat[n * dOut + i]) <= 2 ** -12 * spread) gHat[n * dOut + i] = 0;
    }
  return expandFactors(aBar, gHat, batch, 1);
}

/** G = Σ_rows g ãᵀ / B ([d_out × d_in]). */
export function sharedGradient(a: Float64Array, g: Float64Array, batch: number, rows: number) {
  const [dIn, dOut] = [a.length / rows, g.length / rows];
  const out = new Float64Array(dOut * dIn);
  for (let r = 0; r < rows; r++)
    for (let o = 0; o < dOut; o++)
      for (let i = 0; i < dIn; i++) out[o * dIn + i] += (g[r * dOut + o] * a[r * dIn + i]) / batch;
  return out;
}
