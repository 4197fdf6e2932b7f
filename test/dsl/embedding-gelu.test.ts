// erf, gelu and take (embedding lookup) on the float64 interpreter, against references written
// here in plain loops: 40-digit erf values (mpmath), erf by Gauss–Legendre quadrature of its
// integral, gelu from its definition, and row copies / scatter-adds by hand. Plus the errors a
// user can cause.
//
// Tolerances:
// - erf vs the 40-digit values (rounded once to float64, so ≤ ε/2 = 1.1e-16 off): the
//   interpreter's erf measured ≤ 2.7e-16 relative over 25 000 points (core/ops/erf.ts);
//   ERF_TOL = 1e-15 leaves 4× headroom and still catches a lost digit.
// - The quadrature reference: 5-point Gauss–Legendre on 64 panels of width ≤ 0.1 has truncation
//   error ~h¹⁰·max|f⁽¹⁰⁾|/10⁶ < 1e-20 here, and sums 320 terms in float64 (≤ 320ε relative
//   worst case, ~√320·ε typically): within 1e-14 of erf.
// - gelu vs its definition: the same formula evaluated in a different order over the quadrature
//   erf (≤ 1e-14): QUAD_TOL = 1e-13 scaled (absolute below 1, relative above).
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  constant,
  erf,
  gelu,
  grad,
  GrngError,
  input,
  mul,
  sin,
  sum,
  take,
  type Tensor,
} from '../../index.js';
import { hostFunction, type ArgSpec } from '../support/host-function.js';
import { maxScaledError } from '../support/numeric.js';
import { int, prng, randomShape, seedArb, sizeOf, uniform } from '../support/random.js';

const ERF_TOL = 1e-15;
const QUAD_TOL = 1e-13;

/** erf(x) at 40 digits (mpmath), rounded to float64. */
const ERF_REFERENCE: readonly (readonly [number, number])[] = [
  [1e-300, 1.1283791670955126e-300],
  [1e-10, 1.1283791670955126e-10],
  [0.0001, 0.00011283791633342487],
  [0.01, 0.011283415555849618],
  [0.1, 0.1124629160182849],
  [0.224974, 0.24963739956920025],
  [0.25, 0.27632639016823696],
  [0.347994, 0.37737809247100695],
  [0.419133, 0.4466472240870048],
  [0.434618, 0.4612092716014779],
  [0.5, 0.5204998778130465],
  [0.544278, 0.558537158308622],
  [0.75, 0.7111556336535151],
  [0.9, 0.7969082124228322],
  [0.905095, 0.7994540285458834],
  [1.0, 0.8427007929497149],
  [1.1, 0.8802050695740817],
  [1.2, 0.9103139782296353],
  [1.249, 0.922663311315066],
  [1.25, 0.9229001282564583],
  [1.3, 0.9340079449406524],
  [1.5, 0.9661051464753108],
  [1.75, 0.9866716712191824],
  [1.942997, 0.9940005731466368],
  [2.0, 0.9953222650189527],
  [2.194134, 0.9980841356796529],
  [2.5, 0.999593047982555],
  [2.547115, 0.9996844215419908],
  [2.601874, 0.9997664049614721],
  [3.0, 0.9999779095030014],
  [3.044614, 0.9999833567356675],
  [3.215292, 0.9999945612308712],
  [3.5, 0.9999992569016276],
  [3.905607, 0.9999999667427211],
  [4.0, 0.9999999845827421],
  [4.5, 0.9999999998033839],
  [4.961113, 0.999999999997718],
  [5.0, 0.9999999999984626],
  [5.5, 0.9999999999999927],
  [5.9, 0.9999999999999999],
];

// 5-point Gauss–Legendre nodes and weights on [-1, 1].
const GL_NODES = [
  0, -0.5384693101056831, 0.5384693101056831, -0.906179845938664, 0.906179845938664,
];
const GL_WEIGHTS = [
  0.5688888888888889, 0.47862867049936647, 0.47862867049936647, 0.23692688505618908,
  0.23692688505618908,
];

/** erf(x) = 2/√π ∫₀ˣ e^(−t²) dt by composite Gauss–Legendre (64 panels). */
function erfByQuadrature(x: number): number {
  const panels = 64;
  const h = x / panels;
  let total = 0;
  for (let k = 0; k < panels; k++) {
    const mid = (k + 0.5) * h;
    for (let j = 0; j < 5; j++) {
      const t = mid + (h / 2) * GL_NODES[j];
      total += GL_WEIGHTS[j] * Math.exp(-t * t);
    }
  }
  return (2 / Math.sqrt(Math.PI)) * total * (h / 2);
}

const f32 = (...shape: number[]): ArgSpec => ({ shape });
const i32 = (...shape: number[]): ArgSpec => ({ shape, dtype: 'i32' });
const run = (f: (...xs: Tensor[]) => Tensor, specs: ArgSpec[], ...xs: Float64Array[]) =>
  hostFunction(f, specs)(...xs)[0];

