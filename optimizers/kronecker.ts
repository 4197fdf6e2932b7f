// Pieces shared by the Kronecker-factored optimizers (K-FAC, RING, RENG): per-layer factor state,
// the factor EMA with its refresh period, the layer gradient [∂L/∂W | ∂L/∂b] and its way back to
// the parameters, Tikhonov-damped inverses by the π-rule, and K-FAC's KL clip.
import {
  add,
  categorical,
  concat,
  constant,
  div,
  expandDims,
  eye,
  foldIn,
  le,
  matmul,
  maximum,
  minimum,
  mul,
  reshape,
  slice,
  sqnorm,
  sqrt,
  stopGradient,
  sum,
  trace,
  where,
  zeros,
  type Tensor,
  GrngError,
  flattenTree,
} from '../dsl/index.js';
import {
  blockWithIdentity,
  ema,
  guardedInverse,
  kroneckerFactors,
  powerIteration,
} from '../dsl/curvature/index.js';
import type { LayerInfo, LayerTap, ParamTree } from '../dsl/optimizer.js';
import { isTensor } from '../dsl/tensor.js';

/**
 * A dense layer's curvature state: factor EMAs, their damped inverses, and power-iteration vectors
 * (warm starts).
 */
export interface LayerState {
  readonly lambda: Tensor;
  readonly gamma: Tensor;
  readonly lambdaInv: Tensor;
  readonly gammaInv: Tensor;
  readonly lambdaVec: Tensor;
  readonly gammaVec: Tensor;
}

/**
 * Factors start at I ('identity', KFAC-Pytorch) or at zero to be replaced by the first statistics
 * ('first').
 */
export function initialLayerState(layer: LayerInfo, factorInit: string): LayerState {
  const [dOut, dIn] = layerMatrixShape(layer);
  const start = (n: number) => (factorInit === 'identity' ? eye(n) : zeros([n, n]));
  return {
    lambda: start(dIn),
    gamma: start(dOut),
    lambdaInv: eye(dIn),
    gammaInv: eye(dOut),
    lambdaVec: powerStart(dIn),
    gammaVec: powerStart(dOut),
  };
}

/**
 * The layer's parameters as one matrix W̃ = [W | b] (d_out × d_in): a convolution's kernel
 * [C_out, C_in, k_h, k_w] is read row-major as [C_out, C_in·k_h·k_w], the order of its patches.
 */
export function layerMatrixShape(layer: LayerInfo): [number, number] {
  const [dOut, ...rest] = layer.w.shape;
  const dIn = rest.reduce((n, d) => n * d, 1);
  return [dOut, dIn + (layer.b === undefined ? 0 : 1)];
}

/**
 * The first power-iteration vector: 1/(1 + i), not all ones. The ones vector is an exact null
 * vector of Γ for a softmax output layer (each g_n = p_n − e_{y_n} sums to zero), so power
 * iteration from it can return λ̂ = 0 for a nonzero Γ (RING would take its degenerate branch,
 * K-FAC would start Newton–Schulz from I/λ̂ with λ̂ the damping alone).
 */
export function powerStart(n: number): Tensor {
  return constant(
    Float64Array.from({ length: n }, (_, i) => 1 / (1 + i)),
    [n],
  );
}

/**
 * The previous refresh's power vector, or powerStart after a zero one: power iteration on a zero
 * matrix (a degenerate factor) stores 0, and λ̂ would otherwise stay 0 for good.
 */
export function powerRestart(v0: Tensor): Tensor {
  return where(le(sqnorm(v0), 0), powerStart(v0.shape[0]), v0);
}

/**
 * Below this a factor counts as degenerate (all-zero inputs or output gradients, e.g. LoRA's A
 * while B = 0): its damped form becomes I, no preconditioning on that side (docs/algorithms.md
 * §3.3). A zero factor means G = 0 for RING, so U = 0 either way; but RENG's G_G = G + ρ·H G need
 * not vanish there, and a near-zero damped factor's inverse (1e8·I in the first design) blew its
 * first LoRA step up ~1e4-fold.
 */
export const DEGENERATE = 1e-30;

/**
 * The taps Γ is built from: g from labels sampled from the model ('mc', the true Fisher) or the
 * batch's labels ('empirical').
 */
export function fisherTaps(
  ctx: {
    readonly taps: readonly LayerTap[];
    readonly key: Tensor;
    readonly params: ParamTree;
    output(p: ParamTree): Tensor;
    tapsFor(labels: Tensor): readonly LayerTap[];
  },
  fisher: string,
  layers: number,
  op: string,
): readonly LayerTap[] {
  const taps =
    fisher === 'mc'
      ? ctx.tapsFor(categorical(foldIn(ctx.key, 1), stopGradient(ctx.output(ctx.params))))
      : ctx.taps;
  if (taps.length !== layers)
    throw new GrngError(
      op,
      `the model has ${taps.length} dense layers but the state was made for ${layers}`,
    );
  return taps;
}

