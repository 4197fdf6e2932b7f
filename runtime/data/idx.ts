import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { GrngError } from '../../core/errors.js';

/** An IDX array (the MNIST file format): its shape and its bytes (uint8 data only). */
export interface IdxArray {
  readonly shape: readonly number[];
  readonly data: Uint8Array;
}

// The IDX type codes (third byte of the magic number); only unsigned bytes are read.
const IDX_TYPES: Readonly<Record<number, string>> = {
  0x08: 'unsigned bytes',
  0x09: 'signed bytes',
  0x0b: 'int16',
  0x0c: 'int32',
  0x0d: 'float32',
  0x0e: 'float64',
};
const UNSIGNED_BYTE = 0x08;
const REDOWNLOAD =
  'the file is corrupt or truncated: reinstall or download it again ' +
  '(Fashion-MNIST: sudo apt-get install --reinstall dataset-fashion-mnist)';

const hex = (byte: number): string => `0x${byte.toString(16).padStart(2, '0')}`;

/**
 * Reads an IDX file, gzip-compressed or raw: magic 0x0000 08 D (unsigned bytes, D dimensions),
 * D big-endian uint32 sizes, then the data. Anything else is a GrngError naming the file and what
 * was expected against what it holds.
 */
export function readIdx(path: string): IdxArray {
  const { bytes, what } = readMaybeGzip(path);
  const fail = (problem: string) => new GrngError('data', `${path} ${problem}; ${REDOWNLOAD}`);
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) {
    const start = Array.from(bytes.subarray(0, 4), hex).join(' ') || 'nothing';
    throw fail(
      `is not an IDX file (bad magic number): expected 0x00 0x00 <type> <rank> at the start of ` +
        `its ${what}, found ${start}`,
    );
  }
  if (bytes[2] !== UNSIGNED_BYTE) {
    const type = IDX_TYPES[bytes[2]];
    throw new GrngError(
      'data',
      type === undefined
        ? `${path} has the type code ${hex(bytes[2])}, which no IDX file has (expected ` +
            `${hex(UNSIGNED_BYTE)}, unsigned bytes); ${REDOWNLOAD}`
        : `${path} holds IDX type ${hex(bytes[2])} (${type}); only unsigned bytes ` +
            `(${hex(UNSIGNED_BYTE)}) are supported`,
    );
  }
  const rank = bytes[3];
  const start = 4 + 4 * rank;
  if (bytes.length < start)
    throw fail(
      `is truncated (header): its magic number declares ${rank} dimensions, which take ` +
        `${start} bytes, but its ${what} has ${bytes.length}`,
    );
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i, false));
  const size = shape.reduce((a, d) => a * d, 1);
  const held = bytes.length - start;
  if (held !== size)
    throw fail(
      `should hold ${size} values for shape [${shape.join(', ')}] but holds ${held} ` +
        `(${held < size ? 'truncated' : `${held - size} bytes too many`}, ${what})`,
    );
  return { shape, data: bytes.subarray(start) };
}

/** The file's bytes, gunzipped when they start with the gzip magic number. */
function readMaybeGzip(path: string): { bytes: Uint8Array; what: string } {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new GrngError('data', `cannot read ${path}: ${(error as Error).message}`);
  }
  if (bytes[0] !== 0x1f || bytes[1] !== 0x8b) return { bytes, what: 'content' };
  try {
    return { bytes: gunzipSync(bytes), what: 'decompressed content' };
  } catch (error) {
    throw new GrngError(
      'data',
      `${path} is not a valid gzip file (${(error as Error).message}); ${REDOWNLOAD}`,
    );
  }
}
