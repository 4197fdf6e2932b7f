// Float64 pieces the Kronecker-factored references of the model-level checks share (K-FAC §6.4,
// RING §3.3): a layer's gradient as one [W | b] matrix, the KL clip factor, and the way back from
// per-layer matrices to the parameter leaves.
import type { TrainingTap } from '../../testing.js';
import { mat, type Mat } from '../curvature/reference.js';

/** [∂L/∂W | ∂L/∂b] of a tap's layer, d_out × d_in(+1). */
export function layerGradient(tap: TrainingTap, grads: readonly Float64Array[]): Mat {
  const g = mat(tap.out, tap.in);
  const inputs = tap.b === undefined ? tap.in : tap.in - 1;
  for (let o = 0; o < tap.out; o++) {
    for (let j = 0; j < inputs; j++) g.data[o * tap.in + j] = grads[tap.w][o * inputs + j];
    if (tap.b !== undefined) g.data[o * tap.in + inputs] = grads[tap.b][o];
  }
  return g;
}

/** K-FAC's ν = min(1, √(κ / (η²·Σ⟨V, G⟩))); 1 when κ ≤ 0 (no clip) or the sum is ≤ 0. */
export function klClipFactor(
  layers: readonly { readonly g: Mat; readonly v: Mat }[],
  lr: number,
  kappa: number,
): number {
  const inner = layers.reduce(
    (s, l) => s + l.v.data.reduce((t, x, k) => t + x * l.g.data[k], 0),
    0,
  );
  const quota = lr * lr * inner;
  return kappa <= 0 || quota <= 0 ? 1 : Math.min(1, Math.sqrt(kappa / quota));
}

/** leaves += scale·[V_W | V_b] for each tap's layer matrix V (taps and matrices in order). */
export function addToLeaves(
  leaves: Float64Array[],
  taps: readonly TrainingTap[],
  matrices: readonly Mat[],
  scale: number,
): void {
  taps.forEach((tap, i) => {
    const v = matrices[i];
    const inputs = tap.b === undefined ? tap.in : tap.in - 1;
    for (let o = 0; o < tap.out; o++) {
      for (let j = 0; j < inputs; j++)
        leaves[tap.w][o * inputs + j] += scale * v.data[o * tap.in + j];
      if (tap.b !== undefined) leaves[tap.b][o] += scale * v.data[o * tap.in + inputs];
    }
  });
}

/**
 * A tap's Kronecker factors (docs/algorithms.md §10): rows are B·T positions (T = tap.positions).
 * 'expand': Λ = (1/(B·T)) Σ ã ãᵀ and Γ = (1/B) Σ g gᵀ over all positions. 'reduce': ā_n, the mean
 * of sample n's ã, and ĝ_n, the sum of its g, with each entry of ĝ_n that cancels to within 2⁻¹²
 * of Σ_t |g| set to 0; then Λ = (1/B) Σ ā āᵀ and Γ = (1/B) Σ ĝ ĝᵀ. Both are §3's at T = 1.
 */
export function kroneckerFactors(
  tap: TrainingTap,
  weightSharing: string,
): { readonly lambda: Mat; readonly gamma: Mat } {
  const { batch: B, positions: T } = tap;
  const moment = (rows: Float64Array, width: number, count: number, scale: number): Mat => {
    const m = mat(width, width);
    for (let r = 0; r < count; r++)
      for (let i = 0; i < width; i++)
        for (let j = 0; j < width; j++)
          m.data[i * width + j] += rows[r * width + i] * rows[r * width + j] * scale;
    return m;
  };
  if (weightSharing === 'expand')
    return {
      lambda: moment(tap.a, tap.in, B * T, 1 / (B * T)),
      gamma: moment(tap.g, tap.out, B * T, 1 / B),
    };
  const aBar = new Float64Array(B * tap.in);
  const gHat = new Float64Array(B * tap.out);
  for (let n = 0; n < B; n++) {
    for (let i = 0; i < tap.in; i++) {
      let s = 0;
      for (let t = 0; t < T; t++) s += tap.a[(n * T + t) * tap.in + i];
      aBar[n * tap.in + i] = s / T;
    }
    for (let o = 0; o < tap.out; o++) {
      let s = 0;
      let size = 0;
      for (let t = 0; t < T; t++) {
        const x = tap.g[(n * T + t) * tap.out + o];
        s += x;
        size += Math.abs(x);
      }
      gHat[n * tap.out + o] = Math.abs(s) <= 2 ** -12 * size ? 0 : s;
    }
  }
  return { lambda: moment(aBar, tap.in, B, 1 / B), gamma: moment(gHat, tap.out, B, 1 / B) };
}

/**
 * The leaves no tap records (LayerNorm gains and shifts, embeddings: the fallback's, O11) with
 * `gradient`'s value, every layer leaf 0: where the Kronecker directions are then added.
 */
export function fallbackLeaves(
  taps: readonly TrainingTap[],
  gradient: readonly Float64Array[],
): Float64Array[] {
  const tapped = tappedLeaves(taps);
  return gradient.map((g, k) =>
    tapped.has(k) ? new Float64Array(g.length) : Float64Array.from(g),
  );
}

/** The indices of the leaves some tap records (its weight and bias). */
export function tappedLeaves(taps: readonly TrainingTap[]): Set<number> {
  return new Set(taps.flatMap((tap) => (tap.b === undefined ? [tap.w] : [tap.w, tap.b])));
}
