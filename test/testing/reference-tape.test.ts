// grng/testing's scalar tape and the token models written on it (testing/reference-tape.ts,
// testing/reference-transformer.ts) against central differences of themselves, and their taps
// against their gradient. Their agreement with the DSL's nn layers is what
// check-training-optimizer.test.ts shows (SGD and GR-SGD through the checker on token models).
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { valueArray } from '../../testing/arbitraries.js';
import { Tape } from '../../testing/reference-tape.js';
import { tokenLeaves, tokenPass } from '../../testing/reference-transformer.js';
import { transformerCase } from '../../testing/transformer-case.js';
import { SEED } from '../support/fast-check-setup.js';

// Central differences need a smooth loss: relu's kink at 0 is hit exactly on the 2^-16 grid.
const smooth = transformerCase({ activations: ['tanh', 'gelu'] }, 1, fc.constant({}));
const H = 1e-5;

describe('reference tape (float64)', () => {
  test('each op: gradient and H·v of a small expression by hand', () => {
    // f(x, y) = x·y + exp(x)/y at (0.5, 2) along v = (1, −1): ∇f = (y + eˣ/y, x − eˣ/y²).
    const t = new Tape();
    const [x0, y0] = [0.5, 2];
    const x = t.input(x0, 1);
    const y = t.input(y0, -1);
    const f = t.add(t.mul(x, y), t.div(t.exp(x), y));
    const adj = t.backward(f);
    const e = Math.exp(x0);
    expect(adj.gradient(x)).toBeCloseTo(y0 + e / y0, 14);
    expect(adj.gradient(y)).toBeCloseTo(x0 - e / (y0 * y0), 14);
    // Hessian [[eˣ/y, 1 − eˣ/y²], [1 − eˣ/y², 2eˣ/y³]] times (1, −1).
    expect(adj.hvp(x)).toBeCloseTo(e / y0 - (1 - e / y0 ** 2), 14);
    expect(adj.hvp(y)).toBeCloseTo(1 - e / y0 ** 2 - (2 * e) / y0 ** 3, 14);
  });

  test('token models: gradient == central differences of the loss; H·v == differences of ∇L', () => {
    let worstGrad = 0;
    let worstHvp = 0;
    fc.assert(
      fc.property(
        smooth.chain((c) =>
          fc.tuple(fc.constant(c), fc.tuple(...c.leaves.map((x) => valueArray(x.length)))),
        ),
        ([c, direction]) => {
          const { x, labels } = c.batches[0];
          const v = direction.map((xs) => Float64Array.from(xs));
          const run = (p: readonly Float64Array[], tangent?: readonly Float64Array[]) =>
            tokenPass(c.model, p, x, labels, tangent);
          const moved = (sign: number) =>
            c.leaves.map((leaf, k) => leaf.map((e, i) => e + sign * H * v[k][i]));
          const pass = run(c.leaves, v);
          const directional = pass.gradient.reduce(
            (s, g, k) => s + g.reduce((t, e, i) => t + e * v[k][i], 0),
            0,
          );
          const fd = (run(moved(1)).loss - run(moved(-1)).loss) / (2 * H);
          // Truncation h²·|L‴|/6 and rounding ε·|L|/h: ≈ 1e-10·|L‴| + 1e-11. LayerNorm's
          // 1/√(var + eps) ≤ 316 can make L‴ large on rows of nearly equal tokens, hence 1e-6.
          const gErr = Math.abs(directional - fd) / Math.max(1, Math.abs(fd));
          worstGrad = Math.max(worstGrad, gErr);
          expect(gErr).toBeLessThan(1e-6);
          const up = run(moved(1)).gradient;
          const down = run(moved(-1)).gradient;
          pass.hvp.forEach((leaf, k) =>
            leaf.forEach((e, i) => {
              const want = (up[k][i] - down[k][i]) / (2 * H);
              const err = Math.abs(e - want) / Math.max(1, Math.abs(want));
              worstHvp = Math.max(worstHvp, err);
              expect(err).toBeLessThan(1e-5);
            }),
          );
        },
      ),
      { seed: SEED, numRuns: 40 },
    );
    console.log(
      `tape vs central differences: gradient ${worstGrad.toExponential(2)}, ` +
        `H·v ${worstHvp.toExponential(2)}`,
    );
  });

  test('taps: gᵀa / B over all B·T rows is the gradient of token-shared W and b', () => {
    const any = transformerCase({}, 1, fc.constant({}));
    let shared = 0;
    const seen = new Set<string>();
    fc.assert(
      fc.property(any, (c) => {
        for (const b of c.model.blocks)
          seen.add(
            b.kind === 'attention'
              ? `attention${b.heads > 1 ? ' multi-head' : ''}${b.causal ? ' causal' : ''}`
              : b.kind,
          );
        const { x, labels } = c.batches[0];
        const pass = tokenPass(c.model, c.leaves, x, labels);
        const leafNames = tokenLeaves(c.model).names;
        // The attention's q, k, v, o and every dense block tap, then the head.
        const expected = c.model.blocks.reduce(
          (n, b) => n + (b.kind === 'attention' ? 4 : b.kind === 'dense' ? 1 : 0),
          1,
        );
        expect(pass.taps.length).toBe(expected);
        for (const tap of pass.taps) {
          if (tap.positions > 1) shared++;
          const w = pass.gradient[leafNames.indexOf(tap.w)];
          const b = tap.b === undefined ? undefined : pass.gradient[leafNames.indexOf(tap.b)];
          const inputs = tap.in - (b === undefined ? 0 : 1);
          const rows = tap.batch * tap.positions;
          for (let o = 0; o < tap.out; o++)
            for (let j = 0; j < tap.in; j++) {
              let s = 0;
              for (let r = 0; r < rows; r++) s += tap.g[r * tap.out + o] * tap.a[r * tap.in + j];
              const want = j < inputs ? w[o * inputs + j] : (b as Float64Array)[o];
              // The same sums in another order: a few ulps of the terms' magnitude.
              expect(Math.abs(s / tap.batch - want)).toBeLessThan(1e-12);
            }
        }
      }),
      { seed: SEED, numRuns: 60 },
    );
    expect(shared).toBeGreaterThan(0);
    // The draws reach every block kind, multi-head and causal attention included.
    for (const kind of ['dense', 'norm', 'attention', 'attention multi-head', 'attention causal'])
      expect(seen).toContain(kind);
  });
});
