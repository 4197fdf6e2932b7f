// grng/testing's arbitraries: what they promise (bounds, symmetry, condition numbers), checked
// with independent float64 numerics (the Jacobi eigenvalue sweep of test/curvature/reference.ts).
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { batch, paramShapes, paramTree, spdMatrix, treeOfLeaves } from '../../testing.js';
import { mat, symmetricEigen } from '../curvature/reference.js';

/**
 * Eigenvalues of a symmetric n×n matrix (row-major), by the float64 Jacobi solver of the curvature
 * references.
 */
const symmetricEigenvalues = (a: Float64Array, n: number): number[] =>
  Array.from(symmetricEigen(mat(n, n, a)).values);

describe('spdMatrix', () => {
  test('is symmetric, positive definite, and its condition number is within the bound', () => {
    let widest = 1;
    const sized = fc
      .integer({ min: 1, max: 5 })
      .chain((n) =>
        fc.tuple(fc.constant(n), fc.constantFrom(1, 10, 1e4), fc.constantFrom(1, 0.01)),
      );
    fc.assert(
      fc.property(
        sized.chain(([n, conditionMax, scale]) =>
          spdMatrix(n, { conditionMax, scale }).map((a) => ({ n, conditionMax, scale, a })),
        ),
        ({ n, conditionMax, scale, a }) => {
          for (let i = 0; i < n; i++)
            // mirrored: exactly symmetric
            for (let j = 0; j < n; j++) expect(a[i * n + j]).toBe(a[j * n + i]);
          const eig = symmetricEigenvalues(a, n);
          const [lo, hi] = [Math.min(...eig), Math.max(...eig)];
          // Eigenvalues lie in [scale, scale·κ]; Q is orthogonal to ~n·ε, so they move by
          // ~1e-15·κ·scale (1e-12 relative leaves room for the Jacobi sweep's own rounding).
          expect(lo).toBeGreaterThanOrEqual(scale * (1 - 1e-12));
          expect(hi).toBeLessThanOrEqual(scale * conditionMax * (1 + 1e-12));
          expect(hi / lo).toBeLessThanOrEqual(conditionMax * (1 + 1e-12));
          if (conditionMax === 1e4) widest = Math.max(widest, hi / lo);
        },
      ),
      { numRuns: 100 },
    );
    // The bound is used, not just respected: some matrix is far from the identity.
    expect(widest).toBeGreaterThan(100);
  });

  test('is not diagonal in general (the rotation is real)', () => {
    const [a] = fc.sample(
      spdMatrix(3, { conditionMax: 10 }).filter((m) => Math.abs(m[1]) > 1e-3),
      { numRuns: 1, seed: 1 },
    );
    expect(Math.abs(a[1])).toBeGreaterThan(1e-3);
  });
});

describe('parameter arbitraries', () => {
  test('paramShapes: 1–3 leaves, rank ≤ 2, dimensions 1–3 (or the bounds given)', () => {
    fc.assert(
      fc.property(paramShapes(), (shapes) => {
        expect(shapes.length).toBeGreaterThanOrEqual(1);
        expect(shapes.length).toBeLessThanOrEqual(3);
        for (const s of shapes) {
          expect(s.length).toBeLessThanOrEqual(2);
          for (const d of s) expect(d >= 1 && d <= 3).toBe(true);
        }
      }),
    );
    fc.assert(
      fc.property(
        paramShapes({ minLeaves: 2, maxLeaves: 2, maxRank: 3, maxDim: 5 }),
        (shapes) =>
          shapes.length === 2 && shapes.every((s) => s.length <= 3 && s.every((d) => d <= 5)),
      ),
    );
  });

  test(
    'paramTree: values fit their shapes, lie in [−scale, scale], and the ' +
      'tree flattens in leaf order',
    () => {
      fc.assert(
        fc.property(paramTree({ scale: 3 }), ({ shapes, values, tree, structure }) => {
          values.forEach((v, k) => {
            expect(v.length).toBe(shapes[k].reduce((a, b) => a * b, 1));
            v.forEach((x) => expect(Math.abs(x)).toBeLessThanOrEqual(3));
          });
          // Same arrangement of the leaf indices: flattened (as flattenTree: arrays by index,
          // objects by sorted key) they come back in order.
          const flat: number[] = [];
          const walk = (node: unknown): void => {
            if (typeof node === 'number') flat.push(node);
            else if (Array.isArray(node)) node.forEach(walk);
            else
              Object.keys(node as object)
                .sort()
                .forEach((k) => walk((node as Record<string, unknown>)[k]));
          };
          walk(
            treeOfLeaves(
              values.map((_, k) => k),
              structure,
            ),
          );
          expect(flat).toEqual(values.map((_, k) => k));
          expect(tree).toBeDefined();
        }),
      );
    },
  );

  test('treeOfLeaves keeps the order past ten leaves (zero-padded keys)', () => {
    const tree = treeOfLeaves(Array.from({ length: 12 }, (_, k) => k)) as Record<string, number>;
    expect(
      Object.keys(tree)
        .sort()
        .map((k) => tree[k]),
    ).toEqual(Array.from({ length: 12 }, (_, k) => k));
  });

  test('batch: x has size × features values, labels are integers in [0, classes)', () => {
    fc.assert(
      fc.property(batch({ features: 3, classes: 4, size: 5 }), ({ x, labels, shape }) => {
        expect(shape).toEqual([5, 3]);
        expect(x.length).toBe(15);
        expect(labels.length).toBe(5);
        labels.forEach((y) => expect(Number.isInteger(y) && y >= 0 && y < 4).toBe(true));
      }),
    );
  });
});
