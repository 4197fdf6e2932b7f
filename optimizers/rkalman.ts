// R-Kalman, the Regularized Kalman variant (docs/algorithms.md §5): an extended Kalman filter over
// a chosen subset of the parameters (the head, LoRA matrices, or all of a small model), with fading
// memory β, the model's outputs as observations through an adapter — (A) 'softmax': the
// exponential-family observation that makes the filter exactly online natural gradient; (B)
// 'scalar': p(y|x) against 1; (C) 'gaussian': regression outputs — and gradient regularization
// through the observation noise R·(1 + ρ‖ḡ‖²) ('noise', the default) or a pseudo-observation of
// precision m·ρ‖ḡ‖² ('precision', exactly regularized online NGD, §5.3). The only factorization is
// the Cholesky of the innovation covariance S (observation dimension), never a parameter-sized
// inverse (except the 'precision' pseudo-observation of a full covariance, whose observation is the
// parameter vector itself). Parameters outside the subset take a momentum-SGD step or stay frozen.
import {
  add,
  cast,
  choleskySolve,
  concat,
  constant,
  div,
  eq,
  expandDims,
  eye,
  gt,
  iota,
  le,
  matmul,
  maximum,
  minimum,
  mT,
  mul,
  oneHot,
  ones,
  reshape,
  slice,
  softmax,
  sqnorm,
  sub,
  sum,
  where,
  zeros,
  zerosLike,
  type Tensor,
  GrngError,
  flattenTree,
} from '../dsl/index.js';
import { vjp } from '../dsl/transforms.js';
import { denseSampleRows, rowByRow, type SampleRows } from './sample-jacobian.js';
import { defineOptimizer, outside, treeMap, type ParamTree } from '../dsl/optimizer.js';
import { isTensor } from '../dsl/tensor.js';
import { leafPaths as treeLeafPaths, underAny } from '../dsl/index.js';

const HYPER = {
  /**
   * Forgetting factor β ∈ (0, 1]: P ← P/β each step (1: no forgetting); the NGD step size is 1 − β.
   */
  beta: 0.96,
  /** Gradient-regularization strength ρ. */
  rho: 1e-2,
  /** Prior variance σ₀: P₀ = σ₀·I (σ₀² when sigma0IsStd). */
  sigma0: 0.2,
  sigma0IsStd: false,
  /**
   * 'softmax' (A, class logits), 'scalar' (B, p(y|x) against 1), 'gaussian' (C, regression
   * outputs).
   */
  adapter: 'softmax',
  /**
   * 'noise': R ← R(1 + ρ‖ḡ‖²); 'precision': a pseudo-observation of precision m·ρ‖ḡ‖² on the state.
   */
  grMode: 'noise',
  /** 'diagonal': P as a vector (large subsets); 'full': P as a matrix (small models, tests). */
  covariance: 'diagonal',
  /** Step scale on the Kalman mean update (1: the filter itself). */
  alpha: 1,
  /** Observation noise variance σ_R² for adapters 'scalar' and 'gaussian'. */
  obsNoise: 1,
  /**
   * The Kalman-managed parameters: 'all', 'head' (the last dense layer) or comma-separated path
   * prefixes such as 'layers.1'.
   */
  params: 'head',
  /** The other parameters: 'sgd' (momentum SGD with lr and momentum) or 'none' (frozen). */
  fallback: 'sgd',
  lr: 1e-2,
  momentum: 0.9,
  /**
   * Added to R's diagonal for adapter A: R = diag(p') − p'p'ᵀ is singular when a probability
   * vanishes (§5.2). docs/algorithms.md's 1e-12 is a float64 guard; in float32 (WebGPU) a confident
   * model's S = HPHᵀ + R loses positive definiteness to rounding below ~1e-7·‖R‖ ≤ 2.5e-8 and the
   * Cholesky returns NaN (seen on Fashion-MNIST at step ~600), so the default is 1e-6.
   */
  jitter: 1e-6,
  /**
   * Diagonal covariance only: after the prediction P/β, variances are capped at this (0: no cap).
   * Fading memory inflates the variance of directions the data never informs by β⁻ᵗ without bound
   * ("covariance wind-up"); when such a direction is finally observed the gain is huge. A cap at
   * the prior σ₀ is the usual remedy; it breaks the exact NGD equivalence (§5.3) once it binds.
   */
  varianceCap: 0,
};
/** Diagonal variances are kept at or above this; each clamp is counted (§5.4). */
const FLOOR = 1e-30;

