// Checkpoints: trees of arrays (parameters, optimizer state) in one safetensors file, plus a JSON
// sidecar for people (step, hyperparameters, data position). The safetensors header's
// __metadata__ carries the same JSON and the trees' structure, so the one file is the checkpoint;
// it is written to a temporary name and renamed, so a write killed halfway leaves the previous
// checkpoint intact. Values are stored as F32 when every value is a float32 (WebGPU arrays),
// else F64 (the float64 interpreter), so a resumed run continues bit for bit. The format is small
// (8-byte header length, JSON header, raw little-endian data): the npm `safetensors` package is a
// 0.0.1 placeholder, so it is written here.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { GrngError } from '../core/errors.js';
import type { DType } from '../core/ir/dtype.js';
import { flattenTree, type Tree } from '../core/tree.js';
import type { DeviceArray } from './device.js';
import { HostArray } from '../core/host-array.js';
import { isArrayLeaf, type ArrayLeaf } from './jit.js';

/** What a checkpoint holds: named trees of arrays and JSON-serializable facts about the run. */
export interface Checkpoint {
  readonly trees: Readonly<Record<string, Tree<HostArray>>>;
  readonly meta: Readonly<Record<string, unknown>>;
}

type StoredType = 'F32' | 'F64' | 'I32' | 'U8';

async function valuesOf(
  leaf: ArrayLeaf,
): Promise<{ data: Float64Array; shape: readonly number[]; dtype: DType }> {
  if (typeof leaf === 'number') return { data: Float64Array.of(leaf), shape: [], dtype: 'f32' };
  if (leaf instanceof HostArray) return leaf;
  const array = leaf as DeviceArray;
  return { data: await array.read(), shape: array.shape, dtype: array.dtype };
}

function storedType(dtype: DType, data: Float64Array): StoredType {
  if (dtype === 'bool') return 'U8';
  if (dtype === 'i32') return 'I32';
  return data.every((v) => Object.is(Math.fround(v), v) || Number.isNaN(v)) ? 'F32' : 'F64';
}

function encode(type: StoredType, data: Float64Array): Uint8Array {
  const typed =
    type === 'F32'
      ? Float32Array.from(data)
      : type === 'F64'
        ? data
        : type === 'I32'
          ? Int32Array.from(data)
          : Uint8Array.from(data);
  return new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
}

/**
 * Writes `trees` and `meta` to `path` (a .safetensors file) and `path + '.json'`, each through a
 * temporary file renamed into place. Device arrays are read back first.
 */
export async function saveCheckpoint(
  path: string,
  trees: Readonly<Record<string, Tree<ArrayLeaf>>>,
  meta: Readonly<Record<string, unknown>> = {},
): Promise<void> {
  const entries: {
    name: string;
    type: StoredType;
    shape: readonly number[];
    dtype: DType;
    bytes: Uint8Array;
  }[] = [];
  const structure: Record<string, unknown> = {};
  for (const [treeName, tree] of Object.entries(trees)) {
    const { leaves, rebuild } = flattenTree('saveCheckpoint', tree, isArrayLeaf, 'an array');
    const names = leaves.map((_, i) => `${treeName}/${i}`);
    structure[treeName] = rebuild(names);
    for (const [i, leaf] of leaves.entries()) {
      const { data, shape, dtype } = await valuesOf(leaf);
      const type = storedType(dtype, data);
      entries.push({ name: names[i], type, shape, dtype, bytes: encode(type, data) });
    }
  }
  const header: Record<string, unknown> = {
    __metadata__: {
      grng: JSON.stringify({
        meta,
        structure,
        dtypes: Object.fromEntries(entries.map((e) => [e.name, e.dtype])),
      }),
    },
  };
  let offset = 0;
  for (const e of entries) {
    header[e.name] = {
      dtype: e.type,
      shape: e.shape,
      data_offsets: [offset, offset + e.bytes.byteLength],
    };
    offset += e.bytes.byteLength;
  }
  // The header is padded with spaces to a multiple of 8 bytes (as the reference implementation
  // does).
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(headerBytes.byteLength));
  atomicWrite(path, [length, headerBytes, ...entries.map((e) => e.bytes)]);
  atomicWrite(`${path}.json`, [
    Buffer.from(`${JSON.stringify({ ...meta, tensors: entries.length }, null, 2)}\n`),
  ]);
}

/** Writes `chunks` to `path` through `path + '.tmp'`, flushed to disk, then renamed over `path`. */
function atomicWrite(path: string, chunks: readonly Uint8Array[]): void {
  const temporary = `${path}.tmp`;
  const fd = openSync(temporary, 'w');
  try {
    for (const chunk of chunks) writeSync(fd, chunk);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
}

/** Reads a checkpoint written by saveCheckpoint: its trees as host arrays and its metadata. */
export function loadCheckpoint(path: string): Checkpoint {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new GrngError('loadCheckpoint', `cannot read ${path}: ${(error as Error).message}`);
  }
  const corrupt = (why: string) =>
    new GrngError('loadCheckpoint', `${path} is not a grng checkpoint (${why})`);
  if (bytes.byteLength < 8) throw corrupt('shorter than its 8-byte header length');
  const headerLength = Number(bytes.readBigUInt64LE(0));
  if (8 + headerLength > bytes.byteLength)
    throw corrupt('the header runs past the end of the file');
  let header: Record<
    string,
    { dtype: StoredType; shape: number[]; data_offsets: [number, number] } | Record<string, string>
  >;
  try {
    header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
  } catch {
    throw corrupt('the header is not JSON');
  }
  const info = (header.__metadata__ as Record<string, string> | undefined)?.grng;
  if (info === undefined) throw corrupt('no grng metadata in the header');
  const { meta, structure, dtypes } = JSON.parse(info) as {
    meta: Record<string, unknown>;
    structure: Record<string, unknown>;
    dtypes: Record<string, DType>;
  };
  const body = 8 + headerLength;
  const arrays = new Map<string, HostArray>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const {
      dtype,
      shape,
      data_offsets: [start, end],
    } = entry as { dtype: StoredType; shape: number[]; data_offsets: [number, number] };
    if (body + end > bytes.byteLength)
      throw corrupt(`tensor ${name} runs past the end of the file (truncated?)`);
    const raw = bytes.subarray(body + start, body + end);
    const view = new Uint8Array(raw); // copies, so typed arrays see an aligned buffer
    const data =
      dtype === 'F32'
        ? Float64Array.from(new Float32Array(view.buffer))
        : dtype === 'F64'
          ? new Float64Array(view.buffer)
          : dtype === 'I32'
            ? Float64Array.from(new Int32Array(view.buffer))
            : Float64Array.from(view);
    arrays.set(name, new HostArray(data, shape, dtypes[name]));
  }
  const trees: Record<string, Tree<HostArray>> = {};
  for (const [treeName, shapeOfTree] of Object.entries(structure)) {
    const { leaves, rebuild } = flattenTree(
      'loadCheckpoint',
      shapeOfTree,
      (x): x is string => typeof x === 'string',
      'a tensor name',
    );
    trees[treeName] = rebuild(
      leaves.map((name) => {
        const array = arrays.get(name);
        if (array === undefined) throw corrupt(`tensor ${name} is missing`);
        return array;
      }),
    ) as Tree<HostArray>;
  }
  return { trees, meta };
}
