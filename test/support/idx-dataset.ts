// A tiny image dataset in the four-file IDX layout, for the CLI suites: 4×4 images of three
// classes (a bright row 0, 1 or 2 over noise), 48 train and 12 test.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { prng } from './random.js';

/** An IDX file of unsigned bytes with `shape`. */
export function idx(shape: readonly number[], data: ArrayLike<number>): Buffer {
  const header = Buffer.alloc(4 + 4 * shape.length);
  header.writeUInt8(0x08, 2);
  header.writeUInt8(shape.length, 3);
  shape.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(Uint8Array.from(data))]);
}

export function writeDataset(dir: string): void {
  const rng = prng(5);
  for (const [split, count] of [
    ['train', 48],
    ['t10k', 12],
  ] as const) {
    const labels = Array.from({ length: count }, (_, n) => n % 3);
    const pixels = labels.flatMap((c) =>
      Array.from(
        { length: 16 },
        (_, p) => Math.floor(60 * rng()) + (Math.floor(p / 4) === c ? 190 : 0),
      ),
    );
    writeFileSync(join(dir, `${split}-images-idx3-ubyte`), idx([count, 4, 4], pixels));
    writeFileSync(join(dir, `${split}-labels-idx1-ubyte`), idx([count], labels));
  }
}