const leafPaths = (tree: unknown): string[] => treeLeafPaths('rkalman', tree, isTensor, 'a Tensor');

/** Positions (in flattenTree order) of the leaves R-Kalman manages. */
function managedPositions(
  params: ParamTree,
  selection: string,
  lastLayer: { readonly w: Tensor; readonly b?: Tensor } | undefined,
): number[] {
  const leaves = flattenTree('rkalman', params, isTensor, 'a Tensor').leaves;
  let chosen: number[];
  if (selection === 'all') chosen = leaves.map((_, i) => i);
  else if (selection === 'head') {
    if (lastLayer === undefined)
      throw new GrngError(
        'rkalman',
        "params: 'head' needs a model with dense layers (nn.dense, nn.mlp); " +
          'name the parameters by path instead',
      );
    chosen = leaves.flatMap((l, i) =>
      l.node === lastLayer.w.node || l.node === lastLayer.b?.node ? [i] : [],
    );
  } else {
    const prefixes = selection.split(',').map((s) => s.trim());
    const paths = leafPaths(params);
    chosen = paths.flatMap((p, i) => (underAny(prefixes, p) ? [i] : []));
    if (chosen.length === 0)
      throw new GrngError(
        'rkalman',
        `params '${selection}' matches no parameter; the paths are ${paths.join(', ')}`,
      );
  }
  return chosen;
}

const sizeOf = (t: Tensor) => t.shape.reduce((a, d) => a * d, 1);
const flat = (ts: readonly Tensor[]) =>
  concat(
    ts.map((t) => reshape(t, [sizeOf(t)])),
    0,
  );

