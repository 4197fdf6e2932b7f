import { GrngError } from '../../core/errors.js';
import { HostArray } from '../../core/host-array.js';

/**
 * A seeded stream of uniform numbers in [0, 1) (mulberry32): the same seed gives the same
 * parameters everywhere.
 */
export function seededUniform(seed: number): () => number {
  if (!Number.isInteger(seed))
    throw new GrngError('init', `the seed must be an integer, got ${String(seed)}`);
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * U(−bound, bound) values of `shape` (PyTorch's Linear default uses bound = 1/√fan_in for weight
 * and bias).
 */
export function uniformInit(
  next: () => number,
  shape: readonly number[],
  bound: number,
): HostArray {
  const n = shape.reduce((a, d) => a * d, 1);
  return new HostArray(
    Float64Array.from({ length: n }, () => (2 * next() - 1) * bound),
    shape,
    'f32',
  );
}

/**
 * N(0, std²) values of `shape` by the Box–Muller transform of the seeded uniform stream (PyTorch's
 * nn.init.normal_; ViT's position embeddings use std 0.02, nn.Embedding std 1).
 */
export function normalInit(next: () => number, shape: readonly number[], std: number): HostArray {
  const n = shape.reduce((a, d) => a * d, 1);
  return new HostArray(
    Float64Array.from({ length: n }, () => {
      const u = 1 - next(); // in (0, 1]: log(u) is finite
      return std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
    }),
    shape,
    'f32',
  );
}

export const onesInit = (shape: readonly number[]): HostArray =>
  new HostArray(new Float64Array(shape.reduce((a, d) => a * d, 1)).fill(1), shape, 'f32');

export const zerosInit = (shape: readonly number[]): HostArray =>
  new HostArray(new Float64Array(shape.reduce((a, d) => a * d, 1)), shape, 'f32');

/** A seed for part `index` of a model initialised with `seed` (distinct streams per layer). */
export const childSeed = (seed: number, index: number): number =>
  (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(index + 1, 0xc2b2ae35)) >>> 0;
