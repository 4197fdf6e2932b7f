// Checkpoints: trees of arrays (parameters, optimizer state) in one safetensors file, plus a JSON
// sidecar for people (step, hyperparameters, data position). The safetensors header's
// __metadata__ carries the same JSON and the trees' structure, so the one file is the checkpoint.
// Values are stored as F32 when every value is a float32 (WebGPU arrays), else F64 (the float64
// interpreter), so a resumed run continues bit for bit. The format is small (8-byte header length,
// JSON header, raw little-endian data): the npm `safetensors` package is a 0.0.1 placeholder, so it
// is written here.
//
// Never silently wrong: the header begins with `grng_sha256`, the SHA-256 of the whole file with
// those 64 digits read as zeros (so it covers the length, the header with the grng metadata and
// every tensor byte), and loadCheckpoint refuses a file that does not match it. A save writes
// `path.tmp`, fsyncs it, reads it back and checks it, hard-links the current checkpoint as
// `path.prev`, then renames the temporary over `path`: a rename is atomic, so at every instant
// `path` is a complete checkpoint (once one was saved), and `path.prev` keeps the one before.
import { createHash } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  fsyncSync,
  linkSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
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

interface TensorEntry {
  readonly dtype: StoredType;
  readonly shape: number[];
  readonly data_offsets: [number, number];
}

type Header = Record<string, unknown>;

const CHECKSUM_KEY = 'grng_sha256';
// The header begins with the checksum, so its digits sit at a fixed offset that the hash skips.
const HEADER_START = `{"__metadata__":{"${CHECKSUM_KEY}":"`;
const CHECKSUM_AT = 8 + HEADER_START.length;
const CHECKSUM_DIGITS = 64;
const UNSET_CHECKSUM = '0'.repeat(CHECKSUM_DIGITS);

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
  return isFloat32Exact(data) ? 'F32' : 'F64';
}

// A plain loop: several times faster than every() on the megabytes of a checkpoint.
function isFloat32Exact(data: Float64Array): boolean {
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (Math.fround(v) !== v && !Number.isNaN(v)) return false;
  }
  return true;
}

function encode(type: StoredType, data: Float64Array): Uint8Array {
  const typed =
    type === 'F32'
      ? new Float32Array(data)
      : type === 'F64'
        ? data
        : type === 'I32'
          ? new Int32Array(data)
          : new Uint8Array(data);
  return new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
}

/**
 * Writes `trees` and `meta` to `path` (a .safetensors file, checksummed, verified after writing,
 * the checkpoint it replaces kept as `path + '.prev'`) and `path + '.json'`, each through a
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
      [CHECKSUM_KEY]: UNSET_CHECKSUM,
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
  const chunks = [length, headerBytes, ...entries.map((e) => e.bytes)];
  headerBytes.write(sha256(chunks), CHECKSUM_AT - 8, 'latin1');
  replaceCheckpoint(path, chunks);
  const sidecar = `${path}.json`;
  writeFlushed(`${sidecar}.tmp`, [
    Buffer.from(`${JSON.stringify({ ...meta, tensors: entries.length }, null, 2)}\n`),
  ]);
  renameSync(`${sidecar}.tmp`, sidecar);
}

function sha256(chunks: readonly Uint8Array[]): string {
  const hash = createHash('sha256');
  for (const chunk of chunks) hash.update(chunk);
  return hash.digest('hex');
}

/** The checksum a checkpoint file's bytes should carry: their SHA-256, its own digits as zeros. */
function expectedChecksum(bytes: Uint8Array): string {
  return sha256([
    bytes.subarray(0, CHECKSUM_AT),
    Buffer.from(UNSET_CHECKSUM, 'latin1'),
    bytes.subarray(CHECKSUM_AT + CHECKSUM_DIGITS),
  ]);
}

/** The checksum digits where saveCheckpoint puts them (whatever those bytes are). */
function storedChecksum(bytes: Uint8Array): string {
  return Buffer.from(bytes.subarray(CHECKSUM_AT, CHECKSUM_AT + CHECKSUM_DIGITS)).toString('latin1');
}

