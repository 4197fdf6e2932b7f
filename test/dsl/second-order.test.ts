// Second- and third-order autodiff on random well-typed programs (test/support/programs.ts),
// evaluated in float64 on the interpreter. Transforms compose: hvp is jvp-of-grad, the
// RENG term is grad-of-(sqnorm-of-grad), and third order is grad-of-hvp.
//
// References are finite differences of lower-order results: of the reverse-mode gradient for
// hvp and the Hessian (so they check the forward-over-reverse layer; grad itself is checked in
// autodiff-random.test.ts), of f itself for grad-of-grad, of hvp for third order.
// A central difference of a function q with step h in float64 is off by
// - truncation h²·|q‴|/6: with h = 1e-5, ~2e-11·|q‴|; these programs keep |q‴| within ~1e2 of
//   max(1, |q′|), so ≲ 1e-8 relative. FD_TOL = 1e-6 is two orders above that, and far below a
//   wrong rule (off by O(1) relative);
// - rounding ≈ ε·|q|/h per rounding in q, which scales with |q| itself: the allowance adds
//   ROUNDING_DEPTH·ε·|q|/h from the actual values (< 1e-6 for |q| ≲ 1e2, where FD_TOL governs).
// Points within KINK_MARGIN = 1e-3 of a kink (≫ h times any slope here) are discarded with
// fc.pre; the discard rate is printed.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { add, globalSqnorm, grad, hvp, mul, scalar, sum, type Tensor } from '../../index.js';
import { hostFunction } from '../support/host-function.js';
import { centralDirectional, centralGradient, maxScaledError } from '../support/numeric.js';
import {
  concatAll,
  EPS,
  fdExcess,
  programArb,
  propertyStatsTracker,
  ROUNDING_DEPTH,
  specsOf,
  splitAs,
  type Program,
} from '../support/programs.js';

const KINK_MARGIN = 1e-3;
/** Central-difference step for first differences (see the header). */
const H = 1e-5;
/**
 * Truncation tolerance of autodiff vs first central differences, relative to max(1, |FD|) (header).
 */
const FD_TOL = 1e-6;
/** Rounding allowance of a central difference per unit of the differenced value (header). */
const ROUNDING = (ROUNDING_DEPTH * EPS) / H;
/**
 * Two autodiff results equal in exact arithmetic, differing only in float64 association order:
 * rounding is ~graph depth · ε ≈ 1e-14 of the magnitudes involved; 1e-10 leaves 1e4 headroom.
 */
const EXACT_TOL = 1e-10;

// Smaller programs than the first-order suite: derivative graphs grow with the order, and the
// explicit Hessian costs one hvp and two gradients per input element.
const small = { maxInstructions: 6, maxInputSize: 8, maxValueSize: 32 };
const NUM_RUNS = 100;

const track = propertyStatsTracker();

/**
 * x ↦ ∇f(x) as a flat vector, by reverse mode (checked against central differences in
 * autodiff-random.test.ts).
 */
function gradientOf(p: Program): (flat: Float64Array) => Float64Array {
  const g = hostFunction((...t) => grad((xs: Tensor[]) => p.scalar(xs))(t), specsOf(p.shapes));
  return (flat) => concatAll(g(...splitAs(flat, p.inputSizes)));
}

/** (x, v) ↦ H(x)·v as a flat vector, by hvp (forward over reverse). */
function hvpOf(p: Program): (x: Float64Array, v: Float64Array) => Float64Array {
  const n = p.shapes.length;
  const specs = specsOf(p.shapes);
  const h = hostFunction(
    (...t) => hvp((xs: Tensor[]) => p.scalar(xs))(t.slice(0, n), t.slice(n)),
    [...specs, ...specs],
  );
  return (x, v) => concatAll(h(...splitAs(x, p.inputSizes), ...splitAs(v, p.inputSizes)));
}

