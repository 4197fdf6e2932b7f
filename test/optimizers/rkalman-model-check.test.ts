// R-Kalman (docs/algorithms.md §5) through grng/testing's checkTrainingOptimizer: compiled training
// steps on random dense/LoRA models against a float64 reference written from §5.2 in the
// information form (P⁻¹ ← β·P⁻¹ + r·I + HᵀR⁻¹H, μ ← μ + α·P·HᵀR⁻¹e; Gaussian elimination, where
// grng runs the covariance form with Cholesky solves of S). The Jacobian rows come from the taps,
// not from autodiff of the output: row c of M_n J_n is p_c(e_c − p_n)ᵀJ_n = −p_c·∇ℓ_n(y = c)ᵀ, and
// the per-sample gradient ∇ℓ_n(y = c) of a dense layer is g_n a_nᵀ in the taps of labels all c.
//
// Adapter C ('gaussian') runs on the checker's regression problems (task 'regression': real
// targets [B, C], meanSquaredError); its rows ∂z_{n,c}/∂θ come from the engine's output
// vector-Jacobian products ctx.outputVjp(e_{n,c}).
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { rkalman } from '../../index.js';
import {
  checkTrainingOptimizer,
  type TrainingReferenceContext,
  type TrainingTap,
} from '../../testing.js';
import { gpuDevice } from '../support/gpu.js';
import { eye, inverse, matmul, solve, transpose } from './rkalman-reference.js';

type RkalmanHyper = ReturnType<typeof rkalman>['hyper'];
type Context = TrainingReferenceContext<RkalmanHyper>;
interface State {
  /** Full P: the information matrix P⁻¹ [n × n]; diagonal P: the variances p [n]. */
  readonly covariance: Float64Array;
  /** The fallback's momentum buffers, one per leaf. */
  readonly velocity: Float64Array[];
}

/** Leaf indices of θ_K (§5.2 "Which parameters"), in flattenTree order. */
function managedLeaves(ctx: Context): number[] {
  const selection = ctx.hyper.params;
  if (selection === 'all') return ctx.names.map((_, i) => i);
  if (selection === 'head') {
    const last = ctx.taps[ctx.taps.length - 1];
    return last.b === undefined ? [last.w] : [last.w, last.b].sort((a, b) => a - b);
  }
  const prefixes = selection.split(',').map((s) => s.trim());
  return ctx.names.flatMap((name, i) =>
    prefixes.some((q) => name === q || name.startsWith(`${q}.`)) ? [i] : [],
  );
}

/**
 * ∇_{θ_K} ℓ_n for every sample [batch × size]: a layer's per-sample gradient is g_n a_nᵀ, since
 * its taps' g is already B·∂L/∂s = ∂ℓ_n/∂s_n (the bias takes the ones column of a).
 */
function perSampleGradients(
  taps: readonly TrainingTap[],
  offsets: ReadonlyMap<number, number>,
  batch: number,
  size: number,
): Float64Array {
  const out = new Float64Array(batch * size);
  for (const tap of taps) {
    const inputs = tap.b === undefined ? tap.in : tap.in - 1;
    const w = offsets.get(tap.w);
    const b = tap.b === undefined ? undefined : offsets.get(tap.b);
    for (let n = 0; n < batch; n++) {
      for (let o = 0; o < tap.out; o++) {
        const g = tap.g[n * tap.out + o];
        if (w !== undefined)
          for (let j = 0; j < inputs; j++)
            out[n * size + w + o * inputs + j] = g * tap.a[n * tap.in + j];
        if (b !== undefined) out[n * size + b + o] = g * tap.a[n * tap.in + inputs];
      }
    }
  }
  return out;
}

/** Row-wise softmax of logits [batch × classes]. */
function softmax(z: Float64Array, batch: number, classes: number): Float64Array {
  const p = new Float64Array(z.length);
  for (let n = 0; n < batch; n++) {
    const row = z.subarray(n * classes, (n + 1) * classes);
    const top = Math.max(...row);
    const total = row.reduce((s, v) => s + Math.exp(v - top), 0);
    row.forEach((v, c) => (p[n * classes + c] = Math.exp(v - top) / total));
  }
  return p;
}

/**
 * H [d × size], e [d] and R [d × d] of adapter A (first C − 1 one-hot coordinates; R_n = diag p′ −
 * p′p′ᵀ + jitter·I) or B (p(y_n|x_n) against 1; R = σ_R²·I), before gradient regularization.
 */
