import type { DType } from '../../core/ir/dtype.js';
import type { Node } from '../../core/ir/node.js';

/** What a buffer holds: f32, or i32 (bool is stored as i32 0/1). */
export type StorageType = 'f32' | 'i32';

export const storageOf = (dtype: DType): StorageType => (dtype === 'f32' ? 'f32' : 'i32');

/**
 * Every array lives in a region of a buffer that starts on a 4-element (16-byte) boundary and
 * spans whole vec4s, so any region can be read and written as vec4s (the padding lanes compute
 * values nobody reads) and many arrays can share one buffer.
 */
export const REGION_ALIGN = 4;

export const paddedLength = (elements: number): number =>
  Math.max(REGION_ALIGN, Math.ceil(elements / REGION_ALIGN) * REGION_ALIGN);

/**
 * A buffer a program binds. Packing arrays into few buffers is what lets one dispatch update
 * any number of tensors without exceeding maxStorageBuffersPerShaderStage.
 * - `input`: the `index`-th distinct buffer among the arrays the caller passes (arrays may be views
 *   of one buffer);
 * - `constants`: the program's data constants, packed and uploaded once;
 * - `arena`: intermediates, regions reused once their last reader has run (liveness); large
 *   intermediates of a program too big for one binding get an arena each, and such arenas share
 *   buffers by the same rule;
 * - `results`: the returned arrays, handed to the caller as views of one fresh buffer per call;
 * - `scalars`: a uniform buffer holding a copy of each one-element input (learning rate, step,
 *   …) in a 16-byte cell, refreshed from `sources` at the start of every call, and the values the
 *   caller computes on the host each call (`HostCell`: bias corrections and the like, see
 *   compiler/hoist-host-scalars.ts). Kernels read per-call scalars from it: a uniform load is as
 *   cheap as a literal on software adapters, where every invocation re-reading a storage element
 *   costs several percent of an update.
 */
export type Slot =
  | { readonly kind: 'input'; readonly index: number; readonly storage: StorageType }
  | { readonly kind: 'constants'; readonly storage: StorageType; readonly data: Float64Array }
  | {
      readonly kind: 'arena';
      readonly storage: StorageType;
      readonly length: number;
      /**
       * Arenas with the same `buffer` share one GPU buffer (as long as the longest): each holds
       * one intermediate, and their lifetimes do not overlap. Absent: a buffer of its own.
       */
      readonly buffer?: number;
    }
  | { readonly kind: 'results'; readonly storage: StorageType; readonly length: number }
  | {
      readonly kind: 'scalars';
      readonly storage: StorageType;
      readonly sources: readonly (Region | HostCell)[];
    };

/** A scalars-uniform cell the caller fills each call with the hoisted value named `host`. */
export interface HostCell {
  readonly host: string;
}

/**
 * Cells the scalars uniform of a program with `sources` one-element inputs declares and holds: at
 * least 64, else the next power of two, so that a kernel compiled into programs with different
 * numbers of per-call scalars (an optimizer's step variants) is one WGSL text.
 */
export const scalarCells = (sources: number): number =>
  Math.max(64, 2 ** Math.ceil(Math.log2(Math.max(sources, 1))));

/**
 * vec4 cells of a dispatch's offsets uniform holding `count` u32 placements (where its arrays
 * start, which scalars cells it reads): what the kernel declares and the device binds.
 */
export const offsetCells = (count: number): number => Math.ceil(count / 4);

/** Where an array lives: a slot (by position in the program's slot list) and an element offset. */
export interface Region {
  readonly slot: number;
  readonly offset: number;
}

/**
 * Where the caller's arrays live: input slots (their storage types, in order) and each input
 * node's region in them. Part of a compiled program's identity (its dispatches read the offsets).
 */
export interface InputLayout {
  readonly slots: readonly StorageType[];
  readonly regions: ReadonlyMap<number, Region>;
}

/** Each input in a buffer of its own, at offset 0: the layout when nothing is packed. */
export function separateInputs(inputs: readonly Node[]): InputLayout {
  return {
    slots: inputs.map((n) => storageOf(n.dtype)),
    regions: new Map(inputs.map((n, i) => [n.id, { slot: i, offset: 0 }] as const)),
  };
}

/**
 * Inputs packed as `groups` (each group sharing one buffer, back to back): the layout `uploadAll`
 * makes.
 */
export function packedInputs(groups: readonly (readonly Node[])[]): InputLayout {
  const regions = new Map<number, Region>();
  groups.forEach((group, slot) => {
    const { offsets } = packLengths(group.map((n) => n.shape.reduce((a, d) => a * d, 1)));
    group.forEach((n, i) => regions.set(n.id, { slot, offset: offsets[i] }));
  });
  return { slots: groups.map((g) => storageOf(g[0]?.dtype ?? 'f32')), regions };
}

/** Lays out `lengths` back to back in one buffer: each region's offset and the total length. */
export function packLengths(lengths: readonly number[]): { offsets: number[]; length: number } {
  let length = 0;
  const offsets = lengths.map((n) => {
    const at = length;
    length += paddedLength(n);
    return at;
  });
  return { offsets, length };
}

/**
 * Which buffer each of `lengths` goes to when they are packed in order and no buffer may exceed
 * `maxElements` (a binding is bound whole, and maxStorageBufferBindingSize caps it): a new buffer
 * starts when the next array would not fit. An array longer than `maxElements` gets a buffer of
 * its own (whoever binds it reports it).
 */
export function packInOrder(lengths: readonly number[], maxElements: number): number[] {
  let [pack, used] = [0, 0];
  return lengths.map((n) => {
    const size = paddedLength(n);
    if (used > 0 && used + size > maxElements) [pack, used] = [pack + 1, 0];
    used += size;
    return pack;
  });
}
