// checkCurvatureOptimizer on a user-written optimizer that reads the taps: a diagonal
// Kronecker-factored preconditioner (per layer, G̃ divided elementwise by (diag Γ + δ)(diag Λ + δ)ᵀ
// with Λ = aᵀa/B, Γ = gᵀg/B). A float64 reference written here in plain loops passes; one that
// forgets the damping on Γ is found and shrunk; reading what only a model gives is reported.
import { describe, expect, test } from 'vitest';
import {
  add,
  defineOptimizer,
  div,
  expandDims,
  kfac,
  mean,
  mul,
  slice,
  square,
  sub,
  zeros,
  type LayerTap,
  type Tensor,
} from '../../index.js';
import {
  checkCurvatureOptimizer,
  type CurvatureReferenceStep,
  type DenseValues,
} from '../../testing.js';
import { grngRejection } from '../support/rejection.js';

type Layers = { layers: { w: Tensor; b: Tensor }[] };

const diagonalKronecker = defineOptimizer({
  name: 'diag-kron',
  hyper: { lr: 0.1, damping: 0.1 },
  init: () => ({ steps: zeros([]) }),
  update: ({ params, grads, state, hyper, taps }) => {
    const p = params as Layers;
    const g = grads as Layers;
    const layers = taps.map((tap: LayerTap, i: number) => {
      const din = p.layers[i].w.shape[1];
      const lambda = add(mean(square(tap.a), [0]), hyper.damping); // [in + 1], the ones column last
      const gamma = add(mean(square(tap.g), [0]), hyper.damping); // [out]
      const lambdaW = expandDims(slice(lambda, [0], [din]), 0); // [1, in]
      const lambdaB = slice(lambda, [din], [din + 1]); // [1]
      const w = sub(
        p.layers[i].w,
        mul(hyper.lr, div(g.layers[i].w, mul(expandDims(gamma, 1), lambdaW))),
      );
      const b = sub(p.layers[i].b, mul(hyper.lr, div(g.layers[i].b, mul(gamma, lambdaB))));
      return { w, b };
    });
    return { params: { layers } as never, state: { steps: add(state.steps, 1) } };
  },
});

/** The same update in plain loops. `gammaDamping` false is the deliberate mistake. */
const reference =
  (gammaDamping = true): CurvatureReferenceStep<number, { lr: number; damping: number }> =>
  (layers, grads, taps, state, h, _t, sizes) => ({
    layers: layers.map((l, i): DenseValues => {
      const { in: din, out } = sizes[i];
      const { a, g: gt, batch } = taps[i];
      const lambda = Array.from(
        { length: din + 1 },
        (_, k) =>
          Array.from({ length: batch }, (_, n) => a[n * (din + 1) + k] ** 2).reduce(
            (x, y) => x + y,
            0,
          ) /
            batch +
          h.damping,
      );
      const gamma = Array.from(
        { length: out },
        (_, o) =>
          Array.from({ length: batch }, (_, n) => gt[n * out + o] ** 2).reduce((x, y) => x + y, 0) /
            batch +
          (gammaDamping ? h.damping : 0),
      );
      return {
        w: l.w.map(
          (v, idx) =>
            v - (h.lr * grads[i].w[idx]) / (gamma[Math.floor(idx / din)] * lambda[idx % din]),
        ),
        b: l.b.map((v, o) => v - (h.lr * grads[i].b[o]) / (gamma[o] * lambda[din])),
      };
    }),
    state: (state ?? 0) + 1,
  });

describe('checkCurvatureOptimizer', () => {
  test(
    'a tap-reading optimizer matches its float64 reference on random layer ' + 'stacks and taps',
    async () => {
      const result = await checkCurvatureOptimizer(diagonalKronecker(), reference(), {
        numRuns: 15,
        log: () => {},
      });
      // Same formulas, different evaluation order: a few ulps (default tolerance 1e-10).
      expect(result.worstError).toBeLessThan(1e-10);
    },
  );

  test('a wrong reference (no damping on Γ) is found and shrunk to one small layer', async () => {
    const error = await grngRejection(
      checkCurvatureOptimizer(diagonalKronecker(), reference(false), {
        numRuns: 15,
        log: () => {},
      }),
    );
    expect(error.message).toMatch(/differs from the reference/);
    const layers = /layers ([\d×, ]+), batch (\d+)/.exec(error.message);
    expect(layers).not.toBeNull();
    // Shrunk: one layer (widths shrink to 1) and one batch row.
    expect((layers as RegExpExecArray)[1].split(',').length).toBe(1);
  });

  test(
    "what only a model gives is a clear error (K-FAC's Monte-Carlo Fisher " +
      'samples labels from the model)',
    async () => {
      const error = await grngRejection(
        checkCurvatureOptimizer(kfac({ fisher: 'mc' }), reference(), { numRuns: 2, log: () => {} }),
      );
      expect(error.message).toMatch(
        /kfac failed: .*reads ctx\.(output|tapsFor), which needs a model/,
      );
    },
  );
});
