// Static shapes: where a shape is a literal, result shapes are computed in the type and
// mismatches are compile errors. This file is checked by `tsc --noEmit` (part of `npm test`):
// every `@ts-expect-error` below must meet a real type error, or tsc fails with "Unused
// '@ts-expect-error' directive"; every typed assignment must type-check. Each type-level case
// is paired with its runtime behaviour, because the runtime checks always exist (they are what
// guards `Tensor<Shape>` values, whose shapes the type system does not know).
import { describe, expect, test } from 'vitest';
import {
  add,
  GrngError,
  input,
  matmul,
  mul,
  reshape,
  scalar,
  sub,
  type Shape,
  type Tensor,
} from '../../index.js';

/** Compile-time only: `true` when T is exactly U. */
type Equal<T, U> =
  (<V>() => V extends T ? 1 : 2) extends <V>() => V extends U ? 1 : 2 ? true : false;
const typeIs = <T extends true>(_proof: T): void => undefined;

const a23 = input('a', [2, 3]);
const b35 = input('b', [3, 5]);
const c45 = input('c', [4, 5]);
const v3 = input('v', [3]);
const v4 = input('w', [4]);
const col21 = input('col', [2, 1]);
const row13 = input('row', [1, 3]);
const v2 = input('u', [2]);

describe('inferred result types', () => {
  test('input(name, [2, 3]) is a Tensor<[2, 3]>', () => {
    typeIs<Equal<typeof a23, Tensor<[2, 3]>>>(true);
    // @ts-expect-error the literal shape is in the type: [2, 3] is not [3, 2]
    const wrong: Tensor<[3, 2]> = a23;
    expect(wrong.shape).toEqual([2, 3]);
    expect(a23.shape).toEqual([2, 3]);
  });

  test('matmul of [2, 3] and [3, 5] is [2, 5], as a function and as a method', () => {
    const z: Tensor<[2, 5]> = matmul(a23, b35);
    const m: Tensor<[2, 5]> = a23.matmul(b35);
    // @ts-expect-error the result is [2, 5], not [2, 3]
    const wrong: Tensor<[2, 3]> = matmul(a23, b35);
    expect(z.shape).toEqual([2, 5]);
    expect(m.shape).toEqual([2, 5]);
    expect(wrong.shape).toEqual([2, 5]);
  });

  test('broadcasting [2, 3] + [3] is [2, 3]', () => {
    const s: Tensor<[2, 3]> = add(a23, v3);
    const t: Tensor<[2, 3]> = a23.add(v3);
    // @ts-expect-error the result is [2, 3], not [3]
    const wrong: Tensor<[3]> = add(a23, v3);
    expect(s.shape).toEqual([2, 3]);
    expect(t.shape).toEqual([2, 3]);
    expect(wrong.shape).toEqual([2, 3]);
  });

  test('broadcasting [2, 1] + [1, 3] is [2, 3]', () => {
    const s: Tensor<[2, 3]> = add(col21, row13);
    const t: Tensor<[2, 3]> = col21.mul(row13);
    // @ts-expect-error the result is [2, 3], not [2, 1]
    const wrong: Tensor<[2, 1]> = sub(col21, row13);
    expect(s.shape).toEqual([2, 3]);
    expect(t.shape).toEqual([2, 3]);
    expect(wrong.shape).toEqual([2, 3]);
  });

  test('a number or a scalar tensor with a Tensor<[2]> gives a Tensor<[2]>', () => {
    const s: Tensor<[2]> = add(2, v2);
    const t: Tensor<[2]> = add(scalar(2), v2);
    const u: Tensor<[2]> = v2.mul(3);
    const w: Tensor<[2]> = mul(v2, scalar(3));
    // @ts-expect-error a scalar plus [2] is [2], not []
    const wrong: Tensor<[]> = add(scalar(2), v2);
    for (const x of [s, t, u, w, wrong]) expect(x.shape).toEqual([2]);
  });

  test('reshape with a literal target has that shape', () => {
    const r: Tensor<[3, 2]> = reshape(a23, [3, 2]);
    const m: Tensor<[6]> = a23.reshape([6]);
    // @ts-expect-error reshape to [3, 2] is not [6]
    const wrong: Tensor<[6]> = reshape(a23, [3, 2]);
    expect(r.shape).toEqual([3, 2]);
    expect(m.shape).toEqual([6]);
    expect(wrong.shape).toEqual([3, 2]);
  });

  test('Tensor<[2, 3]> is assignable to Tensor (no variance problem)', () => {
    const t: Tensor = a23;
    const list: Tensor[] = [a23, b35, v3, matmul(a23, b35)];
    const f = (x: Tensor): Tensor => x.exp();
    expect(f(a23).shape).toEqual([2, 3]);
    expect(t.shape).toEqual([2, 3]);
    expect(list.map((x) => x.rank)).toEqual([2, 2, 1, 2]);
  });
});