/**
 * Puts a checkpoint file's `chunks` at `path`: written to `path.tmp`, flushed, read back and
 * verified; the checkpoint now at `path` kept as `path.prev`; then the temporary renamed over
 * `path` (atomic, so `path` is never missing nor partial).
 */
function replaceCheckpoint(path: string, chunks: readonly Uint8Array[]): void {
  const temporary = `${path}.tmp`;
  writeFlushed(temporary, chunks);
  const written = inspect(temporary, readFileSync(temporary));
  if (!written.ok) {
    rmSync(temporary, { force: true });
    throw new GrngError(
      'saveCheckpoint',
      `read back after writing, ${written.problem}; ${path} was left as it was: check the disk ` +
        `(free space, I/O errors) and save again`,
    );
  }
  keepAsPrevious(path);
  renameSync(temporary, path);
  syncDirectory(dirname(path));
}

/**
 * Makes `path.prev` the checkpoint now at `path`, when that one is intact (a damaged file never
 * replaces a good `.prev`). A hard link, so `path` itself never goes missing; a copy where the
 * file system has no links.
 */
function keepAsPrevious(path: string): void {
  let current: Buffer;
  try {
    current = readFileSync(path);
  } catch {
    return; // the first checkpoint: nothing to keep
  }
  if (!inspect(path, current).ok) return;
  const previous = `${path}.prev`;
  rmSync(previous, { force: true });
  try {
    linkSync(path, previous);
  } catch {
    copyFileSync(path, previous);
  }
}

