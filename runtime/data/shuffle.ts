import { seededUniform } from '../../dsl/nn/init.js';

/** A seeded permutation of 0..n−1 (mulberry32 + Fisher–Yates): the order of one epoch. */
export function shuffled(n: number, seed: number): Int32Array {
  const next = seededUniform(seed >>> 0);
  const p = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}
