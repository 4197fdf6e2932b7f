// checkTrainingOptimizer: optimizers that need a model (the loss, Hessian-vector products, the
// output and labels sampled from it) checked in compiled training steps against float64
// references that use only the context grng/testing hands them.
import { describe, expect, test } from 'vitest';
import {
  add,
  categorical,
  defineOptimizer,
  div,
  foldIn,
  matmul,
  mT,
  mul,
  reshape,
  slice,
  stopGradient,
  sub,
  vjp,
  type ParamTree,
  type Tensor,
} from '../../index.js';
import {
  checkTrainingOptimizer,
  referenceRandom,
  type TrainingReferenceContext,
} from '../../testing.js';
import { sgd } from '../../optimizers/sgd.js';
import { CpuDevice } from '../../runtime/cpu-device.js';
import { gpuDevice } from '../support/gpu.js';
import { grSgd, grSgdReference } from './gr-sgd.js';

const quiet = { log: () => {} };
const axpy = (x: Float64Array, a: number, y: Float64Array) => x.map((e, i) => e + a * y[i]);

/** SGD on the gradient of the Monte-Carlo labels' loss, built from their taps: W ← W − η gᵀa/B. */
const mcTapSgd = defineOptimizer({
  name: 'mc-tap-sgd',
  hyper: { lr: 0.1 },
  init: () => ({}),
  update: ({ params, grads, key, output, tapsFor, hyper: { lr }, map }) => {
    const sampled = categorical(foldIn(key, 1), stopGradient(output(params)));
    const direction = new Map<Tensor['node'], Tensor>();
    for (const tap of tapsFor(sampled)) {
      const rows = tap.a.shape[0];
      const g = div(matmul(mT(tap.g), tap.a), rows);
      const [out, cols] = g.shape;
      const inputs = tap.b === undefined ? cols : cols - 1;
      direction.set(tap.w.node, reshape(slice(g, [0, 0], [out, inputs]), tap.w.shape));
      if (tap.b !== undefined)
        direction.set(tap.b.node, reshape(slice(g, [0, inputs], [out, cols]), [out]));
    }
    return {
      params: map((p, gi) => sub(p, mul(lr, direction.get(p.node) ?? gi)), params, grads),
      state: {},
    };
  },
});

/** θ ← θ − η·g / (1 + L(θ)): reads the loss itself. */
const lossScaled = defineOptimizer({
  name: 'loss-scaled-sgd',
  hyper: { lr: 0.1 },
  init: () => ({}),
  update: ({ params, grads, loss, hyper: { lr }, map }) => {
    const scale = div(lr, add(1, loss(params)));
    return { params: map((p, g) => sub(p, mul(scale, g)), params, grads), state: {} };
  },
});

/** θ ← θ − η·Jᵀ(z − y): the output's vector-Jacobian product on the residual (regression). */
const residualJacobian = defineOptimizer({
  name: 'residual-jacobian',
  hyper: { lr: 0.1 },
  init: () => ({}),
  update: ({ params, output, labels, hyper: { lr }, map }) => {
    const [z, pullback] = vjp((p: ParamTree) => output(p), params);
    const [direction] = pullback(sub(z, labels)) as [ParamTree];
    return { params: map((p, d) => sub(p, mul(lr, d)), params, direction), state: {} };
  },
});