function observation(ctx: Context, offsets: ReadonlyMap<number, number>, size: number) {
  const { batch: m, classes: C, hyper: h } = ctx;
  if (h.adapter === 'gaussian') return gaussianObservation(ctx, offsets, size);
  const p = softmax(ctx.output(), m, C);
  const gradientsFor = (c: number) =>
    perSampleGradients(ctx.tapsFor(new Int32Array(m).fill(c)), offsets, m, size);
  if (h.adapter === 'scalar') {
    const own = perSampleGradients(ctx.taps, offsets, m, size);
    const rows = new Float64Array(m * size);
    const e = new Float64Array(m);
    for (let n = 0; n < m; n++) {
      const py = p[n * C + ctx.labels[n]];
      for (let i = 0; i < size; i++) rows[n * size + i] = -py * own[n * size + i];
      e[n] = 1 - py;
    }
    return { h: rows, e, r: eye(m, h.obsNoise), d: m };
  }
  const k = C - 1;
  const d = m * k;
  const rows = new Float64Array(d * size);
  const e = new Float64Array(d);
  const r = eye(d, h.jitter);
  for (let c = 0; c < k; c++) {
    const grads = gradientsFor(c);
    for (let n = 0; n < m; n++) {
      const pc = p[n * C + c];
      for (let i = 0; i < size; i++) rows[(n * k + c) * size + i] = -pc * grads[n * size + i];
      e[n * k + c] = (ctx.labels[n] === c ? 1 : 0) - pc;
      for (let b = 0; b < k; b++)
        r[(n * k + c) * d + n * k + b] += (b === c ? pc : 0) - pc * p[n * C + b];
    }
  }
  return { h: rows, e, r, d };
}

/** Adapter C: h = z, so H's row (n, c) is ∂z_{n,c}/∂θ_K; e = y − z and R = σ_R²·I. */
function gaussianObservation(ctx: Context, offsets: ReadonlyMap<number, number>, size: number) {
  const z = ctx.output();
  const d = z.length;
  const rows = new Float64Array(d * size);
  for (let j = 0; j < d; j++) {
    const unit = new Float64Array(d);
    unit[j] = 1;
    const vjp = ctx.outputVjp(unit);
    for (const [leaf, at] of offsets) rows.set(vjp[leaf], j * size + at);
  }
  const e = z.map((zj, j) => ctx.labels[j] - zj);
  return { h: rows, e, r: eye(d, ctx.hyper.obsNoise), d };
}

/** One R-Kalman step from §5.2; `rhoScale` ≠ 1 is the deliberately wrong reference. */
const reference =
  (rhoScale = 1) =>
  (ctx: Context, state: State | undefined) => {
    const h = ctx.hyper;
    const rho = rhoScale * h.rho;
    const leaves = managedLeaves(ctx);
    const offsets = new Map<number, number>();
    let size = 0;
    for (const k of leaves) {
      offsets.set(k, size);
      size += ctx.params[k].length;
    }
    const full = h.covariance === 'full';
    const p0 = h.sigma0IsStd ? h.sigma0 * h.sigma0 : h.sigma0;
    const previous =
      state?.covariance ?? (full ? eye(size, 1 / p0) : new Float64Array(size).fill(p0));
    // ‖ḡ‖² over every trainable parameter at the current mean, true labels.
    const gradNorm2 = ctx.grads.reduce((s, g) => s + g.reduce((t, x) => t + x * x, 0), 0);
    const r = h.grMode === 'precision' ? ctx.batch * rho * gradNorm2 : 0;
    // The prior precision P′⁻¹ after prediction (P/β), cap (diagonal only) and pseudo-observation.
    let prior: Float64Array;
    if (full) {
      prior = previous.map((v) => h.beta * v);
      for (let i = 0; i < size; i++) prior[i * size + i] += r;
    } else {
      const predicted = previous.map((v) => v / h.beta);
      const capped =
        h.varianceCap > 0 ? predicted.map((v) => Math.min(v, h.varianceCap)) : predicted;
      prior = eye(size, 0);
      capped.forEach((v, i) => (prior[i * size + i] = 1 / v + r));
    }
    const obs = observation(ctx, offsets, size);
    const noise = h.grMode === 'noise' ? obs.r.map((v) => v * (1 + rho * gradNorm2)) : obs.r;
    const ht = transpose(obs.h, obs.d, size);
    const information = matmul(ht, solve(noise, obs.h, obs.d, size), size, obs.d, size);
    const posterior = prior.map((v, i) => v + information[i]);
    const step = solve(
      posterior,
      matmul(ht, solve(noise, obs.e, obs.d, 1), size, obs.d, 1),
      size,
      1,
    );
    let covariance = posterior;
    if (!full) {
      const inv = inverse(posterior, size);
      covariance = Float64Array.from({ length: size }, (_, i) =>
        Math.max(inv[i * size + i], 1e-30),
      );
    }
    const velocity = ctx.grads.map((g, k) =>
      g.map((x, i) => (state === undefined ? 0 : h.momentum * state.velocity[k][i]) + x),
    );
    const params = ctx.params.map((theta, k) => {
      const at = offsets.get(k);
      if (at !== undefined) return theta.map((x, i) => x + h.alpha * step[at + i]);
      if (h.fallback === 'none') return Float64Array.from(theta);
      return theta.map((x, i) => x - h.lr * velocity[k][i]);
    });
    return { params, state: { covariance, velocity } };
  };

