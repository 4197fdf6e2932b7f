// The test problems of the optimizer matrix, with their gradients in plain float64 (fed to
// compileOptimizer's step): a convex quadratic of condition number 10, the 2-D Rosenbrock
// function, and seeded random parameters and gradients.
import { seededUniform } from '../dsl/nn/init.js';

/** A problem over a list of leaves: loss and gradient in float64, a start point. */
export interface Problem {
  readonly name: string;
  readonly shapes: readonly (readonly number[])[];
  readonly start: readonly Float64Array[];
  loss(x: readonly Float64Array[]): number;
  grad(x: readonly Float64Array[]): Float64Array[];
}

/** Curvatures 1…10 over two leaves: condition number exactly 10. */
const QUAD_D = [Float64Array.of(1, 2, 3, 4), Float64Array.of(5, 6, 7, 8, 9, 10)];

/**
 * ½ Σ dᵢxᵢ² over a vector [4] and a matrix [2, 3], d = 1…10; minimum 0 at x = 0, ≈ 12.24 at the
 * start.
 */
export const quadratic: Problem = {
  name: 'quadratic',
  shapes: [[4], [2, 3]],
  // Dyadic values: exact in float32 too, so every device starts from the same point.
  start: [Float64Array.of(1, -1, 0.5, -0.5), Float64Array.of(0.25, -0.75, 1, 0.125, -0.375, 0.875)],
  loss: (x) =>
    x.reduce((acc, xs, k) => acc + xs.reduce((a, v, i) => a + 0.5 * QUAD_D[k][i] * v * v, 0), 0),
  grad: (x) => x.map((xs, k) => xs.map((v, i) => QUAD_D[k][i] * v)),
};

/** (1 − x)² + 100(y − x²)² over one leaf [2]; minimum 0 at (1, 1), 12.5 at the start (−1.5, 2). */
export const rosenbrock: Problem = {
  name: 'rosenbrock',
  shapes: [[2]],
  start: [Float64Array.of(-1.5, 2)],
  loss: ([[x, y]]) => (1 - x) ** 2 + 100 * (y - x * x) ** 2,
  grad: ([[x, y]]) => [Float64Array.of(-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x))],
};

/**
 * A small seeded generator of uniforms in [0, 1) (mulberry32, as model.init uses): reproducible
 * problems.
 */
export function prng(seed: number): () => number {
  return seededUniform(seed >>> 0);
}

/** Shapes of the random problems: a vector, a matrix and a scalar. */
export const RANDOM_SHAPES: readonly (readonly number[])[] = [[3], [2, 3], []];

/** Random parameters and `steps` gradient lists for RANDOM_SHAPES, values dyadic in [−1, 1). */
export function randomProblem(
  seed: number,
  steps: number,
): { params: Float64Array[]; grads: Float64Array[][] } {
  const rng = prng(seed);
  const leaves = () =>
    RANDOM_SHAPES.map((s) =>
      Float64Array.from(
        { length: s.reduce((a, b) => a * b, 1) },
        () => Math.floor(rng() * 2 ** 17) / 2 ** 16 - 1,
      ),
    );
  return { params: leaves(), grads: Array.from({ length: steps }, leaves) };
}
