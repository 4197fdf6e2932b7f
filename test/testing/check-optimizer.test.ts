// grng/testing's checkOptimizer as a user meets it: built-in and example optimizers pass against
// float64 references written from the spec (references.ts), wrong references are found and
// shrunk to tiny counterexamples, and what it cannot check (curvature optimizers, float32 without
// a tolerance) is a clear GrngError.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { lion } from '../../examples/lion.js';
import { adam, adamw, createDevice, kfac, reng, ring, rkalman, sgd, sophia } from '../../index.js';
import { checkOptimizer, DEFAULT_SEED, trainingStepNeeds } from '../../testing.js';
import { gpuDevice } from '../support/gpu.js';
import { adamReference, lionReference, sgdReference } from './references.js';
import { grngRejection } from '../support/rejection.js';

/** Few runs keep the file fast on the float64 interpreter. */
const RUNS = 20;
/** The suite's seed (test/support/fast-check-setup.ts, GRNG_SEED), passed on explicitly. */
const SEED = fc.readConfigureGlobal().seed ?? DEFAULT_SEED;
const quiet = { seed: SEED, numRuns: RUNS };

/** The "shapes [...]" of a failure message, parsed. */
function counterexampleShapes(message: string): number[][] {
  const match = /shapes (\[.*\]) \(leaves/.exec(message);
  if (match === null) throw new Error(`no shapes in: ${message}`);
  return JSON.parse(match[1]) as number[][];
}

const failure = grngRejection;

describe('checkOptimizer passes correct references', () => {
  // Default tolerance 1e-10 on the float64 interpreter: the same formulas evaluated in another
  // order differ by a few ulps (Adam's 1/(1 − β₂ᵗ) amplifies them ≤ 1e3× over 4 steps).
  test('sgd, with momentum, dampening, Nesterov and weight decay drawn per case', async () => {
    const settings = fc.oneof(
      fc.record({
        momentum: fc.constantFrom(0, 0.5, 0.9),
        dampening: fc.constantFrom(0, 0.25),
        weightDecay: fc.constantFrom(0, 0.01),
      }),
      fc.record({ momentum: fc.constantFrom(0.5, 0.9), nesterov: fc.constant(true) }),
    );
    const result = await checkOptimizer(sgd({ lr: 0.1 }), sgdReference, { ...quiet, settings });
    expect(result.runs).toBe(RUNS);
    expect(result.seed).toBe(SEED);
    expect(result.worstError).toBeLessThanOrEqual(1e-10);
  });

  test('adam and adamw, with lr, β₁ and weight decay drawn per case', async () => {
    const settings = fc.record({
      lr: fc.constantFrom(1e-3, 0.1),
      beta1: fc.constantFrom(0, 0.9),
      weightDecay: fc.constantFrom(0, 0.01),
    });
    for (const [optimizer, decoupled] of [
      [adam(), false],
      [adamw(), true],
    ] as const) {
      const result = await checkOptimizer(optimizer, adamReference({ decoupled }), {
        ...quiet,
        settings,
      });
      expect(result.worstError, optimizer.name).toBeLessThanOrEqual(1e-10);
    }
  });

  test("examples/lion.ts's lion against the paper's formula", async () => {
    const settings = fc.record({ weightDecay: fc.constantFrom(0, 0.1) });
    const result = await checkOptimizer(lion({ lr: 0.01 }), lionReference(), {
      ...quiet,
      settings,
    });
    expect(result.worstError).toBeLessThanOrEqual(1e-10);
  });

  test('fixed shapes and 6 steps', async () => {
    const result = await checkOptimizer(adamw({ lr: 0.01 }), adamReference({ decoupled: true }), {
      ...quiet,
      numRuns: 5,
      steps: 6,
      shapes: [[4, 3], [3]],
    });
    expect(result.runs).toBe(5);
  });

  test('a float32 device with a tolerance the user chose', async () => {
    const f32 = await createDevice({ kind: 'cpu', precision: 'f32' });
    // SGD with momentum, 4 steps of O(1) values, lr 0.1: each step adds a few f32 roundings
    // (≤ 6e-8 relative each) to values ≤ ~2, so ≲ 1e-6 after 4 steps.
    const result = await checkOptimizer(sgd({ lr: 0.1, momentum: 0.9 }), sgdReference, {
      ...quiet,
      numRuns: 10,
      device: f32,
      tolerance: 1e-6,
    });
    console.log(
      `sgd on the float32 interpreter: worst error ${result.worstError.toExponential(2)}`,
    );
    expect(result.worstError).toBeGreaterThan(0); // float32 rounding is really there
    expect(result.worstError).toBeLessThanOrEqual(1e-6);
  });
});

describe('checkOptimizer on WebGPU (float32)', () => {
  test(
    'adamw passes with a float32 tolerance; the bias-correction mistake is ' + 'still found',
    async () => {
      const gpu = await gpuDevice();
      // lr 0.01, 4 steps, values ≤ 1: f32 rounding of θ (6e-8 relative) and of Adam's step (its
      // 1 − β₂ᵗ ≈ 1e-3 loses ~4 bits: ~1e-6 relative, times lr) stay below 1e-6; 1e-5 leaves 10×,
      // while a missing bias correction is off by ~lr·2 = 2e-2.
      const result = await checkOptimizer(adamw({ lr: 0.01 }), adamReference({ decoupled: true }), {
        ...quiet,
        numRuns: 8,
        device: gpu,
        tolerance: 1e-5,
      });
      expect(result.worstError).toBeLessThanOrEqual(1e-5);
      const error = await failure(
        checkOptimizer(
          adam({ lr: 0.01 }),
          adamReference({ decoupled: false, biasCorrection: false }),
          { ...quiet, numRuns: 8, device: gpu, tolerance: 1e-5 },
        ),
      );
      expect(counterexampleShapes(error.message)).toEqual([[]]);
    },
  );
});

describe('checkOptimizer finds wrong references and shrinks the counterexample', () => {
  test('Adam without bias correction: fails at step 1 on a single scalar', async () => {
    const error = await failure(
      checkOptimizer(
        adam({ lr: 0.1 }),
        adamReference({ decoupled: false, biasCorrection: false }),
        quiet,
      ),
    );
    const { message } = error;
    expect(message).toMatch(
      /^checkOptimizer: adam differs from the reference by [\d.e+-]+ \(worst error/,
    );
    expect(message).toContain(`seed ${SEED}`);
    expect(message).toContain('Shrunk counterexample');
    expect(message).toMatch(/at step 1, leaf 0/);
    // Shrinking worked: one leaf of one element (the smallest tree there is), and not 0 gradients
    // (with g = 0 both agree).
    const shapes = counterexampleShapes(message);
    expect(shapes.length).toBe(1);
    expect(shapes[0].reduce((a, b) => a * b, 1)).toBe(1);
    console.log(message);
  });

  test('Lion with β₁ and β₂ swapped: needs two steps, found on a tiny tree', async () => {
    const error = await failure(
      checkOptimizer(lion({ lr: 0.01 }), lionReference({ swapBetas: true }), quiet),
    );
    const { message } = error;
    console.log(message);
    // Step 1 agrees (m₀ = 0: sign((1 − β)g) is sign(g) either way), so the failure is at step ≥ 2.
    const step = Number(/at step (\d+), leaf/.exec(message)?.[1]);
    expect(step).toBeGreaterThanOrEqual(2);
    expect(message).toContain(`gradients, steps 1–${step}: `);
    // Shrunk from up to 3 leaves of up to 9 elements: a single leaf of at most 2 elements.
    const shapes = counterexampleShapes(message);
    expect(shapes.length).toBe(1);
    expect(shapes[0].reduce((a, b) => a * b, 1)).toBeLessThanOrEqual(2);
  });

  test(
    'a reference that throws or returns the wrong leaves is reported as ' + 'the reference',
    async () => {
      const broken = await failure(
        checkOptimizer(
          sgd(),
          () => {
            throw new Error('not written yet');
          },
          { ...quiet, numRuns: 3 },
        ),
      );
      expect(broken.message).toMatch(/the reference threw at step 1: not written yet/);
      const short = await failure(
        checkOptimizer(sgd(), (params) => ({ params: params.slice(1), state: 0 }), {
          ...quiet,
          numRuns: 3,
        }),
      );
      expect(short.message).toMatch(/expected 1 leaves, got 0/);
    },
  );

  test('the seed printed in the message replays the failure with its path', async () => {
    const ref = adamReference({ decoupled: false, biasCorrection: false });
    const first = await failure(checkOptimizer(adam(), ref, quiet));
    const path = /path "([\d:]+)"/.exec(first.message)?.[1];
    expect(path).toBeDefined();
    const replay = await failure(checkOptimizer(adam(), ref, { ...quiet, path }));
    expect(counterexampleShapes(replay.message)).toEqual(counterexampleShapes(first.message));
  });
});

describe('checkOptimizer refuses what it cannot check', () => {
  test('a float32 device without a tolerance', async () => {
    const f32 = await createDevice({ kind: 'cpu', precision: 'f32' });
    const error = await failure(
      checkOptimizer(adam(), adamReference({ decoupled: false }), { device: f32 }),
    );
    expect(error.message).toMatch(/float32.*options\.tolerance/);
  });

  test('curvature optimizers (they need a model and a batch)', async () => {
    expect(trainingStepNeeds(adam(), [[2]])).toBeUndefined();
    expect(trainingStepNeeds(sophia(), [[2]])).toBe('ctx.hvp');
    expect(trainingStepNeeds(sophia({ estimator: 'gnb' }), [[2]])).toBe('ctx.output');
    expect(trainingStepNeeds(kfac({ fisher: 'empirical' }), [[2]])).toBe('ctx.taps');
    const shapes = [[2], [2, 2]];
    const needs = {
      kfac: trainingStepNeeds(kfac(), shapes),
      ring: trainingStepNeeds(ring(), shapes),
      reng: trainingStepNeeds(reng(), shapes),
      rkalman: trainingStepNeeds(rkalman(), shapes),
    };
    expect(needs).toEqual({
      kfac: 'ctx.output',
      ring: 'ctx.output',
      reng: 'ctx.hvp',
      rkalman: "init's layers (the model's dense layers)",
    });
    const anyReference = () => ({ params: [], state: undefined });
    for (const error of [
      await failure(checkOptimizer(sophia(), anyReference, quiet)),
      await failure(checkOptimizer(rkalman(), anyReference, quiet)),
    ]) {
      expect(error.message).toMatch(/covers gradient-only optimizers[^]*checkTrainingOptimizer/);
    }
  });

  test('bad options', async () => {
    await failure(checkOptimizer(sgd(), sgdReference, { numRuns: 0 }));
    await failure(checkOptimizer(sgd(), sgdReference, { steps: 1.5 }));
    await failure(checkOptimizer(sgd(), sgdReference, { tolerance: -1 }));
    await failure(checkOptimizer(sgd(), sgdReference, { hyper: { lr: -1 } }));
    await failure(checkOptimizer(sgd(), sgdReference, { shapes: [] }));
    await failure(checkOptimizer(sgd(), sgdReference, { shapes: [[2, 0]] }));
  });
});