describe('literal-shape mismatches are type errors and GrngErrors', () => {
  test('matmul of [2, 3] and [4, 5] as a function', () => {
    expect(() =>
      // @ts-expect-error inner dimensions 3 and 4 differ
      matmul(a23, c45),
    ).toThrowError(GrngError);
    expect(() =>
      // @ts-expect-error inner dimensions 3 and 4 differ
      matmul(a23, c45),
    ).toThrowError(
      /matmul: inner dimensions differ: \[2, 3\] has 3 columns but \[4, 5\] has 4 rows/,
    );
  });

  test('matmul of [2, 3] and [4, 5] as a method', () => {
    expect(() =>
      // @ts-expect-error inner dimensions 3 and 4 differ
      a23.matmul(c45),
    ).toThrowError(GrngError);
  });

  test('add of [2, 3] and [4]', () => {
    expect(() =>
      // @ts-expect-error [2, 3] and [4] cannot be broadcast together
      add(a23, v4),
    ).toThrowError(GrngError);
    expect(() =>
      // @ts-expect-error [2, 3] and [4] cannot be broadcast together
      a23.add(v4),
    ).toThrowError(/add: shapes \[2, 3\] and \[4\] cannot be broadcast together/);
  });

  test('add of [2, 3] and [3, 3] (both axes known, one disagrees)', () => {
    const sq = input('sq', [3, 3]);
    expect(() =>
      // @ts-expect-error axis 0 has 2 vs 3
      mul(a23, sq),
    ).toThrowError(GrngError);
  });
});

describe('Tensor<Shape> values accept everything at compile time; the runtime judges', () => {
  // Shapes only known at run time (e.g. read from a file): the type is plain Shape.
  const shapeOf = (...dims: number[]): Shape => dims;
  const x: Tensor = input('x', shapeOf(2, 3));
  const y: Tensor = input('y', shapeOf(4, 5));
  const z: Tensor = input('z', shapeOf(4));

  test('matmul and add of untyped shapes compile, and their results are plain Tensors', () => {
    typeIs<Equal<typeof x.shape, Shape>>(true);
    // No @ts-expect-error: these compile; the mismatches are caught when the graph is built.
    expect(() => matmul(x, y)).toThrowError(GrngError);
    expect(() => x.matmul(y)).toThrowError(/matmul: inner dimensions differ/);
    expect(() => add(x, z)).toThrowError(GrngError);
    expect(() => x.add(z)).toThrowError(/\[2, 3\] and \[4\]/);
    const ok: Tensor = matmul(x, input('w', shapeOf(3, 7)));
    expect(ok.shape).toEqual([2, 7]);
  });

  test('a literal-shaped tensor mixes with an untyped one at compile time', () => {
    expect(() => matmul(a23, y)).toThrowError(GrngError);
    expect(() => add(z, a23)).toThrowError(GrngError);
    const ok = add(a23, input('q', shapeOf(3)));
    expect(ok.shape).toEqual([2, 3]);
  });
});
