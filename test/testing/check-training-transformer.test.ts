// checkTrainingOptimizer on token models (kinds: ['transformer']): the DSL's nn layers (dense over
// [B, T, d], layerNorm, multiHeadAttention) compiled into training steps against the float64 tape
// engine (testing/reference-transformer.ts). Agreement to ~1e-12 is the cross-check that the two
// compute the same model, its gradient and its Hessian-vector products.
import { describe, expect, test } from 'vitest';
import { checkTrainingOptimizer } from '../../testing.js';
import { sgd } from '../../optimizers/sgd.js';
import { grSgd, grSgdReference } from './gr-sgd.js';

const quiet = { log: () => {} };
const tokens = { ...quiet, kinds: ['transformer'] as const };

describe('checkTrainingOptimizer on token models', () => {
  test('plain SGD: the nn layers and the tape engine agree (dense, layerNorm, attention)', async () => {
    const result = await checkTrainingOptimizer(
      sgd({ lr: 0.1 }),
      (ctx) => ({
        params: ctx.params.map((p, k) => p.map((e, i) => e - ctx.hyper.lr * ctx.grads[k][i])),
        state: undefined,
      }),
      { ...tokens, numRuns: 25 },
    );
    console.log(`SGD on token models: worst error ${result.worstError.toExponential(2)}`);
    // The same float64 sums in another order (softmax, layerNorm's mean and variance): a few ulps,
    // times the 3 steps' growth.
    expect(result.worstError).toBeLessThan(1e-12);
  });

  test('GR-SGD: Hessian-vector products agree; a reference 1 % off in ρ fails', async () => {
    const ok = await checkTrainingOptimizer(grSgd(), grSgdReference(1), tokens);
    console.log(`GR-SGD on token models: worst error ${ok.worstError.toExponential(2)}`);
    expect(ok.worstError).toBeLessThan(1e-12);
    const failure = await checkTrainingOptimizer(grSgd(), grSgdReference(1.01), {
      ...tokens,
      numRuns: 5,
    }).catch((e: unknown) => e);
    expect((failure as Error).message).toMatch(/gr-sgd differs from the reference/);
    expect((failure as Error).message).toMatch(/model: tokens \d × \d: .*mean over tokens/);
  });

  test('taps: one per dense layer in order (q, k, v, o per attention), gᵀa / B = the gradient', async () => {
    let shared = 0;
    await checkTrainingOptimizer(
      sgd({ lr: 0.1 }),
      (ctx) => {
        for (const tap of ctx.taps) {
          if (tap.positions > 1) shared++;
          const inputs = tap.b === undefined ? tap.in : tap.in - 1;
          for (let o = 0; o < tap.out; o++)
            for (let j = 0; j < tap.in; j++) {
              let s = 0;
              for (let r = 0; r < tap.batch * tap.positions; r++)
                s += tap.g[r * tap.out + o] * tap.a[r * tap.in + j];
              const want =
                j < inputs ? ctx.grads[tap.w][o * inputs + j] : ctx.grads[tap.b as number][o];
              // The same sums in another order: a few ulps of the terms' magnitude.
              expect(Math.abs(s / tap.batch - want)).toBeLessThan(1e-12);
            }
        }
        // The head is applied last, on the pooled [B, d]: one position.
        expect(ctx.taps[ctx.taps.length - 1].positions).toBe(1);
        return {
          params: ctx.params.map((p, k) => p.map((e, i) => e - ctx.hyper.lr * ctx.grads[k][i])),
          state: undefined,
        };
      },
      { ...tokens, numRuns: 10, steps: 1 },
    );
    expect(shared).toBeGreaterThan(0);
  });

  test('kinds and maxTokens are validated', async () => {
    const reference = () => ({ params: [], state: undefined });
    await expect(
      checkTrainingOptimizer(sgd(), reference, { ...quiet, kinds: ['conv' as 'stack'] }),
    ).rejects.toThrow(/kinds must be a non-empty list of 'stack', 'transformer'/);
    await expect(
      checkTrainingOptimizer(sgd(), reference, { ...tokens, maxTokens: 0 }),
    ).rejects.toThrow(/maxTokens must be a positive integer/);
  });
});