export const rkalman = defineOptimizer({
  name: 'rkalman',
  hyper: HYPER,
  validate: (h) =>
    outside('beta', h.beta, Number.MIN_VALUE, 1, true) ??
    outside('rho', h.rho, 0, Infinity) ??
    outside('sigma0', h.sigma0, Number.MIN_VALUE, Infinity) ??
    outside('alpha', h.alpha, 0, Infinity) ??
    outside('obsNoise', h.obsNoise, Number.MIN_VALUE, Infinity) ??
    outside('lr', h.lr, 0, Infinity) ??
    outside('momentum', h.momentum, 0, 1) ??
    outside('jitter', h.jitter, 0, Infinity) ??
    outside('varianceCap', h.varianceCap, 0, Infinity) ??
    (h.varianceCap > 0 && h.covariance === 'full'
      ? 'varianceCap applies to the diagonal covariance only'
      : undefined) ??
    (!['softmax', 'scalar', 'gaussian'].includes(h.adapter)
      ? `adapter must be 'softmax', 'scalar' or 'gaussian', got '${h.adapter}'`
      : undefined) ??
    (h.grMode !== 'noise' && h.grMode !== 'precision'
      ? `grMode must be 'noise' or 'precision', got '${h.grMode}'`
      : undefined) ??
    (h.covariance !== 'diagonal' && h.covariance !== 'full'
      ? `covariance must be 'diagonal' or 'full', got '${h.covariance}'`
      : undefined) ??
    (h.fallback !== 'sgd' && h.fallback !== 'none'
      ? `fallback must be 'sgd' or 'none', got '${h.fallback}'`
      : undefined) ??
    (h.params.trim() === ''
      ? "params must be 'all', 'head' or parameter path prefixes"
      : undefined),
  init: (params, h, layers) => {
    const leaves = flattenTree('rkalman', params, isTensor, 'a Tensor').leaves;
    const n = managedPositions(params, h.params, layers[layers.length - 1]).reduce(
      (acc, i) => acc + sizeOf(leaves[i]),
      0,
    );
    const prior = h.sigma0IsStd ? h.sigma0 * h.sigma0 : h.sigma0;
    return {
      covariance: h.covariance === 'full' ? mul(prior, eye(n)) : add(zeros([n]), prior),
      velocity: treeMap(zerosLike, params),
      /** Diagonal variances clamped to 1e-30 after rounding made them non-positive (a count). */
      clamped: zeros([]) as Tensor,
    };
  },
  report: { clamped: (state) => state.clamped },
  update: (ctx) => {
    const { params, grads, state, hyper, settings, map } = ctx;
    const { leaves, rebuild } = flattenTree('rkalman', params, isTensor, 'a Tensor');
    const taps = settings.params === 'head' ? ctx.taps : [];
    const positions = managedPositions(params, settings.params, taps[taps.length - 1]);
    const managed = positions.map((i) => leaves[i]);
    const n = managed.reduce((acc, t) => acc + sizeOf(t), 0);
    const full = settings.covariance === 'full';
    const expected = full ? [n, n] : [n];
    if (
      state.covariance.shape.length !== expected.length ||
      state.covariance.shape.some((d, i) => d !== expected[i])
    ) {
      throw new GrngError(
        'rkalman',
        `the covariance in the state is [${state.covariance.shape.join(', ')}] ` +
          `but the managed parameters need [${expected.join(', ')}]`,
      );
    }
    const m = ctx.labels.shape[0];

    // Prediction with fading memory: P ← P/β.
    let p = div(state.covariance, hyper.beta);
    if (!full)
      p = where(
        gt(hyper.varianceCap, 0),
        minimum(p, where(gt(hyper.varianceCap, 0), hyper.varianceCap, 1)),
        p,
      );
    // ‖ḡ‖² over every trainable parameter, at the predicted mean (the batch's true labels).
    const gradNorm2 = flattenTree('rkalman', grads, isTensor, 'a Tensor').leaves.reduce<Tensor>(
      (acc, g) => add(acc, sqnorm(g)),
      zeros([]),
    );
    if (settings.grMode === 'precision') {
      const r = mul(mul(m, hyper.rho), gradNorm2);
      if (full) {
        // The pseudo-observation of the state with precision r: P' = P − P(P + I/r)⁻¹P (none when r
        // = 0).
        const positive = gt(r, 0);
        const s = add(p, div(eye(n), where(positive, r, 1)));
        p = where(positive, symmetrize(sub(p, matmul(p, choleskySolve(s, p)))), p);
      } else p = div(p, add(1, mul(r, p))); // 1/(1/p + r), exactly p when r = 0 (KF8)
    }

    // Observations: the adapter's rows of H = ∂h/∂θ_K, e and R. H's rows come a whole batch per
    // backward pass when the managed parameters are dense layers' (sample-jacobian.ts), else one
    // vector-Jacobian product per sample.
    const substitute = (ks: readonly Tensor[]) =>
      rebuild(
        leaves.map((l, i) => (positions.includes(i) ? ks[positions.indexOf(i)] : l)),
      ) as ParamTree;
    const [z, pullback] = vjp((ks: Tensor[]) => ctx.output(substitute(ks)), managed);
    const row = (cotangent: Tensor) => flat(pullback(cotangent)[0] as Tensor[]);
    const rows =
      denseSampleRows(() => ctx.output(params), managed) ?? rowByRow(row, ctx.labels.shape[0]);
    const { adapter } = settings;
    const observation = observe(adapter, z, ctx.labels, hyper.obsNoise, rows, hyper.jitter);
    let { r } = observation;
    const { h, e } = observation;
    if (settings.grMode === 'noise') r = mul(r, add(1, mul(hyper.rho, gradNorm2)));

    // S = H P Hᵀ + R; K = P Hᵀ S⁻¹ through a Cholesky solve of S only.
    const ph = full ? matmul(p, mT(h)) : mul(expandDims(p, 1), mT(h)); // P Hᵀ [n, d]
    const s = add(matmul(h, ph), r);
    const sInvE = choleskySolve(s, reshape(e, [sizeOf(e), 1]));
    const step = mul(hyper.alpha, reshape(matmul(ph, sInvE), [n])); // K e
    const sInvHP = choleskySolve(s, mT(ph)); // S⁻¹ H P [d, n]
    let clamped = state.clamped;
    let posterior: Tensor;
    if (full) posterior = symmetrize(sub(p, matmul(ph, sInvHP)));
    else {
      const shrunk = sub(p, sum(mul(mT(ph), sInvHP), [0])); // diag(P H ᵀS⁻¹ H P)
      clamped = add(clamped, sum(cast(le(shrunk, 0), 'f32')));
      posterior = maximum(shrunk, FLOOR);
    }

    // The managed parameters move by K e; the others take the fallback step.
    const deltas = new Map<number, Tensor>();
    let offset = 0;
    positions.forEach((i) => {
      const size = sizeOf(leaves[i]);
      deltas.set(i, reshape(slice(step, [offset], [offset + size]), leaves[i].shape));
      offset += size;
    });
    const index = new Map(leaves.map((l, i) => [l.node, i] as const));
    const frozen = settings.fallback === 'none';
    const velocity = map(
      (v, g) => (frozen ? v : add(mul(hyper.momentum, v), g)),
      state.velocity,
      grads,
    );
    const next = map(
      (theta, v) => {
        const delta = deltas.get(index.get(theta.node) as number);
        if (delta !== undefined) return add(theta, delta);
        return frozen ? theta : sub(theta, mul(hyper.lr, v));
      },
      params,
      velocity,
    );
    return { params: next, state: { covariance: posterior, velocity, clamped } };
  },
});