// ρ·‖ḡ‖² of order 0.1–1 on these |values| ≤ 1 models, so 1 % of ρ moves R (or r) by ≳ 1e-4 and
// the step by far more than the tolerance; ρ = 0 checks the skipped pseudo-observation. β = 1 and
// β < 1, σ₀ as variance and as std, α ≠ 1, both adapters and four parameter selections.
const common = {
  adapter: fc.constantFrom('softmax', 'scalar'),
  // A prefix, and two exact leaf paths in a comma list with a space (every model's first layer
  // has one of w and a).
  params: fc.constantFrom('head', 'all', 'layers.0', 'layers.0.w, layers.0.a'),
  fallback: fc.constantFrom('sgd', 'none'),
  beta: fc.constantFrom(0.9, 1),
  rho: fc.constantFrom(1, 0.1, 0),
  sigma0: fc.constantFrom(0.2, 1),
  sigma0IsStd: fc.boolean(),
  alpha: fc.constantFrom(1, 0.5),
  obsNoise: fc.constantFrom(1, 0.3),
  jitter: fc.constantFrom(1e-6, 1e-2),
  lr: fc.constantFrom(0.1),
  momentum: fc.constantFrom(0.9, 0),
};

const modes = [
  { covariance: 'diagonal', grMode: 'noise' },
  { covariance: 'diagonal', grMode: 'precision' },
  { covariance: 'full', grMode: 'noise' },
  { covariance: 'full', grMode: 'precision' },
] as const;

// A cold Mesa shader cache (a new machine; MESA_SHADER_CACHE_DISABLE=true) compiles every problem's
// kernels on llvmpipe: measured 134 s for the full-P check beside another job, over vitest's 120 s.
const WEBGPU_TIMEOUT = 300_000;