function expectGrngError(f: () => unknown, op: string, fragment: string): void {
  try {
    f();
  } catch (error) {
    expect(error).toBeInstanceOf(GrngError);
    expect((error as Error).message).toContain(op);
    expect((error as Error).message).toContain(fragment);
    return;
  }
  throw new Error(`expected a GrngError from ${op} mentioning "${fragment}"`);
}

describe('erf', () => {
  test('the float64 interpreter matches 40-digit values within 1e-15 (relative), both signs', () => {
    const xs = Float64Array.from(ERF_REFERENCE, ([x]) => x);
    const want = Float64Array.from(ERF_REFERENCE, ([, y]) => y);
    const got = run(erf, [f32(xs.length)], xs);
    const neg = run(
      erf,
      [f32(xs.length)],
      xs.map((x) => -x),
    );
    let worst = 0;
    got.forEach((g, i) => {
      worst = Math.max(worst, Math.abs(g - want[i]) / want[i]);
      expect(neg[i]).toBe(-g); // odd exactly: the sign is applied last
    });
    console.log(`erf vs 40-digit references: worst relative error ${worst.toExponential(2)}`);
    expect(worst).toBeLessThanOrEqual(ERF_TOL);
  });

  test('matches the quadrature reference at random points of [-7, 7]', () => {
    fc.assert(
      fc.property(seedArb, (seed) => {
        const xs = uniform(prng(seed), 16, -7, 7);
        const got = run(erf, [f32(16)], xs);
        expect(maxScaledError(got, xs.map(erfByQuadrature))).toBeLessThan(QUAD_TOL);
      }),
    );
  });

  test('special values: ±0, ±∞, NaN; float32 mode rounds the float64 value once', () => {
    const xs = Float64Array.of(0, -0, Infinity, -Infinity, NaN, 6, -6, 30);
    const got = run(erf, [f32(xs.length)], xs);
    expect(Array.from(got)).toEqual([0, -0, 1, -1, NaN, 1, -1, 1]);
    const ys = Float64Array.of(0.1, 0.7, 1.3, 2.9);
    const f64 = run(erf, [f32(4)], ys);
    const single = hostFunction(erf, [f32(4)], 'f32')(ys.map(Math.fround))[0];
    expect(Array.from(single)).toEqual(
      Array.from(run(erf, [f32(4)], ys.map(Math.fround)), Math.fround),
    );
    expect(maxScaledError(single, f64)).toBeLessThan(1e-6); // f32 inputs and one rounding
  });

  test('its gradient is 2/√π·e^(−x²)', () => {
    const xs = Float64Array.of(-2, -0.5, 0, 0.3, 1.7);
    const g = run((x) => grad((t: Tensor) => sum(erf(t)))(x), [f32(5)], xs);
    const want = xs.map((x) => (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x));
    expect(maxScaledError(g, want)).toBeLessThan(1e-15);
  });
});

describe('gelu', () => {
  const definition = (x: number) => x * 0.5 * (1 + erfByQuadrature(x / Math.SQRT2));
  const tanhForm = (x: number) =>
    0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));

  test("'none' is x·½(1 + erf(x/√2)) and 'tanh' PyTorch's tanh form, in float64", () => {
    fc.assert(
      fc.property(seedArb, (seed) => {
        const xs = uniform(prng(seed), 24, -8, 8);
        const exact = run((t) => gelu(t), [f32(24)], xs);
        const approx = run((t) => gelu(t, 'tanh'), [f32(24)], xs);
        expect(maxScaledError(exact, xs.map(definition))).toBeLessThan(QUAD_TOL);
        // Same formula, other evaluation order: a few ε of values ≤ 8.
        expect(maxScaledError(approx, xs.map(tanhForm))).toBeLessThan(1e-14);
      }),
    );
  });

  test("derivatives: Φ(x) + x·φ(x) for 'none'; the tanh form's own for 'tanh'", () => {
    const xs = Float64Array.of(-3, -1, -0.2, 0, 0.5, 2.5);
    const phi = (x: number) => Math.exp(-x * x * 0.5) / Math.sqrt(2 * Math.PI);
    const g = run((x) => grad((t: Tensor) => sum(gelu(t)))(x), [f32(6)], xs);
    const want = xs.map((x) => 0.5 * (1 + erfByQuadrature(x / Math.SQRT2)) + x * phi(x));
    expect(maxScaledError(g, want)).toBeLessThan(QUAD_TOL);
    const c = Math.sqrt(2 / Math.PI);
    const gt = run((x) => grad((t: Tensor) => sum(gelu(t, 'tanh')))(x), [f32(6)], xs);
    const wantT = xs.map((x) => {
      const th = Math.tanh(c * (x + 0.044715 * x ** 3));
      return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * c * (1 + 3 * 0.044715 * x * x);
    });
    expect(maxScaledError(gt, wantT)).toBeLessThan(1e-14);
  });

  test('rejects non-f32 tensors and unknown approximations', () => {
    expectGrngError(() => gelu(input('gi', [3], 'i32')), 'gelu', 'f32');
    expectGrngError(
      () => gelu(input('gx', [3]), 'erf' as unknown as 'none'),
      'gelu',
      "'none' or 'tanh'",
    );
  });
});

