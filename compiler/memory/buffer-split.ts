import { GrngError } from '../../core/errors.js';
import type { Node } from '../../core/ir/node.js';
import { shapeSize } from '../../core/ir/shape.js';
import { packInOrder, paddedLength, REGION_ALIGN, storageOf } from './layout.js';

/**
 * How a program's arrays are spread over buffers so that no binding exceeds the device's
 * maxStorageBufferBindingSize (a kernel binds a buffer whole). Decided before kernels are
 * formed, because which buffer an array lives in decides how many bindings a kernel needs:
 * - results and data constants are packed in order, a new buffer starting when one is full;
 * - intermediates share an arena per storage type, except those of `ownArenaFrom` elements or
 *   more, which get a buffer each (compileProgram lowers it until every arena fits).
 */
export interface BufferSplit {
  /** The most elements a buffer may hold. */
  readonly maxElements: number;
  /** Results buffer of each output position (within its storage type). */
  readonly outputPacks: readonly number[];
  /** Constants buffer of each data constant, by node id (within its storage type). */
  readonly constantPacks: ReadonlyMap<number, number>;
  /** Intermediates of at least this many (padded) elements live in a buffer of their own. */
  readonly ownArenaFrom: number;
}

/** True when `node`, an intermediate, lives in an arena of its own under `split`. */
export const ownsArena = (split: BufferSplit, node: Node): boolean =>
  paddedLength(shapeSize(node.shape)) >= split.ownArenaFrom;

/** Everything in one buffer per kind and storage type: no limit to respect. */
export const NO_SPLIT: BufferSplit = {
  maxElements: Infinity,
  outputPacks: [],
  constantPacks: new Map(),
  ownArenaFrom: Infinity,
};

/** The most elements a binding of `bytes` holds, whole regions only. */
export const bindingElements = (bytes: number): number =>
  Math.floor(bytes / 4 / REGION_ALIGN) * REGION_ALIGN;

/** Packs in order, per storage type: the pack of each of `nodes`. */
function packsByStorage(nodes: readonly Node[], maxElements: number): number[] {
  const out = new Array<number>(nodes.length);
  for (const storage of ['f32', 'i32'] as const) {
    const at = nodes.flatMap((n, i) => (storageOf(n.dtype) === storage ? [i] : []));
    const packs = packInOrder(
      at.map((i) => shapeSize(nodes[i].shape)),
      maxElements,
    );
    at.forEach((i, k) => (out[i] = packs[k]));
  }
  return out;
}

export function bufferSplit(
  outputs: readonly Node[],
  dataConstants: readonly Node[],
  maxElements: number,
  ownArenaFrom: number,
): BufferSplit {
  const constants = packsByStorage(dataConstants, maxElements);
  return {
    maxElements,
    outputPacks: packsByStorage(outputs, maxElements),
    constantPacks: new Map(dataConstants.map((n, i) => [n.id, constants[i]] as const)),
    ownArenaFrom,
  };
}

/**
 * The thresholds compileProgram tries for `ownArenaFrom`, largest first: one shared arena, then
 * ever more intermediates in buffers of their own (the last, every one: then no arena holds two
 * arrays, so none can exceed the limit).
 */
export const arenaThresholds = (maxElements: number): number[] =>
  Number.isFinite(maxElements)
    ? [Infinity, Math.floor(maxElements / 8), Math.floor(maxElements / 64), 0]
    : [Infinity];

/** An arena holding several arrays grew past the limit: compile again with a lower threshold. */
export class ArenaOverflow extends Error {}

/**
 * The error for an array no binding can hold: grng binds every array whole, so an array past
 * maxStorageBufferBindingSize cannot be read or written by a kernel on this device.
 */
export function arrayTooLarge(what: string, node: Node, maxElements: number): GrngError {
  const bytes = 4 * paddedLength(shapeSize(node.shape));
  return new GrngError(
    'compile',
    `${what} ${node.dtype}[${node.shape.join(', ')}] needs ${bytes} bytes, over the largest ` +
      `storage binding this device allows (${4 * maxElements} bytes, its ` +
      `maxStorageBufferBindingSize): a kernel binds an array whole, so split it into smaller ` +
      `arrays (several parameters), or use an adapter with a larger binding limit`,
  );
}
