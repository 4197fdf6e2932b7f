// fast-check arbitraries for testing optimizers and models: parameter shapes and trees, gradient
// values, symmetric positive definite matrices with a bounded condition number, and small
// classification batches. Each is built from integers and maps, so fast-check shrinks them to
// small shapes and simple values (0, identity matrices, scalars) when a property fails.
import fc from 'fast-check';
import { GrngError } from '../core/errors.js';
import type { Tree } from '../core/tree.js';
import type { HostArray } from '../core/host-array.js';
import { hostTree, sizeOf, TREE_STRUCTURES, type TreeStructure } from './trees.js';

export interface ShapeOptions {
  /** Leaves per tree, at least 1 (default 1–3). */
  readonly minLeaves?: number;
  readonly maxLeaves?: number;
  /** Largest rank (default 2; rank 0 is a scalar). */
  readonly maxRank?: number;
  /** Largest dimension (default 3; dimensions are at least 1). */
  readonly maxDim?: number;
}

export interface ValueOptions {
  /** Values lie in [−scale, scale] (default 1). */
  readonly scale?: number;
  /**
   * Values are multiples of scale·2^−bits (default 16). Dyadic values are exact in float32 too,
   * so a float32 device and a float64 reference start from the same numbers.
   */
  readonly bits?: number;
}

/** Parameter values and their shapes: leaf k has shape shapes[k] and values[k] (row-major). */
export interface ParamLeaves {
  readonly shapes: number[][];
  readonly values: Float64Array[];
}

/** Parameter leaves arranged as a grng tree (host arrays, dtype f32). */
export interface ParamTreeCase extends ParamLeaves {
  readonly structure: TreeStructure;
  readonly tree: Tree<HostArray>;
}

// Option checks: a bad option would otherwise surface as a fast-check Error ("fc.integer maximum
// value should be…"), as NaN values, or as a filter that never passes.

/** `n` when it is an integer in [min, max]; otherwise a GrngError naming `op` and the option. */
function integerOption(op: string, name: string, n: unknown, min: number, max = 2 ** 30): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max)
    throw new GrngError(
      op,
      `${name} must be an integer in [${min}, ${max === 2 ** 30 ? '2^30' : max}], got ${String(n)}`,
    );
  return n;
}

function checkValueOptions(op: string, options: ValueOptions): { scale: number; bits: number } {
  const { scale = 1, bits = 16 } = options;
  if (typeof scale !== 'number' || !(scale > 0) || !Number.isFinite(scale))
    throw new GrngError(op, `scale must be a finite number > 0, got ${String(scale)}`);
  // 2^bits steps must be a 32-bit integer for fc.integer.
  integerOption(op, 'bits', bits, 0, 30);
  return { scale, bits };
}

function checkShapeOptions(op: string, options: ShapeOptions): void {
  const { minLeaves = 1, maxLeaves = 3, maxRank = 2, maxDim = 3 } = options;
  integerOption(op, 'minLeaves', minLeaves, 1);
  integerOption(op, 'maxLeaves', maxLeaves, 1);
  if (minLeaves > maxLeaves)
    throw new GrngError(op, `minLeaves (${minLeaves}) must not exceed maxLeaves (${maxLeaves})`);
  integerOption(op, 'maxRank', maxRank, 0, 8);
  integerOption(op, 'maxDim', maxDim, 1);
}

/** One value in [−scale, scale], a multiple of scale·2^−bits; shrinks towards 0. */
export function value(options: ValueOptions = {}): fc.Arbitrary<number> {
  const { scale, bits } = checkValueOptions('value', options);
  const steps = 2 ** bits;
  return fc.integer({ min: -steps, max: steps }).map((k) => (k / steps) * scale);
}

/** One shape: rank 0…maxRank, dimensions 1…maxDim; shrinks towards [] (a scalar). */
export function shape(options: ShapeOptions = {}): fc.Arbitrary<number[]> {
  checkShapeOptions('shape', options);
  const { maxRank = 2, maxDim = 3 } = options;
  return fc.array(fc.integer({ min: 1, max: maxDim }), { minLength: 0, maxLength: maxRank });
}

