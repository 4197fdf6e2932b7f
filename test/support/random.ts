import fc from 'fast-check';
import { seededUniform } from '../../dsl/nn/init.js';

// Deterministic uniform numbers for test data (fast-check picks the seed, so it shrinks and
// replays).

/**
 * mulberry32: a small, well-mixed 32-bit PRNG returning floats in [0, 1) (the library's seeded
 * stream).
 */
export const prng = (seed: number): (() => number) => seededUniform(seed >>> 0);

export function uniform(rng: () => number, n: number, lo = -1, hi = 1): Float64Array {
  return Float64Array.from({ length: n }, () => lo + (hi - lo) * rng());
}

export const sizeOf = (shape: readonly number[]): number => shape.reduce((a, d) => a * d, 1);

/** fast-check seeds for prng: shrinking a seed is meaningless, but it replays exactly. */
export const seedArb = fc.integer({ min: 0, max: 0xffffffff });

/** A uniform integer in [lo, hi]. */
export const int = (rng: () => number, lo: number, hi: number): number =>
  lo + Math.floor(rng() * (hi - lo + 1));

export const randomShape = (
  rng: () => number,
  minRank: number,
  maxRank: number,
  minDim: number,
  maxDim: number,
): number[] => Array.from({ length: int(rng, minRank, maxRank) }, () => int(rng, minDim, maxDim));

/** Fisher–Yates. */
export const shuffle = <T>(rng: () => number, xs: readonly T[]): T[] => {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = int(rng, 0, i);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
};

export const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/**
 * Values as a plain array with −0 as +0, for exact comparisons where the sign of zero is
 * immaterial.
 */
export const plain = (xs: ArrayLike<number>): number[] => Array.from(xs, (v) => v + 0);
