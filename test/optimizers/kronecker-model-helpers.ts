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