/**
 * An array of `minLength`…`maxLength` items that shrinks by removing ANY item. (fast-check's
 * array with minLength 1 cannot drop its last item when shrinking; drawn from minLength 0 and
 * filtered, it can.)
 */
export function leafArray<T>(
  item: fc.Arbitrary<T>,
  minLength: number,
  maxLength: number,
): fc.Arbitrary<T[]> {
  return fc.array(item, { minLength: 0, maxLength }).filter((xs) => xs.length >= minLength);
}

/** Shapes of a parameter tree's leaves; shrinks towards a single scalar. */
export function paramShapes(options: ShapeOptions = {}): fc.Arbitrary<number[][]> {
  checkShapeOptions('paramShapes', options);
  const { minLeaves = 1, maxLeaves = 3 } = options;
  return leafArray(shape(options), minLeaves, maxLeaves);
}

/** The largest number of elements a shape drawn with these options can have. */
export const maxSize = (options: ShapeOptions = {}): number =>
  (options.maxDim ?? 3) ** (options.maxRank ?? 2);

/** `n` values (a pool to cut leaves from). */
export const valueArray = (n: number, options: ValueOptions = {}): fc.Arbitrary<number[]> =>
  fc.array(value(options), { minLength: n, maxLength: n });

/** The first sizeOf(shape) values of a pool, as a leaf. */
export const cutToShape = (pool: readonly number[], shape: readonly number[]): Float64Array =>
  Float64Array.from(pool.slice(0, sizeOf(shape)));

/** Values for leaves of the given shapes (one Float64Array per leaf). */
export function leafValues(
  shapes: readonly (readonly number[])[],
  options: ValueOptions = {},
): fc.Arbitrary<Float64Array[]> {
  if (
    !Array.isArray(shapes) ||
    !shapes.every((s) => Array.isArray(s) && s.every((d) => Number.isInteger(d) && d >= 0))
  )
    throw new GrngError(
      'leafValues',
      `shapes must be arrays of non-negative integers, got ${JSON.stringify(shapes)}`,
    );
  checkValueOptions('leafValues', options);
  return fc
    .tuple(...shapes.map((s) => valueArray(sizeOf(s), options)))
    .map((leaves) => leaves.map((xs) => Float64Array.from(xs)));
}

/**
 * Shapes and values together, drawn leaf by leaf: each leaf's values are drawn for the largest
 * shape and cut to its own, so when fast-check shrinks a failing case it removes whole leaves
 * (with their values) and shortens shapes while the remaining values stay: counterexamples end
 * with few leaves, few elements and values shrunk towards 0.
 */
export function paramLeaves(options: ShapeOptions & ValueOptions = {}): fc.Arbitrary<ParamLeaves> {
  checkShapeOptions('paramLeaves', options);
  checkValueOptions('paramLeaves', options);
  const { minLeaves = 1, maxLeaves = 3 } = options;
  const leaf = fc.tuple(shape(options), valueArray(maxSize(options), options));
  return leafArray(leaf, minLeaves, maxLeaves).map((leaves) => ({
    shapes: leaves.map(([s]) => s),
    values: leaves.map(([s, pool]) => cutToShape(pool, s)),
  }));
}

/**
 * A random parameter tree: leaves as in paramLeaves, arranged as an object, a list or a nested
 * tree.
 */
export function paramTree(options: ShapeOptions & ValueOptions = {}): fc.Arbitrary<ParamTreeCase> {
  checkShapeOptions('paramTree', options);
  checkValueOptions('paramTree', options);
  return fc
    .tuple(paramLeaves(options), fc.constantFrom(...TREE_STRUCTURES))
    .map(([{ shapes, values }, structure]) => ({
      shapes,
      values,
      structure,
      tree: hostTree(values, shapes, structure),
    }));
}

export interface SpdOptions {
  /** Largest condition number λ_max/λ_min (≥ 1). */
  readonly conditionMax: number;
  /** The smallest eigenvalue bound (default 1): eigenvalues lie in [scale, scale·conditionMax]. */
  readonly scale?: number;
}

