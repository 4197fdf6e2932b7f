// The IDX reader on files the test writes: raw and gzip, and the errors for broken files:
// truncated anywhere, a changed header byte, a changed gzip byte, each saying what was expected.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { GrngError } from '../../index.js';
import { loadIdxImages, readIdx } from '../../runtime/data/index.js';
import { prng } from '../support/random.js';

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

  /** The GrngError readIdx(path) refuses the file with (fails the test when it reads). */
  const refusal = (path: string): GrngError => {
    try {
      readIdx(path);
    } catch (error) {
      expect(error).toBeInstanceOf(GrngError);
      expect((error as GrngError).message).toContain(path);
      return error as GrngError;
    }
    return expect.unreachable(`${path} was read`);
  };

  // 5 images of 3×3 random bytes. Its odd length (61 bytes) matters for a changed rank byte: IDX
  // has no checksum, so a rank whose header would end exactly at the end of the file, reading
  // sizes of zero from the data, would describe an empty array that the file does hold.
  const rng = prng(7);
  const pixels = Array.from({ length: 45 }, () => Math.floor(256 * rng()));
  const images = idx([5, 3, 3], pixels);

  test('a raw or gzip file truncated at any length is a GrngError naming the file', () => {
    const damaged = join(dir, 'truncated');
    for (const bytes of [images, gzipSync(images)])
      fc.assert(
        fc.property(fc.nat({ max: bytes.length - 1 }), (length) => {
          writeFileSync(damaged, bytes.subarray(0, length));
          expect(refusal(damaged).message).toMatch(/truncated|not an IDX file|not a valid gzip/);
        }),
      );
  });

  test('a header byte of a raw file changed in any way is a GrngError naming the file', () => {
    // The data bytes cannot be checked: the format has no checksum.
    const damaged = join(dir, 'header-changed');
    const loadChanged = (position: number, mask: number) => {
      const copy = Buffer.from(images);
      copy[position] ^= mask;
      writeFileSync(damaged, copy);
      refusal(damaged);
    };
    fc.assert(fc.property(fc.nat({ max: 15 }), fc.integer({ min: 1, max: 255 }), loadChanged));
    // And every single-bit flip.
    for (let position = 0; position < 16; position++)
      for (let bit = 0; bit < 8; bit++) loadChanged(position, 1 << bit);
  });

  test('a byte changed anywhere in a gzip file is refused or reads back the same data', () => {
    // gzip's CRC-32 covers the data; a few header bytes (time, OS) do not matter.
    const gzip = gzipSync(images);
    const damaged = join(dir, 'changed.gz');
    fc.assert(
      fc.property(
        fc.nat({ max: gzip.length - 1 }),
        fc.integer({ min: 1, max: 255 }),
        (at, mask) => {
          const copy = Buffer.from(gzip);
          copy[at] ^= mask;
          writeFileSync(damaged, copy);
          let read: { shape: readonly number[]; data: Uint8Array } | undefined;
          try {
            read = readIdx(damaged);
          } catch (error) {
            expect(error).toBeInstanceOf(GrngError);
            expect((error as GrngError).message).toContain(damaged);
          }
          if (read !== undefined) {
            expect(read.shape).toEqual([5, 3, 3]);
            expect(Array.from(read.data)).toEqual(pixels);
          }
        },
      ),
    );
  });

  test('messages say what was expected and what the file holds', () => {
    const write = (name: string, bytes: Buffer) => {
      writeFileSync(join(dir, name), bytes);
      return join(dir, name);
    };
    const withByte = (at: number, value: number) => {
      const copy = Buffer.from(images);
      copy[at] = value;
      return copy;
    };
    expect(refusal(write('magic', withByte(1, 0x08))).message).toMatch(
      /bad magic number\): expected 0x00 0x00 <type> <rank> at the start of its content, found 0x00 0x08 0x08 0x03/,
    );
    expect(refusal(write('float', withByte(2, 0x0d))).message).toMatch(
      /holds IDX type 0x0d \(float32\); only unsigned bytes \(0x08\) are supported/,
    );
    expect(refusal(write('code', withByte(2, 0x42))).message).toMatch(
      /type code 0x42, which no IDX file has \(expected 0x08, unsigned bytes\)/,
    );
    expect(refusal(write('long', Buffer.concat([images, Buffer.from([1, 2])]))).message).toMatch(
      /should hold 45 values for shape \[5, 3, 3\] but holds 47 \(2 bytes too many, content\)/,
    );
    expect(refusal(write('head', images.subarray(0, 10))).message).toMatch(
      /truncated \(header\): its magic number declares 3 dimensions, which take 16 bytes, but its content has 10/,
    );
    expect(refusal(write('short.gz', gzipSync(images.subarray(0, 50)))).message).toMatch(
      /should hold 45 values .* but holds 34 \(truncated, decompressed content\); the file is corrupt or truncated: reinstall/,
    );
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