/**
 * The factor EMAs after this step: refreshed from the tap's statistics on steps where the
 * `covEvery` period is active, unchanged otherwise. With factorInit 'first' the first step takes
 * the statistics themselves; with statDecay 0 every refresh does (0·old + 1·fresh is fresh
 * exactly).
 */
export function updatedFactors(
  tap: LayerTap,
  old: LayerState,
  options: {
    readonly first: Tensor;
    readonly decay: Tensor;
    readonly factorInit: string;
    readonly covEvery: number;
    readonly weightSharing: string;
    every<T>(period: number, work: () => T, otherwise: () => T): T;
  },
): [Tensor, Tensor] {
  const fresh = kroneckerFactors(tap, options.weightSharing === 'reduce' ? 'reduce' : 'expand');
  const average = (prev: Tensor, stat: Tensor) =>
    options.factorInit === 'first'
      ? where(options.first, stat, ema(prev, stat, options.decay))
      : ema(prev, stat, options.decay);
  return options.every(
    options.covEvery,
    () => [average(old.lambda, fresh.lambda), average(old.gamma, fresh.gamma)],
    () => [old.lambda, old.gamma],
  );
}

/** Looks up a parameter's gradient by identity (taps carry the layer's parameter tensors). */
export function gradientLookup(
  params: ParamTree,
  grads: ParamTree,
  op: string,
): (p: Tensor) => Tensor {
  const leaves = flattenTree(op, params, isTensor, 'a Tensor').leaves;
  const gradLeaves = flattenTree(op, grads, isTensor, 'a Tensor').leaves;
  return (p) => gradLeaves[leaves.findIndex((l) => l.node === p.node)];
}

/** The layer gradient [∂L/∂W | ∂L/∂b] (d_out×d_in, the bias last) from the parameter gradients. */
export function layerGrad(tap: LayerTap, gradOf: (p: Tensor) => Tensor): Tensor {
  const gw = reshape(gradOf(tap.w), [
    tap.w.shape[0],
    layerMatrixShape({ ...tap, b: undefined })[1],
  ]);
  return tap.b === undefined ? gw : concat([gw, expandDims(gradOf(tap.b), 1)], 1);
}

/**
 * Splits each layer's direction [V_W | V_b] back onto its parameters: parameter node → direction.
 */
export function layerDirections(
  layers: readonly { readonly tap: LayerTap; readonly v: Tensor }[],
): Map<Tensor['node'], Tensor> {
  const direction = new Map<Tensor['node'], Tensor>();
  for (const { tap, v } of layers) {
    const [dOut, dIn] = layerMatrixShape({ ...tap, b: undefined });
    direction.set(tap.w.node, reshape(slice(v, [0, 0], [dOut, dIn]), tap.w.shape));
    if (tap.b !== undefined)
      direction.set(tap.b.node, reshape(slice(v, [0, dIn], [dOut, dIn + 1]), [dOut]));
  }
  return direction;
}

/**
 * K-FAC's KL clip ν = min(1, √(κ / (η² Σ⟨V, G⟩))) over all layers; a non-positive Σ leaves ν = 1.
 */
export function klClipFactor(
  layers: readonly { readonly g: Tensor; readonly v: Tensor }[],
  lr: Tensor,
  klClip: Tensor,
): Tensor {
  const inner = layers.reduce<Tensor>((acc, l) => add(acc, sum(mul(l.v, l.g))), zeros([]));
  const quota = mul(mul(lr, lr), inner);
  return where(le(quota, 0), 1, minimum(1, sqrt(div(klClip, maximum(quota, 1e-30)))));
}

/**
 * Warm-started inverse of a damped SPD factor `a` by guarded Newton–Schulz, λ_max by warm-started
 * power iteration: the inverse, the new power vector, the residual ‖I − A X‖_F and the fallback
 * flag.
 */
export function dampedInverse(
  a: Tensor,
  options: {
    readonly x0?: Tensor;
    readonly v0: Tensor;
    readonly iterations: number;
    readonly powerSteps: number;
  },
) {
  const top = powerIteration(a, powerRestart(options.v0), options.powerSteps);
  const inverse = guardedInverse(a, {
    lambdaMax: top.value,
    x0: options.x0,
    iterations: options.iterations,
    extra: options.iterations,
    tolerance: 1e-3,
  });
  return { ...inverse, vector: top.vector };
}

