// Fashion-MNIST from the four gzipped IDX files of the Debian package `dataset-fashion-mnist`,
// with seeded shuffles and batches for train.ts.
// In your project use `loadIdxImages` from 'grng/data'; this repository's examples must not
// import the runtime's source and cannot import the built 'grng/data' before `npm run build`.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { array } from '../../index.js';

export const FASHION_MNIST = '/usr/share/datasets/fashion-mnist';

export interface Split {
  /** Rows of 784 pixels in [0, 1]. */
  readonly x: Float32Array;
  readonly y: Int32Array;
  readonly count: number;
}

/** An IDX file of unsigned bytes: a big-endian header (magic 0x08 type, rank), then the data. */
function readIdxBytes(path: string): { dims: number[]; data: Uint8Array } {
  const bytes = gunzipSync(readFileSync(path));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint16(0) !== 0 || view.getUint8(2) !== 0x08)
    throw new Error(`${path} is not an IDX file of unsigned bytes`);
  const rank = view.getUint8(3);
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i));
  return { dims, data: bytes.subarray(4 + 4 * rank) };
}

function split(dir: string, prefix: 'train' | 't10k'): Split {
  const images = readIdxBytes(join(dir, `${prefix}-images-idx3-ubyte.gz`));
  const labels = readIdxBytes(join(dir, `${prefix}-labels-idx1-ubyte.gz`));
  return {
    x: Float32Array.from(images.data, (v) => v / 255),
    y: Int32Array.from(labels.data),
    count: labels.dims[0],
  };
}

export function loadFashionMnist(dir = FASHION_MNIST): { train: Split; test: Split } {
  return { train: split(dir, 'train'), test: split(dir, 't10k') };
}

/** A seeded permutation of 0..n−1 (mulberry32 driving Fisher–Yates). */
export function permutation(n: number, seed: number): Int32Array {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t ^= t + Math.imul(t ^ (t >>> 7), 61 | t);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const order = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/** The rows `indices` of a split as a batch. */
export function batchOf(split: Split, indices: ArrayLike<number>) {
  const x = new Float32Array(indices.length * 784);
  const y = new Int32Array(indices.length);
  for (let r = 0; r < indices.length; r++) {
    x.set(split.x.subarray(indices[r] * 784, (indices[r] + 1) * 784), r * 784);
    y[r] = split.y[indices[r]];
  }
  return { x: array(x, [indices.length, 784]), y: array(y, [indices.length], 'i32') };
}
