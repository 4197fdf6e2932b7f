import { GrngError } from '../../core/errors.js';
import type { Node } from '../../core/ir/node.js';
import { shapeSize } from '../../core/ir/shape.js';
import { packInOrder, paddedLength, REGION_ALIGN, storageOf } from './layout.js';

/**
 * How a program's arrays are spread over buffers so that no binding exceeds the device's
 * maxStorageBufferBindingSize. Decided before kernels are formed, because which buffer an array
 * lives in decides how many bindings a kernel needs:
 * - results and data constants are packed in order, a new buffer starting when one is full;
 * - intermediates share an arena per storage type, except those of `ownArenaFrom` elements or
 *   more, which get a buffer each (compileProgram lowers it until every arena fits);
 * - an array longer than one binding (up to maxBufferSize) has a buffer of its own, which kernels
 *   bind as several windows of `windowElements` (wgsl/windowed-bindings.ts).
 */
export interface BufferSplit {
  /** The most elements a buffer bound whole may hold. */
  readonly maxElements: number;
  /** Results buffer of each output position (within its storage type). */
  readonly outputPacks: readonly number[];
  /** Constants buffer of each data constant, by node id (within its storage type). */
  readonly constantPacks: ReadonlyMap<number, number>;
  /** Intermediates of at least this many (padded) elements live in a buffer of their own. */
  readonly ownArenaFrom: number;
  /** Elements per window of a buffer longer than `maxElements`. */
  readonly windowElements: number;
  /** The most elements one buffer may hold (the device's maxBufferSize). */
  readonly maxBufferElements: number;
}

/** True when `node`, an intermediate, lives in an arena of its own under `split`. */
export const ownsArena = (split: BufferSplit, node: Node): boolean => {
  const length = paddedLength(shapeSize(node.shape));
  return length >= split.ownArenaFrom || length > split.maxElements;
};

/** The windows of a buffer holding `length` elements, `windowElements` per window. */
export const windowCount = (length: number, windowElements: number): number =>
  Math.max(1, Math.ceil(length / windowElements));

/**
 * The windows a kernel binds a buffer whose arrays end at element `end` with: 1 (bound whole)
 * within one binding.
 */
export function windowsFor(split: BufferSplit, end: number): number {
  if (end <= split.maxElements) return 1;
  if (split.windowElements < REGION_ALIGN)
    throw new GrngError(
      'compile',
      `an array of ${end} elements is longer than one storage binding (${4 * split.maxElements} ` +
        `bytes), and windows of it must start on minStorageBufferOffsetAlignment, which is ` +
        `larger than the binding: split the array, or use larger bindings`,
    );
  return windowCount(end, split.windowElements);
}

/** Everything in one buffer per kind and storage type: no limit to respect. */
export const NO_SPLIT: BufferSplit = {
  maxElements: Infinity,
  outputPacks: [],
  constantPacks: new Map(),
  ownArenaFrom: Infinity,
  windowElements: Infinity,
  maxBufferElements: Infinity,
};

/** The most elements a binding of `bytes` holds, whole regions only. */
export const bindingElements = (bytes: number): number =>
  Math.floor(bytes / 4 / REGION_ALIGN) * REGION_ALIGN;

/**
 * Elements per window of a buffer longer than a binding of `bindingBytes`: windows start on
 * multiples of the device's minStorageBufferOffsetAlignment (`alignment` bytes; 256, WebGPU's
 * default, when unknown) and of a vec4.
 */
export function windowElementsFor(bindingBytes: number, alignment = 256): number {
  const step = Math.max(alignment, 4 * REGION_ALIGN);
  return (Math.floor(bindingBytes / step) * step) / 4;
}

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
  limits: Pick<BufferSplit, 'maxElements' | 'windowElements' | 'maxBufferElements'>,
  ownArenaFrom: number,
): BufferSplit {
  const constants = packsByStorage(dataConstants, limits.maxElements);
  return {
    ...limits,
    outputPacks: packsByStorage(outputs, limits.maxElements),
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
 * The error for an array no buffer can hold: past the device's maxBufferSize (`maxElements` here),
 * an array cannot live on this device at all.
 */
export function arrayTooLarge(what: string, node: Node, maxElements: number): GrngError {
  const bytes = 4 * paddedLength(shapeSize(node.shape));
  return new GrngError(
    'compile',
    `${what} ${node.dtype}[${node.shape.join(', ')}] needs ${bytes} bytes, over the largest ` +
      `buffer this device allows (${4 * maxElements} bytes, its maxBufferSize): split it into ` +
      `smaller arrays (several parameters), or use an adapter with a larger maxBufferSize`,
  );
}
