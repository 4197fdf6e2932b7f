// grng/testing's float64 model engine (testing/reference-model.ts) against central differences of
// itself: its gradient against differences of its loss, its Hessian-vector product against
// differences of its gradient, and its taps against its gradient (G = gᵀa/B). Its agreement with
// the DSL is what check-training-optimizer.test.ts shows (SGD through the checker).
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { referencePass } from '../../testing/reference-model.js';
import { fromLeaves, toLeaves, trainingCase } from '../../testing/training-case.js';
import type { TrainingTask } from '../../testing/training-targets.js';
import { valueArray } from '../../testing/arbitraries.js';
import { SEED } from '../support/fast-check-setup.js';

// Central differences need a smooth loss: relu's kink at 0 is hit exactly by values on a 2^-16
// grid, so these properties draw tanh and gelu only.
const smoothCase = (task: TrainingTask) =>
  trainingCase({ activations: ['tanh', 'gelu'], task }, 1, fc.constant({}));
const H = 1e-5;

/** Central difference of f along direction v. */
function along(
  f: (p: Float64Array[]) => number | Float64Array[],
  leaves: readonly Float64Array[],
  v: readonly Float64Array[],
) {
  const moved = (sign: number) => leaves.map((x, k) => x.map((e, i) => e + sign * H * v[k][i]));
  return [f(moved(1)), f(moved(-1))] as const;
}

describe('reference model engine (float64)', () => {
  // Class labels (cross-entropy), regression targets (mean squared error), and an output cotangent
  // u (⟨u, z⟩, whose gradient is the vector-Jacobian product Jᵀu).
  test.each(['labels', 'targets', 'cotangent'] as const)(
    '%s: gradient == central differences of the loss; H·v == central differences of ∇L',
    (target) => {
      fc.assert(
        fc.property(
          smoothCase(target === 'labels' ? 'classification' : 'regression').chain((c) =>
            fc.tuple(
              fc.constant(c),
              fc.tuple(...toLeaves(c.values).map((x) => valueArray(x.length))),
            ),
          ),
          ([c, direction]) => {
            const { x, labels: drawn } = c.batches[0];
            // The regression targets double as the cotangent: both are [batch × out] values.
            const labels = target === 'cotangent' ? { cotangent: drawn as Float64Array } : drawn;
            const leaves = toLeaves(c.values);
            const v = direction.map((xs) => Float64Array.from(xs));
            const run = (p: readonly Float64Array[], tangent?: readonly Float64Array[]) =>
              referencePass(
                c.layers,
                fromLeaves(c.layers, p),
                x,
                labels,
                tangent && fromLeaves(c.layers, tangent),
              );
            const pass = run(leaves, v);
            const gradient = toLeaves(pass.gradient);
            const hv = toLeaves(pass.hvp);
            // Directional derivative ⟨∇L, v⟩ against (L(θ + hv) − L(θ − hv))/2h: truncation
            // h²·L‴/6 ≈ 1e-10·|L‴| and rounding ε·|L|/h ≈ 1e-11 for the |L| ≲ 10 these models give.
            const [up, down] = along((p) => run(p).loss, leaves, v);
            const directional = gradient.reduce(
              (s, g, k) => s + g.reduce((t, e, i) => t + e * v[k][i], 0),
              0,
            );
            const fd = ((up as number) - (down as number)) / (2 * H);
            expect(Math.abs(directional - fd)).toBeLessThan(1e-7 * Math.max(1, Math.abs(fd)));
            // H·v against (∇L(θ + hv) − ∇L(θ − hv))/2h, element by element (same error budget).
            const [gu, gd] = along((p) => toLeaves(run(p).gradient), leaves, v) as [
              Float64Array[],
              Float64Array[],
            ];
            hv.forEach((leaf, k) =>
              leaf.forEach((e, i) => {
                const want = (gu[k][i] - gd[k][i]) / (2 * H);
                expect(Math.abs(e - want)).toBeLessThan(1e-6 * Math.max(1, Math.abs(want)));
              }),
            );
          },
        ),
        { seed: SEED, numRuns: 40 },
      );
    },
  );

  test('taps: gᵀa / B is the gradient of W (and of b, through the ones column)', () => {
    const any = trainingCase({}, 1, fc.constant({}));
    fc.assert(
      fc.property(any, (c) => {
        const { x, labels } = c.batches[0];
        const pass = referencePass(c.layers, c.values, x, labels);
        for (const tap of pass.taps) {
          const layer = pass.gradient[tap.layer];
          const bias = tap.b === undefined ? undefined : layer[tap.b];
          const inputs = tap.in - (bias === undefined ? 0 : 1);
          for (let o = 0; o < tap.out; o++)
            for (let j = 0; j < tap.in; j++) {
              let s = 0;
              for (let r = 0; r < tap.batch; r++)
                s += tap.g[r * tap.out + o] * tap.a[r * tap.in + j];
              const want = j < inputs ? layer[tap.w][o * inputs + j] : (bias as Float64Array)[o];
              // The same sums in another order: a few ulps of the terms' magnitude.
              expect(Math.abs(s / tap.batch - want)).toBeLessThan(1e-12);
            }
        }
      }),
      { seed: SEED, numRuns: 60 },
    );
  });
});
