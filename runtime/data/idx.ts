import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { GrngError } from '../../core/errors.js';

/** An IDX array (the MNIST file format): its shape and its bytes (uint8 data only). */
export interface IdxArray {
  readonly shape: readonly number[];
  readonly data: Uint8Array;
}

/**
 * Reads an IDX file, gzip-compressed or raw: magic 0x0000 08 D (unsigned bytes, D dimensions),
 * D big-endian uint32 sizes, then the data. Anything else is a GrngError saying what is wrong.
 */
export function readIdx(path: string): IdxArray {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new GrngError('data', `cannot read ${path}: ${(error as Error).message}`);
  }
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (error) {
      throw new GrngError(
        'data',
        `${path} is not a valid gzip file (${(error as Error).message}); the ` +
          `file is corrupt or truncated`,
      );
    }
  }
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0)
    throw new GrngError('data', `${path} is not an IDX file (bad magic number)`);
  if (bytes[2] !== 0x08)
    throw new GrngError(
      'data',
      `${path} holds IDX type 0x${bytes[2].toString(16)}; only unsigned bytes (0x08) are supported`,
    );
  const rank = bytes[3];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4 + 4 * rank) throw new GrngError('data', `${path} is truncated (header)`);
  const shape = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i, false));
  const size = shape.reduce((a, d) => a * d, 1);
  const start = 4 + 4 * rank;
  if (bytes.length !== start + size)
    throw new GrngError(
      'data',
      `${path} should hold ${size} values for shape [${shape.join(', ')}] ` +
        `but holds ${bytes.length - start}; the file is corrupt or truncated`,
    );
  return { shape, data: bytes.subarray(start) };
}
