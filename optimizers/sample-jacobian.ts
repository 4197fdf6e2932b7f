// Rows of a per-sample Jacobian for R-Kalman's observations: for a cotangent u [m, C] on the
// model's output, row n is J_nᵀu_n over the managed parameters (J_n = ∂z_n/∂θ_K, sample n alone).
// When every managed parameter is a dense layer's weight or bias, one backward pass gives all m
// rows: a dense layer's per-sample gradient is the outer product of its pre-activation gradient
// g_n and its input ã_n, summed over the positions it is applied at (docs/algorithms.md §10), and
// g_n comes from probes on the pre-activations, as for curvature taps. Else one VJP per sample.
import {
  cast,
  concat,
  eq,
  grad,
  iota,
  matmul,
  mT,
  mul,
  reshape,
  slice,
  sum,
  zerosLike,
  type Tensor,
} from '../dsl/index.js';
import { recordTaps, type DenseTap } from '../dsl/nn/taps.js';

/** u [m, C] → per-sample rows [m, P]. */
export type SampleRows = (cotangent: Tensor) => Tensor;

/** Per-sample rows from a row function of whole-batch cotangents: one call per sample. */
export function rowByRow(row: (cotangent: Tensor) => Tensor, m: number): SampleRows {
  return (u) => {
    const rows = Array.from({ length: m }, (_, n) => {
      // [m, 1, …] like u: sample n's cotangent alone.
      const only = cast(eq(iota([m, ...u.shape.slice(1).map(() => 1)], 0), n), 'f32');
      const r = row(mul(only, u));
      return reshape(r, [1, r.size]);
    });
    return concat(rows, 0);
  };
}

/**
 * Per-sample rows through the dense layers of `output` (the model at `params`), or undefined when
 * a managed parameter is not a tapped layer's weight or bias (the caller goes row by row).
 */
export function denseSampleRows(
  output: () => Tensor,
  managed: readonly Tensor[],
): SampleRows | undefined {
  const { taps } = recordTaps(output);
  const parts = managed.map((leaf) => {
    const i = taps.findIndex((t) => t.w.node === leaf.node || t.b?.node === leaf.node);
    return i < 0 ? undefined : { tap: i, bias: taps[i].b?.node === leaf.node };
  });
  if (parts.some((p) => p === undefined)) return undefined;
  return (u) => {
    const probed = (probes: Tensor[]) => sum(mul(recordTaps(output, probes).result, u)) as Tensor;
    const gs = grad(probed)(taps.map((t) => zerosLike(t.s))) as Tensor[];
    const rows = parts.map((part) => {
      const { tap, bias } = part as { tap: number; bias: boolean };
      return perSampleGradient(taps[tap], gs[tap], bias);
    });
    return concat(rows, 1);
  };
}

/**
 * A dense layer's per-sample gradient [m, size] of its weight (bias: false) or bias, from the
 * pre-activation gradients g [m, (T,) out] and the tap's inputs ã [m, (T,) in (+1)].
 */
function perSampleGradient(tap: DenseTap, g: Tensor, bias: boolean): Tensor {
  const m = g.shape[0];
  const out = g.shape[g.rank - 1];
  const width = tap.a.shape[tap.a.rank - 1] - (tap.b === undefined ? 0 : 1);
  // Positions as a middle axis: [m, T, ·] (T = 1 for a layer applied once per sample).
  const positions = (x: Tensor) => (x.rank === 3 ? x : reshape(x, [m, 1, x.shape[x.rank - 1]]));
  const g3 = positions(g);
  if (bias) return sum(g3, [1]); // ∂s/∂b = I at every position
  const a3 = positions(tap.a);
  const inputs = tap.b === undefined ? a3 : slice(a3, [0, 0, 0], [m, a3.shape[1], width]);
  return reshape(matmul(mT(g3), inputs), [m, out * width]); // Σ_t g_t ã_tᵀ, row-major like W
}
