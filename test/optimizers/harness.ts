// Shared plumbing for the optimizer suites: parameter lists as grng trees and back, random
// problems, and the f32 accuracy model the WebGPU comparisons use. Nothing here implements an
// optimizer (the references are in reference.ts).
import { expect } from 'vitest';
import { array, GrngError, type DeviceArray, type HostArray } from '../../index.js';
import { sizeOf, uniform } from '../support/random.js';
import type { Tensors } from './reference.js';

/** One f32 ULP relative to the value, at worst (2^-23: a value just above a power of two). */
export const ULP = 2 ** -23;

/**
 * A list of tensors as a grng tree that mixes an object and an array: `{ first, rest: [...] }`.
 * flattenTree orders object keys alphabetically ('first' < 'rest'), so the leaf order is the list
 * order.
 */
export type ListTree<L> = { first: L; rest: L[] };

export const asTree = <L>(xs: readonly L[]): ListTree<L> => ({ first: xs[0], rest: xs.slice(1) });

export const fromTree = <L>(tree: ListTree<L>): L[] => [tree.first, ...tree.rest];

/** Host arrays (f32 dtype) of the given values and shapes, as a list tree. */
export function hostTree(
  values: Tensors,
  shapes: readonly (readonly number[])[],
): ListTree<HostArray> {
  return asTree(values.map((v, i) => array(v, shapes[i])));
}

/** The values of a list tree of device arrays. */
export async function readTree(tree: unknown): Promise<Float64Array[]> {
  return Promise.all(fromTree(tree as ListTree<DeviceArray>).map((a) => a.read()));
}

/**
 * Float32 values (what an f32 device holds), so a float64 reference can start from the same
 * numbers.
 */
export const f32 = (xs: Tensors): Float64Array[] => xs.map((x) => x.map(Math.fround));

/** Random values for a list of shapes in [lo, hi). */
export const randomTensors = (
  rng: () => number,
  shapes: readonly (readonly number[])[],
  lo = -1,
  hi = 1,
): Float64Array[] => shapes.map((s) => uniform(rng, sizeOf(s), lo, hi));

/**
 * The structure, shapes and dtypes of a tree of arrays as a string, e.g.
 * {"m":{"first":"f32[2,3]","rest":["f32[]"]}} — for checking that state keeps its structure.
 */
export function structureOf(tree: unknown): string {
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk);
    if (node !== null && typeof node === 'object' && 'shape' in node && 'dtype' in node) {
      const a = node as { shape: readonly number[]; dtype: string };
      return `${a.dtype}[${a.shape.join(',')}]`;
    }
    if (node !== null && typeof node === 'object') {
      return Object.fromEntries(
        Object.keys(node)
          .sort()
          .map((k) => [k, walk((node as Record<string, unknown>)[k])]),
      );
    }
    return `? ${typeof node}`;
  };
  return JSON.stringify(walk(tree));
}

/** The array leaves of a tree (arrays by index, objects by sorted key, as grng flattens trees). */
export function leavesOf(tree: unknown): DeviceArray[] {
  if (Array.isArray(tree)) return tree.flatMap(leavesOf);
  if (tree !== null && typeof tree === 'object' && !('read' in tree)) {
    return Object.keys(tree)
      .sort()
      .flatMap((k) => leavesOf((tree as Record<string, unknown>)[k]));
  }
  return [tree as DeviceArray];
}

/** Largest |got − want| / bound(i) over paired tensors (≤ 1 means within the bound everywhere). */
export function worstRatio(
  got: Tensors,
  want: Tensors,
  bound: (k: number, i: number) => number,
): number {
  let worst = 0;
  got.forEach((g, k) => {
    if (g.length !== want[k].length)
      throw new Error(`tensor ${k}: ${g.length} values, expected ${want[k].length}`);
    g.forEach((x, i) => {
      const err = Math.abs(x - want[k][i]);
      worst = Math.max(worst, Number.isNaN(err) ? Infinity : err / bound(k, i));
    });
  });
  return worst;
}

/** Largest |got − want| / max(1, |want|) over paired tensors. */
export const worstScaled = (got: Tensors, want: Tensors): number =>
  worstRatio(got, want, (k, i) => Math.max(1, Math.abs(want[k][i])));

/**
 * Asserts that `run` throws or rejects with a GrngError (whose message matches `pattern`, if
 * given).
 */
export async function expectGrngError(run: () => unknown, pattern?: RegExp): Promise<void> {
  const error = await (async () => run())().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, 'expected a GrngError').toBeInstanceOf(GrngError);
  if (pattern !== undefined) expect((error as Error).message).toMatch(pattern);
}

/**
 * RING settings under which one step exposes U exactly: μ = 0, λ_wd = 0, statDecay 0, factors
 * and inverses refreshed every step from the empirical Fisher, λ_max converged (300 power steps)
 * and Newton–Schulz at its floor (16 + 16 steps ≥ k_NS(1e-12) = 12 at √ρ = 0.01).
 */
export const EXACT_RING = {
  lr: 0.5,
  momentum: 0,
  weightDecay: 0,
  statDecay: 0,
  covEvery: 1,
  inverseEvery: 1,
  fisher: 'empirical',
  factorInit: 'first',
  newtonIters: 16,
  powerSteps: 300,
  warmStart: false,
} as const;