describe('take (embedding lookup)', () => {
  /** The rows of `table` (shape [V, ...rest]) at `ids` (clamped into [0, V)), by hand. */
  function rowsAt(table: Float64Array, shape: readonly number[], ids: ArrayLike<number>) {
    const width = sizeOf(shape.slice(1));
    const out: number[] = [];
    for (let p = 0; p < ids.length; p++) {
      const row = Math.min(Math.max(ids[p], 0), shape[0] - 1);
      for (let j = 0; j < width; j++) out.push(table[row * width + j]);
    }
    return out;
  }

  test('copies rows, clamping out-of-range ids; its table gradient adds cotangents per row', () => {
    fc.assert(
      fc.property(seedArb, (seed) => {
        const rng = prng(seed);
        const shape = [int(rng, 1, 5), ...randomShape(rng, 0, 2, 1, 3)];
        const idsShape = randomShape(rng, 0, 2, 1, 4);
        const table = uniform(rng, sizeOf(shape));
        const ids = Float64Array.from({ length: sizeOf(idsShape) }, () =>
          int(rng, -3, shape[0] + 2),
        );
        const got = run(take, [f32(...shape), i32(...idsShape)], table, ids);
        expect(Array.from(got)).toEqual(rowsAt(table, shape, ids)); // copies: exact
        // d/dtable Σ w ⊙ take(table, ids): w's rows added into the rows the ids read.
        const width = sizeOf(shape.slice(1));
        const w = uniform(rng, ids.length * width);
        const want = new Float64Array(table.length);
        for (let p = 0; p < ids.length; p++) {
          const row = Math.min(Math.max(ids[p], 0), shape[0] - 1);
          for (let j = 0; j < width; j++) want[row * width + j] += w[p * width + j];
        }
        const g = hostFunction(
          (t, i, wt) => grad((u: Tensor) => sum(mul(take(u, i), wt)))(t),
          [f32(...shape), i32(...idsShape), f32(...idsShape, ...shape.slice(1))],
        )(table, ids, w)[0];
        // The one-hot matmul sums the same terms in another order: ≤ n·ε of Σ|w| ≤ 24.
        expect(maxScaledError(g, want)).toBeLessThan(1e-14);
      }),
    );
  });

  test('the result shape is ids.shape then the rows; a number is one id', () => {
    const table = input('tbl', [5, 2, 3]);
    const ids = input('ids', [4, 1], 'i32');
    const r: Tensor<[4, 1, 2, 3]> = take(table, ids); // the type follows literal shapes
    expect(r.shape).toEqual([4, 1, 2, 3]);
    expect(take(table, 2).shape).toEqual([2, 3]);
    const row = run((t) => take(t, -1), [f32(3, 2)], Float64Array.of(1, 2, 3, 4, 5, 6));
    expect(Array.from(row)).toEqual([1, 2]); // −1 clamps to row 0 (no wrap-around as in NumPy)
    // Derivatives of any order: the second derivative of Σ sin(take(x, ids)) is diagonal.
    const x = Float64Array.of(0.3, -0.8, 1.1);
    const hv = run(
      (t) =>
        grad((u: Tensor) =>
          sum(grad((v: Tensor) => sum(sin(take(v, constant([2, 0, 2], [3], 'i32')))))(u)),
        )(t),
      [f32(3)],
      x,
    );
    // ∂/∂x_j Σ_p cos(x_{id_p})·[id_p = j] … = −sin(x_j)·(count of j among the ids)
    expect(maxScaledError(hv, [-Math.sin(0.3), 0, -2 * Math.sin(1.1)])).toBeLessThan(1e-15);
  });

  test('rejects non-i32 ids, tables without rows and non-integer ids with a GrngError', () => {
    const table = input('tb', [4, 2]);
    expectGrngError(() => take(table, input('fi', [3])), 'take', 'ids must be i32');
    expectGrngError(() => take(table, input('bi', [3], 'bool')), 'take', 'ids must be i32');
    expectGrngError(() => take(input('t0', []), input('i0', [2], 'i32')), 'take', 'row axis');
    expectGrngError(() => take(input('te', [0, 3]), input('i1', [2], 'i32')), 'take', 'row axis');
    expectGrngError(() => take(table, 1.5), 'take', 'i32 integer');
    expectGrngError(
      () => take(table, [1, 2] as unknown as Tensor),
      'take',
      'i32 Tensor or a number',
    );
    expectGrngError(() => take(3 as unknown as Tensor, 0), 'take', 'must be a Tensor');
  });
});
