// Validation hold-out and standardization on small synthetic splits: the held-out and kept images
// partition the training set, the split is a function of the seed, statistics come from training
// images only, and bad requests are GrngErrors.
import { describe, expect, test } from 'vitest';
import { GrngError } from '../../index.js';
import type { ImageDataset, ImageSplit } from '../../runtime/data/image-dataset.js';
import { standardize } from '../../runtime/data/normalize.js';
import { holdOutValidation } from '../../runtime/data/validation.js';

/** `count` 3-pixel images whose pixels encode their index, so rows can be traced back. */
function indexed(count: number, offset = 0): ImageSplit {
  const x = Float32Array.from(
    { length: count * 3 },
    (_, i) => (offset + Math.floor(i / 3)) / 1000 + (i % 3) / 10,
  );
  const y = Int32Array.from({ length: count }, (_, n) => (offset + n) % 4);
  return { x, y, count, features: 3 };
}
const data: ImageDataset = { train: indexed(50), test: indexed(10, 500), classes: 4 };
const ids = (split: ImageSplit) =>
  Array.from({ length: split.count }, (_, n) => Math.round(split.x[3 * n] * 1000));

describe('holdOutValidation', () => {
  test('held-out and kept images partition the training split, rows intact, labels aligned', () => {
    const split = holdOutValidation(data, 12, 3);
    const held = ids(split.validation as ImageSplit);
    const kept = ids(split.train);
    expect(held.length).toBe(12);
    expect(kept.length).toBe(38);
    expect([...held, ...kept].sort((a, b) => a - b)).toEqual(
      Array.from({ length: 50 }, (_, i) => i),
    );
    for (const s of [split.train, split.validation as ImageSplit]) {
      ids(s).forEach((id, n) => {
        expect(s.y[n]).toBe(id % 4);
        expect(s.x[3 * n + 2]).toBeCloseTo(id / 1000 + 0.2, 6);
      });
    }
    expect(split.test).toBe(data.test);
  });

  test('the same seed holds out the same images; another seed others', () => {
    expect(ids(holdOutValidation(data, 12, 3).validation as ImageSplit)).toEqual(
      ids(holdOutValidation(data, 12, 3).validation as ImageSplit),
    );
    expect(ids(holdOutValidation(data, 12, 4).validation as ImageSplit)).not.toEqual(
      ids(holdOutValidation(data, 12, 3).validation as ImageSplit),
    );
  });

  test('bad sizes and a second hold-out are GrngErrors', () => {
    for (const count of [0, 50, 2.5, -1])
      expect(() => holdOutValidation(data, count)).toThrow(GrngError);
    expect(() => holdOutValidation(holdOutValidation(data, 5), 5)).toThrow(/already/);
  });
});

describe('standardize', () => {
  test(
    'training pixels get mean 0 and deviation 1; the other splits use the ' + 'training statistics',
    () => {
      const split = holdOutValidation(data, 10, 1);
      const s = standardize(split);
      const train = Array.from(s.train.x);
      const mean = train.reduce((a, v) => a + v, 0) / train.length;
      const variance = train.reduce((a, v) => a + (v - mean) ** 2, 0) / train.length;
      // Float32 storage of values of size ≤ 3: each is rounded by ≤ 2⁻²⁴·3, far below 1e-6.
      expect(Math.abs(mean)).toBeLessThan(1e-6);
      expect(Math.abs(variance - 1)).toBeLessThan(1e-6);
      for (const [before, after] of [
        [split.test, s.test],
        [split.validation, s.validation],
      ] as const) {
        Array.from((before as ImageSplit).x).forEach((v, i) =>
          expect((after as ImageSplit).x[i]).toBeCloseTo((v - s.mean) / s.std, 5),
        );
      }
    },
  );

  test('a constant image set is shifted, not divided by zero', () => {
    const flat: ImageDataset = {
      train: { x: new Float32Array(6).fill(0.5), y: new Int32Array(2), count: 2, features: 3 },
      test: indexed(1),
      classes: 1,
    };
    expect(Array.from(standardize(flat).train.x)).toEqual([0, 0, 0, 0, 0, 0]);
  });
});
