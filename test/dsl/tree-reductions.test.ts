// Tree reductions (dsl/tree-reductions.ts) against sums written here: a hand-computed tree, random
// trees of random shapes (float64 interpreter, float64 sums), the gradient of globalNorm (x/‖x‖),
// and the errors. Tolerance: both sides are float64 and differ only in association order over at
// most ~60 terms of size ≤ 16, so ≤ 1e-13; 1e-12 (scaled) is ten times that and far below any
// missed or doubled leaf.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  constant,
  globalNorm,
  grad,
  GrngError,
  treeLeaves,
  treeSum,
  type Tensor,
  type Tree,
} from '../../index.js';
import { interpret } from '../../runtime/interpreter.js';
import { maxScaledError } from '../support/numeric.js';
import { prng, uniform } from '../support/random.js';

const TOL = 1e-12;
const value = (t: Tensor): number[] => Array.from(interpret([t.node], new Map())[0]);

describe('on a tree computed by hand', () => {
  // Leaves in treeMap's order: a (sorted key) before b, arrays by index.
  const tree = {
    b: [constant([1, 2])],
    a: { z: constant([[3], [-4]]), y: constant(0.5, []) },
  };

  test('treeLeaves walks objects by sorted key and arrays by index', () => {
    expect(treeLeaves(tree).map(value)).toEqual([[0.5], [3, -4], [1, 2]]);
  });

  test('treeSum adds every entry of every leaf: 1 + 2 + 3 − 4 + 0.5 = 2.5', () => {
    const total = treeSum(tree);
    expect(total.shape).toEqual([]);
    expect(value(total)).toEqual([2.5]);
  });

  test('globalNorm is √(1 + 4 + 9 + 16 + 0.25) = 5.5', () => {
    expect(value(globalNorm(tree))).toEqual([5.5]);
  });

  test('a tree without leaves sums to 0 and has norm 0', () => {
    expect(value(treeSum({ empty: [] }))).toEqual([0]);
    expect(value(globalNorm([]))).toEqual([0]);
  });
});

/** A random tree: nested arrays and objects of tensors of random shapes, with its flat values. */
const randomTree = (seed: number): { tree: Tree<Tensor>; values: number[] } => {
  const rng = prng(seed);
  const values: number[] = [];
  const grow = (depth: number): Tree<Tensor> => {
    const kind = depth === 0 ? 0 : Math.floor(rng() * 3);
    if (kind === 0) {
      const shape = Array.from({ length: Math.floor(rng() * 3) }, () => 1 + Math.floor(rng() * 3));
      const data = uniform(
        rng,
        shape.reduce((n, d) => n * d, 1),
        -4,
        4,
      );
      values.push(...data);
      return constant(data, shape);
    }
    const n = 1 + Math.floor(rng() * 3);
    const children = Array.from({ length: n }, () => grow(depth - 1));
    return kind === 1 ? children : Object.fromEntries(children.map((c, i) => [`k${i}`, c]));
  };
  return { tree: grow(3), values };
};

describe('on random trees', () => {
  test('treeSum and globalNorm match float64 sums over every entry', () => {
    fc.assert(
      fc.property(fc.nat(), (seed) => {
        const { tree, values } = randomTree(seed);
        const sum = values.reduce((s, v) => s + v, 0);
        const sq = values.reduce((s, v) => s + v * v, 0);
        expect(maxScaledError(value(treeSum(tree)), [sum])).toBeLessThanOrEqual(TOL);
        expect(maxScaledError(value(globalNorm(tree)), [Math.sqrt(sq)])).toBeLessThanOrEqual(TOL);
        const ascending = (xs: number[]) => [...xs].sort((a, b) => a - b);
        expect(ascending(treeLeaves(tree).flatMap(value))).toEqual(ascending(values));
      }),
      { numRuns: 40 },
    );
  });

  test('grad(globalNorm) is x / ‖x‖, leaf by leaf', () => {
    fc.assert(
      fc.property(fc.nat(), (seed) => {
        const { tree, values } = randomTree(seed);
        const norm = Math.sqrt(values.reduce((s, v) => s + v * v, 0));
        const g = treeLeaves(grad(globalNorm)(tree)).flatMap(value);
        const want = treeLeaves(tree)
          .flatMap(value)
          .map((v) => v / norm);
        expect(g).toHaveLength(values.length);
        expect(maxScaledError(g, want)).toBeLessThanOrEqual(TOL);
      }),
      { numRuns: 20 },
    );
  });
});

describe('errors', () => {
  test('a leaf that is not f32 is named by its path', () => {
    const tree = { m: [constant([1, 2]), constant([3], [1], 'i32')] };
    for (const reduce of [treeSum, globalNorm]) {
      expect(() => reduce(tree)).toThrow(GrngError);
      expect(() => reduce(tree)).toThrow(/the leaf at \.m\[1\] is i32, but \w+ adds f32 tensors/);
    }
  });

  test('a leaf that is not a tensor is a GrngError', () => {
    expect(() => treeSum({ w: 3 } as unknown as Tree<Tensor>)).toThrow(GrngError);
  });
});
