// The IDX reader on files the test writes: raw and gzip, and the errors for broken files.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { loadIdxImages, readIdx } from '../../runtime/data/index.js';

/** An IDX file of unsigned bytes with `shape` (big-endian sizes after the magic number). */
function idx(shape: readonly number[], data: readonly number[]): Buffer {
  const header = Buffer.alloc(4 + 4 * shape.length);
  header.writeUInt8(0x08, 2);
  header.writeUInt8(shape.length, 3);
  shape.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(data)]);
}

describe('IDX files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'grng-idx-'));

  test('raw and gzip files read back their shape and bytes', () => {
    writeFileSync(join(dir, 'a'), idx([2, 3], [0, 1, 2, 253, 254, 255]));
    writeFileSync(join(dir, 'b.gz'), gzipSync(idx([2, 3], [0, 1, 2, 253, 254, 255])));
    for (const file of ['a', 'b.gz']) {
      const got = readIdx(join(dir, file));
      expect(got.shape).toEqual([2, 3]);
      expect(Array.from(got.data)).toEqual([0, 1, 2, 253, 254, 255]);
    }
  });

  test('a truncated, non-IDX or corrupt gzip file is a GrngError saying what is wrong', () => {
    writeFileSync(join(dir, 'short'), idx([2, 3], [1, 2, 3]));
    writeFileSync(join(dir, 'text'), Buffer.from('hello world'));
    writeFileSync(join(dir, 'bad.gz'), Buffer.concat([gzipSync(idx([1], [7])).subarray(0, 12)]));
    expect(() => readIdx(join(dir, 'short'))).toThrow(/should hold 6 values .* holds 3/);
    expect(() => readIdx(join(dir, 'text'))).toThrow(/not an IDX file/);
    expect(() => readIdx(join(dir, 'bad.gz'))).toThrow(/not a valid gzip file/);
    expect(() => readIdx(join(dir, 'missing'))).toThrow(/cannot read/);
  });

  test(
    'a four-file image dataset loads scaled to [0, 1]; a missing file ' +
      'names the package to install',
    () => {
      const images = idx([3, 2, 2], [0, 255, 51, 102, 1, 2, 3, 4, 5, 6, 7, 8]);
      const labels = idx([3], [0, 2, 1]);
      for (const split of ['train', 't10k']) {
        writeFileSync(join(dir, `${split}-images-idx3-ubyte.gz`), gzipSync(images));
        writeFileSync(join(dir, `${split}-labels-idx1-ubyte`), labels);
      }
      const data = loadIdxImages(dir);
      expect(data.classes).toBe(3);
      expect(data.train.features).toBe(4);
      expect(Array.from(data.test.y)).toEqual([0, 2, 1]);
      expect(Array.from(data.train.x.slice(0, 4))).toEqual([0, 1, 0.2, 0.4].map(Math.fround));
      expect(() => loadIdxImages(join(dir, 'nowhere'))).toThrow(
        /apt-get install dataset-fashion-mnist/,
      );
    },
  );
});
