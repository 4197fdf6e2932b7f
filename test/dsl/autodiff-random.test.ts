// First-order autodiff on random well-typed programs (test/support/programs.ts), evaluated in
// float64 on the interpreter: grad vs central differences, the jvp/vjp transpose identity, and
// jvp vs a central directional difference.
//
// Finite differences are only meaningful away from kinks (abs, relu, max/min, comparisons,
// reduce max): cases closer than KINK_MARGIN to one are discarded with fc.pre (fast-check fails
// the property if discards dominate), and the discard rate is printed. Exact structural ties
// (maximum(v, v), max over a broadcast axis) are kept: there the ½/½ tie rule must be right.
//
// Error budget of a central difference (f(x+h) − f(x−h))/2h in float64:
// - truncation h²·|f‴|/6: with h = 1e-5 that is ~2e-11·|f‴|; these programs (inputs in
//   [-1.5, 1.5], guarded domains, bounded activations) keep |f‴| within ~1e2 of max(1, |f′|),
//   so it is ≲ 1e-8 of the derivative's scale. FD_TOL = 1e-6 is two orders above that and
//   many below any wrong rule (off by O(1) relative, or 1e-4 for the subtlest mutant tried);
// - rounding ≈ ε·|f|/h per rounding in f: it scales with |f| itself, not with the derivative,
//   and a product of squares can make |f| ~1e6 while some gradient component is O(1). So the
//   allowance adds ROUNDING_DEPTH·ε·|f|/h (≈ 1e-9·|f|), computed from the actual value, per
//   output component. For |f| ≲ 1e2 this is < 1e-6 and FD_TOL governs: no blanket loosening.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  abs,
  broadcastTo,
  grad,
  jvp,
  logsumexp,
  max,
  maximum,
  relu,
  vjp,
  type Tensor,
} from '../../index.js';
import { hostFunction } from '../support/host-function.js';
import { range } from '../support/random.js';
import { centralDirectional, centralGradient, dot, maxScaledError } from '../support/numeric.js';
import {
  concatAll,
  EPS,
  fdExcess,
  kinkMargin,
  programArb,
  propertyStatsTracker,
  ROUNDING_DEPTH,
  specsOf,
  splitAs,
} from '../support/programs.js';

/** Discard points closer than this to a kink: ≫ the FD step (1e-5) times any slope here. */
const KINK_MARGIN = 1e-3;
/** Central-difference step (see the error budget above). */
const H = 1e-5;
/**
 * Truncation tolerance of autodiff vs central differences, relative to max(1, |FD|) (see above).
 */
const FD_TOL = 1e-6;
/** Rounding allowance of a central difference per unit of |f| (see above). */
const ROUNDING = (ROUNDING_DEPTH * EPS) / H;
/**
 * Tolerance between two autodiff results that are equal in exact arithmetic and differ only in
 * float64 association order: relative to the sum of absolute terms of the dot products, the
 * rounding is ~depth·ε ≈ 1e-14; 1e-10 leaves four orders of headroom.
 */
const EXACT_TOL = 1e-10;

const NUM_RUNS = 100;

const track = propertyStatsTracker();

