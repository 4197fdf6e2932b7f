// Float64 references as a user of grng/testing writes them: plain loops over the parameter
// leaves, straight from docs/algorithms.md §6.1–6.3 and from the Lion paper (Chen et al. 2023,
// Algorithm 2), with nothing from dsl/ or optimizers/. Deliberately wrong variants sit beside
// them, for the tests that checkOptimizer finds mistakes.
import type { ReferenceStep } from '../../testing.js';

type Leaves = readonly Float64Array[];

export type SgdHyper = {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
};
export type AdamHyper = {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
};
export type LionHyper = { lr: number; beta1: number; beta2: number; weightDecay: number };

/**
 * Applies `f` to element i of every leaf, for all leaves and elements; f returns one value per
 * output list.
 */
function elementwise(
  leaves: Leaves,
  outputs: number,
  f: (k: number, i: number) => readonly number[],
): Float64Array[][] {
  const out = Array.from({ length: outputs }, () => leaves.map((x) => new Float64Array(x.length)));
  leaves.forEach((x, k) => {
    for (let i = 0; i < x.length; i++) f(k, i).forEach((v, o) => (out[o][k][i] = v));
  });
  return out;
}

/**
 * §6.1 SGD (PyTorch): g ← ∇L + λθ; with μ ≠ 0, b₁ = g₁ and b_t = μb_{t−1} + (1 − τ)g_t,
 * d = g + μb_t (Nesterov) or b_t; with μ = 0, d = g. θ ← θ − ηd.
 */
export const sgdReference: ReferenceStep<{ buf: Float64Array[] | undefined }, SgdHyper> = (
  params,
  grads,
  state,
  h,
) => {
  const [next, buf] = elementwise(params, 2, (k, i) => {
    const g = grads[k][i] + h.weightDecay * params[k][i];
    if (h.momentum === 0) return [params[k][i] - h.lr * g, 0];
    const b = state?.buf === undefined ? g : h.momentum * state.buf[k][i] + (1 - h.dampening) * g;
    const d = h.nesterov ? g + h.momentum * b : b;
    return [params[k][i] - h.lr * d, b];
  });
  return { params: next, state: { buf: h.momentum === 0 ? state?.buf : buf } };
};

export interface Moments {
  readonly m: Float64Array[];
  readonly v: Float64Array[];
}

/**
 * §6.2 Adam (L2 decay added to g) and §6.3 AdamW (θ(1 − ηλ) first, raw g in the moments):
 * m_t = β₁m + (1−β₁)g, v_t = β₂v + (1−β₂)g², θ ← θ − η m̂/(√v̂ + ε). `biasCorrection: false` is
 * the classic mistake (m̂ = m, v̂ = v) the checks must find.
 */
export function adamReference(options: {
  decoupled: boolean;
  biasCorrection?: boolean;
}): ReferenceStep<Moments, AdamHyper> {
  const { decoupled, biasCorrection = true } = options;
  return (params, grads, state, h, t) => {
    const [next, m, v] = elementwise(params, 3, (k, i) => {
      const theta = params[k][i];
      const g = decoupled ? grads[k][i] : grads[k][i] + h.weightDecay * theta;
      const m1 = h.beta1 * (state?.m[k][i] ?? 0) + (1 - h.beta1) * g;
      const v1 = h.beta2 * (state?.v[k][i] ?? 0) + (1 - h.beta2) * g * g;
      const mHat = biasCorrection ? m1 / (1 - h.beta1 ** t) : m1;
      const vHat = biasCorrection ? v1 / (1 - h.beta2 ** t) : v1;
      const base = decoupled ? theta * (1 - h.lr * h.weightDecay) : theta;
      return [base - h.lr * (mHat / (Math.sqrt(vHat) + h.eps)), m1, v1];
    });
    return { params: next, state: { m, v } };
  };
}

/**
 * Lion (Chen et al. 2023, Algorithm 2): c = β₁m + (1 − β₁)g, θ ← θ − η(sign(c) + λθ),
 * m ← β₂m + (1 − β₂)g. `swapBetas` uses β₂ for c and β₁ for m: the paper's easiest slip.
 */
export function lionReference(
  options: { swapBetas?: boolean } = {},
): ReferenceStep<{ m: Float64Array[] }, LionHyper> {
  return (params, grads, state, h) => {
    const [b1, b2] = options.swapBetas ? [h.beta2, h.beta1] : [h.beta1, h.beta2];
    const [next, m] = elementwise(params, 2, (k, i) => {
      const [theta, g, m0] = [params[k][i], grads[k][i], state?.m[k][i] ?? 0];
      const c = b1 * m0 + (1 - b1) * g;
      return [theta - h.lr * (Math.sign(c) + h.weightDecay * theta), b2 * m0 + (1 - b2) * g];
    });
    return { params: next, state: { m } };
  };
}