/**
 * Martens and Grosse's π = √((tr Λ/d_in)/(tr Γ/d_out)): an isotropic λ splits into π√λ on Λ and
 * √λ/π on Γ, so that the two damped factors' Kronecker product dominates λ·I whatever their scales.
 * The roots are taken before the division: a zero Γ (mean eigenvalue floored at 1e-30) beside a Λ
 * whose mean eigenvalue passes ~3e8 would overflow float32 in the quotient, and ∞·0 is NaN.
 */
export function piRule(lambda: Tensor, gamma: Tensor): Tensor {
  const meanEig = (f: Tensor) => maximum(div(trace(f), f.shape[0]), 1e-30);
  return div(sqrt(meanEig(lambda)), sqrt(meanEig(gamma)));
}

/**
 * Inverses of the factored-Tikhonov damped factors Λ + π√λ I and Γ + (√λ/π) I, with
 * π = √((tr Λ / d_in) / (tr Γ / d_out)) (Martens & Grosse's π-rule), by Newton–Schulz warm-started
 * from the previous inverses (unless `warmStart` is false), λ_max by warm-started power iteration;
 * I for a degenerate factor (docs/algorithms.md §3.3).
 */
export function piRuleInverses(
  lambda: Tensor,
  gamma: Tensor,
  old: LayerState,
  damping: Tensor,
  iterations: number,
  powerSteps: number,
  warmStart = true,
) {
  const [dIn, dOut] = [lambda.shape[0], gamma.shape[0]];
  const pi = piRule(lambda, gamma);
  const root = sqrt(damping);
  const lambdaD = add(lambda, mul(mul(pi, root), eye(dIn)));
  const gammaD = add(gamma, mul(div(root, pi), eye(dOut)));
  // The π-rule balances the two factors' scales; with either one zero, Λ ⊗ Γ = 0 and the split
  // means nothing, so the layer goes unpreconditioned on both sides (docs/algorithms.md §3.3).
  const meanEig = (f: Tensor) => div(trace(f), f.shape[0]);
  const degenerate = le(minimum(meanEig(lambda), meanEig(gamma)), DEGENERATE);
  const inverseOf = (damped: Tensor, x0: Tensor, v0: Tensor) =>
    unlessDegenerate(
      degenerate,
      dampedInverse(damped, { x0: warmStart ? x0 : undefined, v0, iterations, powerSteps }),
    );
  const l = inverseOf(lambdaD, old.lambdaInv, old.lambdaVec);
  const g = inverseOf(gammaD, old.gammaInv, old.gammaVec);
  return {
    lambdaInv: l.inverse,
    gammaInv: g.inverse,
    lambdaVec: l.vector,
    gammaVec: g.vector,
    fellBack: maximum(l.fellBack, g.fellBack),
    residual: maximum(l.residual, g.residual),
    damping: [mul(pi, root), div(root, pi)] as const,
  };
}

/**
 * I in place of a damped inverse where the layer is `degenerate`: otherwise the damping alone
 * would be inverted, nothing at all when λ = 0 (RING's 'grad_norm' with G = 0, e.g. LoRA's A at
 * B = 0), or √λ/π ~ 1e-15·√λ on a zero Γ beside a nonzero Λ; and the other factor, singular with
 * λ = 0, would have no inverse either.
 */
function unlessDegenerate(
  degenerate: Tensor,
  damped: { inverse: Tensor; vector: Tensor; residual: Tensor; fellBack: Tensor },
) {
  const n = damped.inverse.shape[0];
  return {
    inverse: where(degenerate, eye(n), damped.inverse),
    vector: damped.vector,
    residual: where(degenerate, 0, damped.residual),
    fellBack: where(degenerate, 0, damped.fellBack),
  };
}

/**
 * V = Γ⁻¹ G Λ⁻¹: the Kronecker-preconditioned layer gradient. A d_in that is not a multiple of 4
 * (the bias column: 785, 257) is computed as the first d_in columns of Γ⁻¹ (G [Λ⁻¹ | 0]), [Λ⁻¹ | 0]
 * the top rows of blockdiag(Λ⁻¹, I): the same sums plus exact zeros, on the vec4 matmul kernel.
 */
export function precondition(gammaInv: Tensor, g: Tensor, lambdaInv: Tensor): Tensor {
  const [dOut, dIn] = g.shape;
  const padded = blockWithIdentity(dIn)(lambdaInv);
  if (padded === lambdaInv) return matmul(matmul(gammaInv, g), lambdaInv);
  const right = slice(padded, [0, 0], [dIn, padded.shape[1]]);
  return slice(matmul(gammaInv, matmul(g, right)), [0, 0], [dOut, dIn]);
}
