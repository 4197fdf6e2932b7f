// Comparing parameter lists (compiled optimizer vs float64 reference) and printing them.
import { fmtShape, GrngError } from '../core/errors.js';

/** The largest difference between two lists of leaves, and where it is. */
export interface Difference {
  /** |got − want| / max(1, |want|): relative error for |want| ≥ 1, absolute below. */
  readonly error: number;
  readonly leaf: number;
  readonly index: number;
  readonly got: number;
  readonly want: number;
}

/**
 * |got − want| / max(1, |want|), the measure every tolerance here bounds: relative where values
 * are large, absolute near zero (where relative error means nothing). NaN against NaN and an
 * infinity against the same infinity count as equal; any other non-finite pair is Infinity.
 */
export function scaledError(got: number, want: number): number {
  // A string or undefined would otherwise count as Infinity (or, coerced, as a number).
  if (typeof got !== 'number' || typeof want !== 'number')
    throw new GrngError(
      'scaledError',
      `got and want must be numbers, got ${typeof got} and ${typeof want}`,
    );
  if (Number.isNaN(got) && Number.isNaN(want)) return 0;
  if (got === want) return 0;
  const error = Math.abs(got - want) / Math.max(1, Math.abs(want));
  return Number.isNaN(error) ? Infinity : error;
}

/**
 * The worst scaledError over paired leaves (the first of equal ones); leaves must have equal sizes.
 */
export function worstDifference(
  got: readonly Float64Array[],
  want: readonly Float64Array[],
): Difference {
  let worst: Difference = {
    error: 0,
    leaf: 0,
    index: 0,
    got: got[0]?.[0] ?? 0,
    want: want[0]?.[0] ?? 0,
  };
  got.forEach((g, leaf) => {
    g.forEach((x, index) => {
      const error = scaledError(x, want[leaf][index]);
      if (error > worst.error) worst = { error, leaf, index, got: x, want: want[leaf][index] };
    });
  });
  return worst;
}

/** Whether two lists of leaves hold the same numbers bit for bit (−0 ≠ 0; NaN payloads ignored). */
export function bitIdentical(a: readonly Float64Array[], b: readonly Float64Array[]): boolean {
  return (
    a.length === b.length &&
    a.every((x, k) => x.length === b[k].length && x.every((v, i) => Object.is(v, b[k][i])))
  );
}

/**
 * Why a reference's output cannot be compared with parameters of `shapes`, or undefined when it
 * can.
 */
export function leavesMismatch(
  leaves: unknown,
  shapes: readonly (readonly number[])[],
): string | undefined {
  if (!Array.isArray(leaves))
    return `expected an array of ${shapes.length} Float64Array(s), got ${typeof leaves}`;
  if (leaves.length !== shapes.length)
    return `expected ${shapes.length} leaves, got ${leaves.length}`;
  for (let k = 0; k < shapes.length; k++) {
    const leaf: unknown = leaves[k];
    const size = shapes[k].reduce((a, b) => a * b, 1);
    if (!(leaf instanceof Float64Array) || leaf.length !== size) {
      const what = leaf instanceof Float64Array ? `a Float64Array of ${leaf.length}` : String(leaf);
      return (
        `leaf ${k} (shape ${fmtShape(shapes[k])}) must be a Float64Array of ` +
        `${size} value(s), got ${what}`
      );
    }
  }
  return undefined;
}

/** Leaves as nested number lists, e.g. [[0.5], [1, -2]]. */
export const formatLeaves = (leaves: readonly Float64Array[]): string =>
  `[${leaves.map((x) => `[${Array.from(x).join(', ')}]`).join(', ')}]`;

/** Shapes as the user writes them, e.g. [[], [2, 3]]. */
export const formatShapes = (shapes: readonly (readonly number[])[]): string =>
  `[${shapes.map(fmtShape).join(', ')}]`;