describe('autodiff on random programs (float64 interpreter)', () => {
  test(
    'the kink margin sees near-kinks, and ignores exact ties and maxima ' + 'under stopGradient',
    () => {
      const margin = (f: (xs: Tensor[]) => Tensor, shapes: number[][], values: number[][]) =>
        kinkMargin(
          f,
          shapes,
          values.map((v) => Float64Array.from(v)),
        );
      expect(margin(([x]) => abs(x), [[2]], [[0.5, -2e-4]])).toBeCloseTo(2e-4, 12);
      expect(margin(([x]) => relu(x), [[2]], [[3e-4, 1]])).toBeCloseTo(3e-4, 12);
      expect(
        margin(
          ([x, y]) => maximum(x, y),
          [[2], [2]],
          [
            [0.5, 1],
            [0.4999, -1],
          ],
        ),
      ).toBeCloseTo(1e-4, 12);
      // Groups [1, 0.9995] and [0, -1] of a max over the last axis: the closer one counts.
      expect(margin(([x]) => max(x, 1), [[2, 2]], [[1, 0.9995, 0, -1]])).toBeCloseTo(5e-4, 12);
      // Structural ties persist under perturbation (the ½/½ split is exact there): not kinks.
      expect(margin(([x]) => maximum(x, x), [[2]], [[0.3, -0.7]])).toBe(Infinity);
      expect(margin(([x]) => max(broadcastTo(x, [2, 2]), 0), [[2]], [[0.3, 0.7]])).toBe(Infinity);
      // logsumexp shifts by a stopped max: smooth however close the top two are.
      expect(margin(([x]) => logsumexp(x), [[3]], [[0.1, 0.1001, -1]])).toBe(Infinity);
    },
  );

  test('grad with respect to every input matches central differences', () => {
    const s = track('grad vs FD', 'error/allowance');
    fc.assert(
      fc.property(programArb(), (p) => {
        const xs = p.inputValues();
        s.skipNearKinks((t) => p.scalar(t), p.shapes, xs, KINK_MARGIN);
        const n = p.shapes.length;
        const specs = specsOf(p.shapes);
        const f = hostFunction((...t) => p.scalar(t), specs);
        const g = hostFunction(
          (...t) => grad((...u: Tensor[]) => p.scalar(u), range(n))(...t) as Tensor[],
          specs,
        );
        const analytic = concatAll(g(...xs));
        const numeric = centralGradient(
          (flat) => f(...splitAs(flat, p.inputSizes))[0][0],
          concatAll(xs),
          H,
        );
        const value = f(...xs)[0][0];
        // Truncation ≲ 1e-8·max(1, |∂f|) plus rounding ∝ |f| (header); a wrong rule is off by far
        // more.
        expect(s.error(fdExcess(analytic, numeric, value, ROUNDING, FD_TOL))).toBeLessThanOrEqual(
          1,
        );
      }),
      { numRuns: NUM_RUNS },
    );
  });

  test('jvp and vjp are transposes: <v, J u> = <Jᵀ v, u>', () => {
    const s = track('jvp/vjp transpose', 'relative error');
    fc.assert(
      fc.property(programArb({ nonScalar: true }), (p) => {
        // No kink filter: jvp and vjp share the tie rules, so they are transposes at every point.
        s.runs++;
        const n = p.shapes.length;
        const specs = specsOf(p.shapes);
        const outShapes = [p.poolShapes[p.vectorIndex], []];
        expect(outShapes[0].length).toBeGreaterThan(0);
        const xs = p.inputValues();
        const us = p.randomVectors(p.inputSizes, 1);
        const vs = p.randomVectors(
          outShapes.map((sh) => sh.reduce((a, d) => a * d, 1)),
          2,
        );
        const forward = hostFunction(
          (...t) => jvp((...a: Tensor[]) => p.vector(a), t.slice(0, n), t.slice(n))[1],
          [...specs, ...specs],
        );
        const reverse = hostFunction(
          (...t) => vjp((...a: Tensor[]) => p.vector(a), ...t.slice(0, n))[1](t.slice(n)),
          [...specs, ...specsOf(outShapes)],
        );
        const ju = concatAll(forward(...xs, ...us));
        const jtv = concatAll(reverse(...xs, ...vs));
        const v = concatAll(vs);
        const u = concatAll(us);
        const lhs = dot(v, ju);
        const rhs = dot(jtv, u);
        const scale = Math.max(
          1,
          dot(v.map(Math.abs), ju.map(Math.abs)),
          dot(jtv.map(Math.abs), u.map(Math.abs)),
        );
        // Both sides are autodiff and equal in exact arithmetic: only float64 rounding separates
        // them.
        expect(s.error(Math.abs(lhs - rhs) / scale)).toBeLessThan(EXACT_TOL);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  test('jvp matches a central directional difference, and returns the primal output', () => {
    const s = track('jvp vs FD', 'error/allowance');
    fc.assert(
      fc.property(programArb({ nonScalar: true }), (p) => {
        const xs = p.inputValues();
        s.skipNearKinks((t) => p.vector(t), p.shapes, xs, KINK_MARGIN);
        const n = p.shapes.length;
        const specs = specsOf(p.shapes);
        const us = p.randomVectors(p.inputSizes, 3);
        const F = hostFunction((...t) => p.vector(t), specs);
        const forward = hostFunction(
          (...t) => {
            const [primal, tangent] = jvp(
              (...a: Tensor[]) => p.vector(a),
              t.slice(0, n),
              t.slice(n),
            );
            return [...primal, ...tangent];
          },
          [...specs, ...specs],
        );
        const out = forward(...xs, ...us);
        const primal = concatAll(out.slice(0, 2));
        const tangent = concatAll(out.slice(2));
        const value = concatAll(F(...xs));
        // The primal is the same graph as F's: equal up to (at most) rounding.
        expect(maxScaledError(primal, value)).toBeLessThan(EXACT_TOL);
        const numeric = centralDirectional(
          (flat) => concatAll(F(...splitAs(flat, p.inputSizes))),
          concatAll(xs),
          concatAll(us),
          H,
        );
        // |u| ≤ 1 per component, so the header's budget applies, each output component's rounding
        // allowance scaled by that component's own value.
        expect(s.error(fdExcess(tangent, numeric, value, ROUNDING, FD_TOL))).toBeLessThanOrEqual(1);
      }),
      { numRuns: NUM_RUNS },
    );
  });
});