/**
 * A symmetric positive definite n×n matrix Q·diag(λ)·Qᵀ (Float64Array, row-major) with
 * λᵢ = scale·conditionMax^uᵢ, uᵢ ∈ [0, 1], so its condition number is at most conditionMax;
 * Q is a product of n Householder reflections of random vectors. Shrinks towards scale·I.
 */
export function spdMatrix(n: number, options: SpdOptions): fc.Arbitrary<Float64Array> {
  const { conditionMax, scale = 1 } = options;
  if (!Number.isInteger(n) || n < 1)
    throw new GrngError('spdMatrix', `n must be a positive integer, got ${n}`);
  if (!(conditionMax >= 1) || !Number.isFinite(conditionMax))
    throw new GrngError(
      'spdMatrix',
      `conditionMax must be a finite number ≥ 1, got ${conditionMax}`,
    );
  // A scale ≤ 0 would give negative (semi)definite matrices, silently.
  if (!(scale > 0) || !Number.isFinite(scale))
    throw new GrngError('spdMatrix', `scale must be a finite number > 0, got ${scale}`);
  const unit = fc.integer({ min: 0, max: 2 ** 20 }).map((k) => k / 2 ** 20);
  const reflections = fc.array(fc.array(value(), { minLength: n, maxLength: n }), {
    minLength: n,
    maxLength: n,
  });
  const exponents = fc.array(unit, { minLength: n, maxLength: n });
  return fc.tuple(reflections, exponents).map(([vs, us]) => {
    const q = orthogonal(n, vs);
    const lambda = us.map((u) => scale * conditionMax ** u);
    // A = Q diag(λ) Qᵀ; the lower triangle mirrors the upper one, so A is symmetric exactly.
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = i; j < n; j++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += q[i * n + k] * lambda[k] * q[j * n + k];
        a[i * n + j] = s;
        a[j * n + i] = s;
      }
    }
    return a;
  });
}

/** H₁·H₂·…·I with Hₖ = I − 2vvᵀ/|v|² (a zero vector is skipped, so all-zero input gives I). */
function orthogonal(n: number, vectors: readonly (readonly number[])[]): Float64Array {
  const q = new Float64Array(n * n);
  for (let i = 0; i < n; i++) q[i * n + i] = 1;
  for (const v of vectors) {
    const norm2 = v.reduce((s, x) => s + x * x, 0);
    if (norm2 === 0) continue;
    // Q ← Q·H: each row r of Q becomes r − 2(r·v)/|v|² · vᵀ.
    for (let i = 0; i < n; i++) {
      let dot = 0;
      for (let k = 0; k < n; k++) dot += q[i * n + k] * v[k];
      const c = (2 * dot) / norm2;
      for (let k = 0; k < n; k++) q[i * n + k] -= c * v[k];
    }
  }
  return q;
}

export interface BatchOptions {
  readonly features: number;
  readonly classes: number;
  /** Examples in the batch. */
  readonly size: number;
  /** Feature values lie in [−scale, scale] (default 1). */
  readonly scale?: number;
}

/** A classification batch: x [size, features] row-major and integer labels in [0, classes). */
export interface Batch {
  readonly x: Float64Array;
  readonly labels: Int32Array;
  readonly shape: readonly [number, number];
  readonly classes: number;
}

/** A random classification batch; shrinks towards all-zero features and label 0. */
export function batch(options: BatchOptions): fc.Arbitrary<Batch> {
  const { features, classes, size, scale = 1 } = options;
  for (const [name, n] of [
    ['features', features],
    ['classes', classes],
    ['size', size],
  ] as const) {
    if (!Number.isInteger(n) || n < 1)
      throw new GrngError('batch', `${name} must be a positive integer, got ${n}`);
  }
  if (!(scale > 0) || !Number.isFinite(scale))
    throw new GrngError('batch', `scale must be a finite number > 0, got ${scale}`);
  const xs = fc.array(value({ scale }), { minLength: size * features, maxLength: size * features });
  const ys = fc.array(fc.integer({ min: 0, max: classes - 1 }), {
    minLength: size,
    maxLength: size,
  });
  return fc.tuple(xs, ys).map(([x, y]) => ({
    x: Float64Array.from(x),
    labels: Int32Array.from(y),
    shape: [size, features] as const,
    classes,
  }));
}