function symmetrize(a: Tensor): Tensor {
  return div(add(a, mT(a)), 2);
}

/**
 * H (rows of ∂h/∂θ_K), the innovation e and the noise R of one minibatch for an adapter; `rows`
 * maps an output cotangent u [m, C] to the per-sample Jacobian rows J_nᵀu_n [m, P] over the managed
 * parameters (sample-jacobian.ts).
 * Exported for the property tests (docs/algorithms.md §8.4 KF4); not part of the public API.
 */
export function observe(
  adapter: string,
  z: Tensor,
  labels: Tensor,
  obsNoise: Tensor,
  rows: SampleRows,
  jitter: Tensor | number = 1e-12,
): { h: Tensor; e: Tensor; r: Tensor } {
  const [m, classes] = z.rank === 1 ? [z.shape[0], 1] : [z.shape[0], z.shape[1]];
  if (adapter === 'gaussian') {
    // h = the outputs themselves; rows ∂z_{n,c}/∂θ.
    const outputs = reshape(z, [m, classes]);
    const unit = (c: number) =>
      reshape(mul(ones([m, 1]), cast(eq(iota([1, classes], 1), c), 'f32')), z.shape); // e_c, every n
    const h = sampleMajor(Array.from({ length: classes }, (_, c) => rows(unit(c))));
    const e = reshape(sub(reshape(cast(labels, 'f32'), [m, classes]), outputs), [m * classes]);
    return { h, e, r: mul(obsNoise, eye(m * classes)) };
  }
  if (z.rank !== 2)
    throw new GrngError(
      'rkalman',
      `adapter '${adapter}' needs class logits [B, C], got [${z.shape.join(', ')}]`,
    );
  const probs = softmax(z);
  const target = oneHot(labels, classes);
  if (adapter === 'scalar') {
    // ŷ_n = p(y_n | x_n) against 1; ∂ŷ_n/∂z_n = p_{y_n}(e_{y_n} − p_n) = row y_n of M_n.
    const py = sum(mul(probs, target), [1], true); // [m, 1]
    const dpdz = mul(py, sub(target, probs)); // [m, C]
    return { h: rows(dpdz), e: reshape(sub(1, py), [m]), r: mul(obsNoise, eye(m)) };
  }
  // (A) the first C − 1 one-hot coordinates: ŷ' = p', R_n = diag(p') − p'p'ᵀ, H_n = M_n[:C−1, :]
  // J_n.
  const k = classes - 1;
  const h = sampleMajor(
    Array.from({ length: k }, (_, c) => {
      const pc = slice(probs, [0, c], [m, c + 1]); // [m, 1]
      // row c of M_n, every n
      return rows(mul(pc, sub(cast(eq(iota([1, classes], 1), c), 'f32'), probs)));
    }),
  );
  const pPrime = reshape(slice(probs, [0, 0], [m, k]), [m * k]);
  const e = sub(reshape(slice(target, [0, 0], [m, k]), [m * k]), pPrime);
  // Block diagonal over samples: diag(p') − p'p'ᵀ within each sample's k×k block.
  const blocks = constant(
    Float64Array.from({ length: (m * k) ** 2 }, (_, i) =>
      Math.floor(Math.floor(i / (m * k)) / k) === Math.floor((i % (m * k)) / k) ? 1 : 0,
    ),
    [m * k, m * k],
  );
  const cross = mul(blocks, matmul(expandDims(pPrime, 1), expandDims(pPrime, 0)));
  const r = add(sub(mul(eye(m * k), expandDims(pPrime, 1)), cross), mul(jitter, eye(m * k)));
  return { h, e, r };
}

/** Per-class blocks of rows [m, P] as H [m·k, P] with sample n's k rows together (n-major). */
function sampleMajor(blocks: readonly Tensor[]): Tensor {
  const [m, p] = blocks[0].shape;
  const stacked = concat(
    blocks.map((b) => expandDims(b, 1)),
    1,
  ); // [m, k, P]
  return reshape(stacked, [m * blocks.length, p]);
}