describe('higher-order autodiff on random programs (float64 interpreter)', () => {
  test('hvp(f)(x, v) matches the central difference of grad(f) along v', () => {
    const s = track('hvp vs FD of grad', 'error/allowance');
    fc.assert(
      fc.property(programArb(small), (p) => {
        const xs = p.inputValues();
        s.skipNearKinks((t) => p.scalar(t), p.shapes, xs, KINK_MARGIN);
        const x = concatAll(xs);
        const v = concatAll(p.randomVectors(p.inputSizes, 1));
        const g = gradientOf(p);
        const analytic = hvpOf(p)(x, v);
        const numeric = centralDirectional(g, x, v, H);
        // |v| ≤ 1 per component: the header's budget, rounding scaled by each |∂f/∂x_i|.
        expect(s.error(fdExcess(analytic, numeric, g(x), ROUNDING, FD_TOL))).toBeLessThanOrEqual(1);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  test('RENG identity: grad(x ↦ ½‖∇f(x)‖²) = hvp(f)(x, ∇f(x))', () => {
    const s = track('RENG identity', 'relative error');
    fc.assert(
      fc.property(programArb(small), (p) => {
        // No kink filter: both sides differentiate the same gradient graph, whose Jacobian is
        // symmetric on every piece between kinks and on structural ties alike.
        s.runs++;
        const f = (xs: Tensor[]) => p.scalar(xs);
        const specs = specsOf(p.shapes);
        const both = hostFunction(
          (...t) => [
            ...grad((xs: Tensor[]) => mul(globalSqnorm(grad(f)(xs)), 0.5))(t),
            ...hvp(f)(t, grad(f)(t)),
          ],
          specs,
        );
        const out = both(...p.inputValues());
        const k = p.shapes.length;
        const doubleBackprop = concatAll(out.slice(0, k));
        const forwardOverReverse = concatAll(out.slice(k));
        // Reverse-over-reverse vs forward-over-reverse: exact identity, float64 rounding only.
        expect(s.error(maxScaledError(doubleBackprop, forwardOverReverse))).toBeLessThan(EXACT_TOL);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  test(
    'the Hessian built from hvp columns matches finite differences of grad ' + 'and is symmetric',
    () => {
      const s = track('Hessian vs FD', 'error/allowance');
      const sym = track('Hessian symmetry', 'relative asymmetry');
      fc.assert(
        fc.property(programArb(small), (p) => {
          const xs = p.inputValues();
          s.skipNearKinks((t) => p.scalar(t), p.shapes, xs, KINK_MARGIN);
          sym.runs++;
          const x = concatAll(xs);
          const n = x.length;
          const Hv = hvpOf(p);
          const g = gradientOf(p);
          const gx = g(x);
          const columns: Float64Array[] = [];
          for (let j = 0; j < n; j++) {
            const e = new Float64Array(n);
            e[j] = 1;
            const column = Hv(x, e);
            columns.push(column);
            // Unit direction: the header's budget applies per column, rounding scaled by |∂f/∂x_i|.
            expect(
              s.error(fdExcess(column, centralDirectional(g, x, e, H), gx, ROUNDING, FD_TOL)),
            ).toBeLessThanOrEqual(1);
          }
          let scale = 1;
          for (const c of columns) for (const h of c) scale = Math.max(scale, Math.abs(h));
          let asym = 0;
          for (let i = 0; i < n; i++)
            for (let j = 0; j < i; j++)
              asym = Math.max(asym, Math.abs(columns[j][i] - columns[i][j]));
          // H_ij and H_ji come from different hvp evaluations of the same gradient graph: equal in
          // exact arithmetic, so only rounding (relative to the Hessian's scale) may separate them.
          expect(sym.error(asym / scale)).toBeLessThan(EXACT_TOL);
        }),
        { numRuns: 60 },
      );
    },
  );

  test('grad(grad(φ)) of a scalar-input φ(t) = f(x₀ + t·d) matches second differences of f', () => {
    const s = track('grad of grad vs 2nd FD', 'error/allowance');
    // Second central difference D(h) = (φ(t+h) − 2φ(t) + φ(t−h))/h², Richardson-extrapolated:
    // R = (4·D(h/2) − D(h))/3 cancels the h² truncation term, leaving O(h⁴·|φ⁽⁶⁾|) ≈ 1e-12·|φ⁽⁶⁾|
    // for h = 1e-3, negligible. Rounding: D(h) carries 4·δ/h² for an error δ in φ, so R carries
    // (4·16 + 4)/3·δ/h² ≈ 23·δ/h², with δ = ROUNDING_DEPTH·ε·|φ|: ≈ 2.5e-7·|φ|, an allowance
    // computed from the value as in the header; the truncation tolerance stays FD_TOL.
    const H2 = 1e-3;
    const ROUNDING2 = (23 * ROUNDING_DEPTH * EPS) / (H2 * H2);
    fc.assert(
      fc.property(programArb(small), fc.integer({ min: -50, max: 50 }), (p, tHundredths) => {
        const t0 = tHundredths / 100;
        const x0 = p.inputValues();
        const d = p.randomVectors(p.inputSizes, 2);
        const at = (t: number) => x0.map((x, i) => x.map((xi, k) => xi + t * d[i][k]));
        // The differences move t by at most h = 1e-3 along |d| ≤ 1: inside the kink margin.
        s.skipNearKinks((xs) => p.scalar(xs), p.shapes, at(t0), KINK_MARGIN);
        const n = p.shapes.length;
        const phi = (t: Tensor, ...rest: Tensor[]) =>
          p.scalar(rest.slice(0, n).map((x, i) => add(x, mul(t, rest[n + i]))));
        const specs = [{ shape: [] }, ...specsOf(p.shapes), ...specsOf(p.shapes)];
        const second = hostFunction((t, ...rest) => grad(grad(phi))(t, ...rest), specs);
        const value = hostFunction((t, ...rest) => phi(t, ...rest), specs);
        const phiAt = (t: number) => value(Float64Array.of(t), ...x0, ...d)[0][0];
        const D = (h: number) => (phiAt(t0 + h) - 2 * phiAt(t0) + phiAt(t0 - h)) / (h * h);
        const numeric = (4 * D(H2 / 2) - D(H2)) / 3;
        const analytic = second(Float64Array.of(t0), ...x0, ...d)[0][0];
        expect(
          s.error(fdExcess([analytic], [numeric], phiAt(t0), ROUNDING2, FD_TOL)),
        ).toBeLessThanOrEqual(1);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  test(
    'third order: grad of <w, hvp(f)(x, u)> matches central differences of ' + 'that hvp product',
    () => {
      const s = track('grad of hvp vs FD', 'error/allowance');
      fc.assert(
        fc.property(programArb({ ...small, maxInstructions: 4 }), (p) => {
          const xs = p.inputValues();
          s.skipNearKinks((t) => p.scalar(t), p.shapes, xs, KINK_MARGIN);
          const n = p.shapes.length;
          const specs = specsOf(p.shapes);
          const us = p.randomVectors(p.inputSizes, 3);
          const ws = p.randomVectors(p.inputSizes, 4);
          const f = (t: Tensor[]) => p.scalar(t);
          // ψ(x) = Σ_i <w_i, (H(x)u)_i> = D³f(x)[u, w, ·] contracted twice; its gradient is third
          // order.
          const psi = (x: Tensor[], u: Tensor[], w: Tensor[]) =>
            hvp(f)(x, u)
              .map((h, i) => sum(mul(h, w[i])))
              .reduce((a, b) => add(a, b), scalar(0));
          const thirdOrder = hostFunction(
            (...t) => grad(psi)(t.slice(0, n), t.slice(n, 2 * n), t.slice(2 * n)),
            [...specs, ...specs, ...specs],
          );
          const psiValue = hostFunction(
            (...t) => psi(t.slice(0, n), t.slice(n, 2 * n), t.slice(2 * n)),
            [...specs, ...specs, ...specs],
          );
          const analytic = concatAll(thirdOrder(...xs, ...us, ...ws));
          const numeric = centralGradient(
            (flat) => psiValue(...splitAs(flat, p.inputSizes), ...us, ...ws)[0][0],
            concatAll(xs),
            H,
          );
          // ψ is a second derivative contracted with |u|, |w| ≤ 1: the header's budget applies,
          // rounding scaled by |ψ|.
          expect(
            s.error(
              fdExcess(analytic, numeric, psiValue(...xs, ...us, ...ws)[0][0], ROUNDING, FD_TOL),
            ),
          ).toBeLessThanOrEqual(1);
        }),
        { numRuns: NUM_RUNS },
      );
    },
  );
});