describe('checkTrainingOptimizer', () => {
  test('plain SGD: the DSL model and the float64 engine agree (dense, LoRA; tanh, relu, gelu)', async () => {
    const result = await checkTrainingOptimizer(
      sgd({ lr: 0.1 }),
      (ctx) => ({
        params: ctx.params.map((p, k) => axpy(p, -ctx.hyper.lr, ctx.grads[k])),
        state: undefined,
      }),
      { ...quiet, numRuns: 25 },
    );
    // The same float64 sums in another order: a few ulps, times the 3 steps' growth.
    expect(result.worstError).toBeLessThan(1e-12);
  });

  test('Hessian-vector products (GR-SGD), the loss, and Monte-Carlo labels from the step key', async () => {
    const gr = await checkTrainingOptimizer(grSgd(), grSgdReference(), quiet);
    expect(gr.worstError).toBeLessThan(1e-12);
    const scaled = await checkTrainingOptimizer(
      lossScaled(),
      (ctx) => ({
        params: ctx.params.map((p, k) => axpy(p, -ctx.hyper.lr / (1 + ctx.loss()), ctx.grads[k])),
        state: undefined,
      }),
      quiet,
    );
    expect(scaled.worstError).toBeLessThan(1e-12);
    const mc = await checkTrainingOptimizer(
      mcTapSgd(),
      (ctx) => {
        const labels = referenceRandom.categorical(
          referenceRandom.mcLabelKey(ctx.key),
          ctx.output(),
          [ctx.batch, ctx.classes],
        );
        const params = ctx.params.map((p, k) => axpy(p, -ctx.hyper.lr, ctx.grads[k]));
        for (const tap of ctx.tapsFor(labels)) {
          const inputs = tap.b === undefined ? tap.in : tap.in - 1;
          const p = ctx.params;
          params[tap.w] = Float64Array.from(p[tap.w]);
          if (tap.b !== undefined) params[tap.b] = Float64Array.from(p[tap.b]);
          for (let o = 0; o < tap.out; o++)
            for (let j = 0; j < tap.in; j++) {
              let s = 0;
              for (let r = 0; r < tap.batch; r++)
                s += tap.g[r * tap.out + o] * tap.a[r * tap.in + j];
              const step = (ctx.hyper.lr * s) / tap.batch;
              if (j < inputs) params[tap.w][o * inputs + j] -= step;
              else if (tap.b !== undefined) params[tap.b][o] -= step;
            }
        }
        return { params, state: undefined };
      },
      quiet,
    );
    expect(mc.worstError).toBeLessThan(1e-12);
  });

  test("task 'regression' (meanSquaredError on real targets), stacks and token models: SGD, GR-SGD and Jᵀ(z − y) by ctx.outputVjp", async () => {
    const sgdReference = (ctx: TrainingReferenceContext<{ lr: number }>) => ({
      params: ctx.params.map((p, k) => axpy(p, -ctx.hyper.lr, ctx.grads[k])),
      state: undefined,
    });
    for (const kinds of [['stack'], ['transformer']] as const) {
      const options = { ...quiet, task: 'regression' as const, kinds: [...kinds] };
      // As for the classifiers: the same float64 sums in another order.
      const plain = await checkTrainingOptimizer(sgd({ lr: 0.1 }), sgdReference, options);
      expect(plain.worstError).toBeLessThan(1e-12);
      // ρ 0.1, not GR-SGD's 0.5: the squared error's Hessian on these attention stacks is large
      // enough that at 0.5 some trajectories run away by step 3, where rounding differences of
      // 1e-15 at step 1 grow to O(1) (measured 2.0; 7e-14 at ρ 0.1).
      const gr = await checkTrainingOptimizer(grSgd({ rho: 0.1 }), grSgdReference(), options);
      expect(gr.worstError).toBeLessThan(1e-12);
      const jacobian = await checkTrainingOptimizer(
        residualJacobian(),
        (ctx) => {
          const residual = ctx.output().map((z, j) => z - ctx.labels[j]);
          const direction = ctx.outputVjp(residual);
          return {
            params: ctx.params.map((p, k) => axpy(p, -ctx.hyper.lr, direction[k])),
            state: undefined,
          };
        },
        options,
      );
      expect(jacobian.worstError).toBeLessThan(1e-12);
      // Jᵀ(z − y) = (B·C/2)·∇L for L = mean((z − y)²): ctx.outputVjp and ctx.grads agree, and a
      // reference that forgets the ½ fails.
      const throughGradient =
        (half: number) => (ctx: TrainingReferenceContext<{ lr: number }>) => ({
          params: ctx.params.map((p, k) =>
            axpy(p, -ctx.hyper.lr * ctx.batch * ctx.classes * half, ctx.grads[k]),
          ),
          state: undefined,
        });
      const same = await checkTrainingOptimizer(residualJacobian(), throughGradient(0.5), options);
      expect(same.worstError).toBeLessThan(1e-12);
      await expect(
        checkTrainingOptimizer(residualJacobian(), throughGradient(1), options),
      ).rejects.toThrow(/residual-jacobian differs from the reference[^]*targets \[/);
    }
  });

  test('on WebGPU (float32) with a tolerance from float32 rounding; the 1 % error still fails', async () => {
    const gpu = await gpuDevice();
    // Values |·| ≤ 1, ≤ 3 layers of ≤ 3 units, ≤ 4 rows: the forward, backward and double-backward
    // sums lose a few float32 ulps (2^-24 ≈ 6e-8) each, times the loss's conditioning on such
    // small models (tens); 3 steps of lr 0.1 leave the parameters within ~1e-6 of float64.
    const options = { ...quiet, device: gpu, tolerance: 1e-5, numRuns: 6 };
    const ok = await checkTrainingOptimizer(grSgd(), grSgdReference(), options);
    expect(ok.worstError).toBeLessThan(1e-5);
    console.log(`GR-SGD on ${gpu.description}: worst error ${ok.worstError.toExponential(2)}`);
    await expect(checkTrainingOptimizer(grSgd(), grSgdReference(1.01), options)).rejects.toThrow(
      /gr-sgd differs from the reference/,
    );
  });

  test('a reference 1 % off in ρ fails with a shrunk model, the step and the parameter', async () => {
    const lines: string[] = [];
    const failure = await checkTrainingOptimizer(grSgd(), grSgdReference(1.01), {
      log: (l) => lines.push(l),
      seed: 7,
    }).catch((e: unknown) => e);
    expect(lines[0]).toMatch(/checkTrainingOptimizer\(gr-sgd\): fast-check seed 7/);
    expect(failure).toBeInstanceOf(Error);
    const message = (failure as Error).message;
    expect(message).toMatch(/gr-sgd differs from the reference by .* at step 1 in layers\.\d\.\w/);
    expect(message).toMatch(/Shrunk counterexample \(\d+ shrinks; seed 7, path: '[\d:]+'\)/);
    expect(message).toMatch(/model: (dense|lora) /);
    // The shrunk problem only just fails; the first failure says how large the error really was.
    expect(message).toMatch(/Before shrinking, the first failing problem differed by \d/);
    expect(message).toMatch(/Replay it with checkTrainingOptimizer\(…, \{ seed: 7, path: /);
  });

  test('options are validated: float32 needs a tolerance; counts must be positive integers', async () => {
    const reference = () => ({ params: [], state: undefined });
    await expect(
      checkTrainingOptimizer(sgd(), reference, { ...quiet, device: new CpuDevice('f32') }),
    ).rejects.toThrow(/computes in float32: pass options.tolerance/);
    await expect(
      checkTrainingOptimizer(sgd(), reference, { ...quiet, numRuns: 0 }),
    ).rejects.toThrow(/numRuns must be a positive integer/);
    await expect(
      checkTrainingOptimizer(sgd(), reference, { ...quiet, maxClasses: 1 }),
    ).rejects.toThrow(/maxClasses must be an integer ≥ 2/);
    await expect(
      checkTrainingOptimizer(sgd(), reference, { ...quiet, task: 'regression', maxClasses: 0 }),
    ).rejects.toThrow(/maxClasses must be an integer ≥ 1 for regression, got 0/);
    await expect(
      checkTrainingOptimizer(sgd(), reference, {
        ...quiet,
        task: 'ranking' as 'regression', // what a JavaScript caller can pass
      }),
    ).rejects.toThrow(/task must be 'classification' or 'regression', got "ranking"/);
    // ctx.outputVjp checks its cotangent: one value per output entry.
    await expect(
      checkTrainingOptimizer(
        sgd(),
        (ctx) => ({ params: ctx.outputVjp(new Float64Array(1 + ctx.output().length)), state: 0 }),
        { ...quiet, numRuns: 1, steps: 1 },
      ),
    ).rejects.toThrow(
      /the reference threw at step 1: .*the cotangent must be a Float64Array of \d+/,
    );
    await expect(
      checkTrainingOptimizer(sgd(), reference, {
        ...quiet,
        activations: ['sigmoid' as 'tanh'], // what a JavaScript caller can pass
      }),
    ).rejects.toThrow(/activations must be a non-empty list of tanh, relu, gelu/);
    await expect(
      checkTrainingOptimizer(sgd(), reference, { ...quiet, numRuns: 1, steps: 1 }),
    ).rejects.toThrow(/the reference threw at step 1: its params/);
  });
});
