import { GrngError } from '../../core/errors.js';
import { seededUniform } from '../../dsl/nn/init.js';

/** A seeded permutation of 0..n−1 (mulberry32 + Fisher–Yates): the order of one epoch. */
export function shuffled(n: number, seed: number): Int32Array {
  // A negative or NaN n would give an empty order, and a NaN seed seed 0, silently.
  if (!Number.isInteger(n) || n < 0 || n > 2 ** 31 - 1)
    throw new GrngError('shuffled', `n must be a non-negative integer (a row count), got ${n}`);
  if (!Number.isInteger(seed))
    throw new GrngError('shuffled', `seed must be an integer, got ${seed}`);
  const next = seededUniform(seed >>> 0);
  const p = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}