describe('rkalman through checkTrainingOptimizer', () => {
  for (const mode of modes) {
    test(`${mode.covariance} P, grMode '${mode.grMode}' equals the §5.2 reference; ρ 1 % off fails`, async () => {
      const lines: string[] = [];
      const settings = fc.record({
        ...common,
        // The cap binds from step 1 when σ₀ = 1 and only on poorly observed coordinates when 0.2.
        varianceCap: mode.covariance === 'diagonal' ? fc.constantFrom(0, 0.21) : fc.constant(0),
      });
      const options = { hyper: mode, settings, log: (l: string) => lines.push(l) };
      const started = performance.now();
      const ok = await checkTrainingOptimizer(rkalman(), reference(), options);
      console.log(
        `${lines[0]} [${mode.covariance}, ${mode.grMode}] → worst error ` +
          `${ok.worstError.toExponential(2)} (${((performance.now() - started) / 1000).toFixed(1)} s)`,
      );
      // Either form computes the step x solving (P′⁻¹ + HᵀR⁻¹H)x = HᵀR⁻¹e, so both are off by
      // ≲ n·κ·ε·|x| with κ that matrix's condition: its floor is β³/σ₀′ ≥ 0.73 (σ₀′ ≤ 1; β ≥ 0.9, 3
      // steps), its top 1/σ₀′ + r + ‖Σ_n J_nᵀM_nJ_n‖ (KF4), so κ ≲ 30 on these |values| ≤ 1 models
      // (measured ≤ 17 over 720 problems); n ≤ 39, |x| < 1: 3·39·30·1.1e-16 ≈ 4e-13 over 3 steps.
      expect(ok.worstError).toBeLessThan(1e-12);
      await expect(checkTrainingOptimizer(rkalman(), reference(1.01), options)).rejects.toThrow(
        /rkalman differs from the reference[^]*Shrunk counterexample/,
      );
    });
  }

  test("adapter 'gaussian' on regression problems, every mode: equals the §5.2 reference; ρ 1 % off fails", async () => {
    for (const mode of modes) {
      const lines: string[] = [];
      const settings = fc.record({
        ...common,
        adapter: fc.constant('gaussian'),
        varianceCap: mode.covariance === 'diagonal' ? fc.constantFrom(0, 0.21) : fc.constant(0),
      });
      const options = {
        hyper: mode,
        settings,
        task: 'regression' as const,
        log: (l: string) => lines.push(l),
      };
      const ok = await checkTrainingOptimizer(rkalman(), reference(), options);
      console.log(
        `${lines[0]} [gaussian, ${mode.covariance}, ${mode.grMode}] → worst error ` +
          `${ok.worstError.toExponential(2)}`,
      );
      // As for the classifiers: the same linear system, now with R = σ_R²·I (σ_R² ≥ 0.3) and H's
      // rows the outputs' Jacobian (|values| ≤ 1), so κ stays of the same order.
      expect(ok.worstError).toBeLessThan(1e-12);
      await expect(checkTrainingOptimizer(rkalman(), reference(1.01), options)).rejects.toThrow(
        /rkalman differs from the reference[^]*Shrunk counterexample/,
      );
    }
  });

  for (const mode of [modes[0], modes[3]]) {
    test(
      `on WebGPU (float32), ${mode.covariance} P, grMode '${mode.grMode}': within 1e-4; ρ 1 % off fails`,
      async () => {
        const gpu = await gpuDevice();
        // As above, the step solves a system of condition κ ≲ 30 with |x| < 1, now in float32:
        // Cholesky's error is a few ulps (2^-24) times κ in practice, ≈ 30·4·2^-24 ≈ 7e-6 per step,
        // 2e-5 over 3 steps, which 1e-4 covers 5-fold; the normwise worst case n·κ·2^-24 (n ≤ 39)
        // would be 7e-5 per step. Measured: ≤ 2e-7 correct, ≥ 4e-4 with ρ 1 % off.
        const lines: string[] = [];
        const settings = fc.record({
          ...common,
          varianceCap: mode.covariance === 'diagonal' ? fc.constantFrom(0, 0.21) : fc.constant(0),
        });
        const options = {
          hyper: mode,
          settings,
          device: gpu,
          tolerance: 1e-4,
          // 16 problems: on 8, ρ 1 % off moved the diagonal filter's step by at most 6e-5.
          numRuns: 16,
          log: (l: string) => lines.push(l),
        };
        const ok = await checkTrainingOptimizer(rkalman(), reference(), options);
        console.log(
          `${lines[0]} [${mode.covariance}, ${mode.grMode}] → worst error ` +
            `${ok.worstError.toExponential(2)}`,
        );
        await expect(checkTrainingOptimizer(rkalman(), reference(1.01), options)).rejects.toThrow(
          /rkalman differs from the reference/,
        );
      },
      WEBGPU_TIMEOUT,
    );
  }

  test(
    "on WebGPU (float32), adapter 'gaussian' on regression problems: within 1e-4; ρ 1 % off fails",
    async () => {
      const gpu = await gpuDevice();
      // The WebGPU analysis above with R = σ_R²·I: the same κ ≲ 30 system, |x| < 1.
      const lines: string[] = [];
      const options = {
        hyper: modes[3],
        settings: fc.record({
          ...common,
          adapter: fc.constant('gaussian'),
          varianceCap: fc.constant(0),
        }),
        task: 'regression' as const,
        device: gpu,
        tolerance: 1e-4,
        numRuns: 6,
        log: (l: string) => lines.push(l),
      };
      const ok = await checkTrainingOptimizer(rkalman(), reference(), options);
      console.log(
        `${lines[0]} [gaussian, full, precision] → worst error ${ok.worstError.toExponential(2)}`,
      );
      await expect(checkTrainingOptimizer(rkalman(), reference(1.01), options)).rejects.toThrow(
        /rkalman differs from the reference/,
      );
    },
    WEBGPU_TIMEOUT,
  );
});