/** Writes `chunks` to `path` and flushes them to disk. */
function writeFlushed(path: string, chunks: readonly Uint8Array[]): void {
  const fd = openSync(path, 'w');
  try {
    for (const chunk of chunks) {
      // writeSync may write less than asked; loop until the chunk is out.
      for (let done = 0; done < chunk.byteLength;) done += writeSync(fd, chunk, done);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Flushes a directory, so renames in it survive a power loss (not possible everywhere). */
function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Windows cannot open a directory; the rename itself has happened.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Why a file is refused, naming it, and what to do about it. */
interface Refusal {
  readonly ok: false;
  readonly problem: string;
  readonly advice: string;
}

type Inspection = { readonly ok: true; readonly header: Header; readonly body: number } | Refusal;

/**
 * Checks a checkpoint file's bytes: their structure (for messages that say what is wrong), then
 * the checksum. Nothing is decoded.
 */
function inspect(path: string, bytes: Uint8Array): Inspection {
  const damaged = (problem: string): Refusal => ({
    ok: false,
    problem: `${path} ${problem}`,
    advice: 'restore it from a good copy, or train again',
  });
  if (bytes.byteLength < 8) return damaged('is shorter than its 8-byte header length (truncated)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const body = 8 + Number(view.getBigUint64(0, true));
  if (body > bytes.byteLength)
    return damaged(
      `is truncated: its header runs past the end of the file (${bytes.byteLength} bytes)`,
    );
  const header = parseHeader(bytes.subarray(8, body));
  if (header === undefined) return damaged('is corrupt: its header is not JSON');
  const expected = body + dataLength(header);
  if (bytes.byteLength !== expected)
    return damaged(
      `is ${bytes.byteLength < expected ? 'truncated' : 'corrupt'}: ${bytes.byteLength} bytes ` +
        `where its header describes ${expected}`,
    );
  const metadata = header.__metadata__;
  const fields = isRecord(metadata) ? metadata : {};
  const isGrng = typeof fields.grng === 'string';
  const stored = storedChecksum(bytes);
  if (isGrng && stored === expectedChecksum(bytes)) return { ok: true, header, body };
  // A checksum that is there but does not match: the key, or digits where grng writes them
  // (so a damaged key name still reads as damage, not as an unchecked file).
  if (fields[CHECKSUM_KEY] !== undefined || /^[0-9a-f]{64}$/.test(stored))
    return damaged(
      'is corrupt: its contents do not match its SHA-256 checksum (bytes changed on disk or in a copy)',
    );
  if (!isGrng)
    return {
      ok: false,
      problem: `${path} is not a grng checkpoint (no grng metadata in the header)`,
      advice: 'pass a checkpoint written by grng (saveCheckpoint, grng train)',
    };
  return {
    ok: false,
    problem:
      `${path} has no ${CHECKSUM_KEY} checksum: it was written by an older grng or by another ` +
      `tool, so its contents cannot be verified`,
    advice:
      'write it again with this grng (train again, or load it with the grng that wrote it and ' +
      'save it with this one)',
  };
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function parseHeader(bytes: Uint8Array): Header | undefined {
  try {
    const header: unknown = JSON.parse(Buffer.from(bytes).toString('utf8'));
    return isRecord(header) ? header : undefined;
  } catch {
    return undefined;
  }
}

/** The bytes of tensor data the header describes (the largest end offset). */
function dataLength(header: Header): number {
  let end = 0;
  for (const [name, entry] of Object.entries(header)) {
    const offsets = isRecord(entry) ? entry.data_offsets : undefined;
    if (name !== '__metadata__' && Array.isArray(offsets) && typeof offsets[1] === 'number')
      end = Math.max(end, offsets[1]);
  }
  return end;
}

/**
 * Reads a checkpoint written by saveCheckpoint: its trees as host arrays and its metadata. A file
 * that is truncated, damaged (its SHA-256 checksum does not match), not a grng checkpoint, or
 * without a checksum is a GrngError saying so, and naming `path + '.prev'` when that one is intact.
 */
export function loadCheckpoint(path: string): Checkpoint {
  const found = readCheckpoint(path);
  if (found.ok) return found.checkpoint;
  throw new GrngError('loadCheckpoint', `${found.problem}; ${previousOr(path, found.advice)}`);
}

function readCheckpoint(path: string): { ok: true; checkpoint: Checkpoint } | Refusal {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    return {
      ok: false,
      problem: `cannot read ${path}: ${(error as Error).message}`,
      advice: 'check the path',
    };
  }
  const inspection = inspect(path, bytes);
  if (!inspection.ok) return inspection;
  return { ok: true, checkpoint: decode(path, bytes, inspection.header, inspection.body) };
}

/** What to do about a refused `path`: resume from its intact `.prev` if there is one. */
function previousOr(path: string, advice: string): string {
  const previous = `${path}.prev`;
  const found = readCheckpoint(previous);
  if (!found.ok) return advice;
  const step = found.checkpoint.meta.step;
  const which = typeof step === 'number' ? `, step ${step},` : '';
  return `the previous checkpoint${which} is at ${previous}: resume from it (or copy it over ${path})`;
}

/** The trees and metadata of a file `inspect` accepted (so its checksum matched). */
function decode(path: string, bytes: Buffer, header: Header, body: number): Checkpoint {
  const { meta, structure, dtypes } = JSON.parse(
    (header.__metadata__ as Record<string, string>).grng,
  ) as {
    meta: Record<string, unknown>;
    structure: Record<string, unknown>;
    dtypes: Record<string, DType>;
  };
  const arrays = new Map<string, HostArray>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const {
      dtype,
      shape,
      data_offsets: [start, end],
    } = entry as TensorEntry;
    // A copy, so the typed arrays see an aligned buffer.
    const view = new Uint8Array(bytes.subarray(body + start, body + end));
    const data =
      dtype === 'F32'
        ? new Float64Array(new Float32Array(view.buffer))
        : dtype === 'F64'
          ? new Float64Array(view.buffer)
          : dtype === 'I32'
            ? new Float64Array(new Int32Array(view.buffer))
            : new Float64Array(view);
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
        if (array === undefined)
          throw new GrngError('loadCheckpoint', `${path} is corrupt: tensor ${name} is missing`);
        return array;
      }),
    ) as Tree<HostArray>;
  }
  return { trees, meta };
}
