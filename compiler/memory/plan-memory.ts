import type { Node } from '../../core/ir/node.js';
import { shapeSize } from '../../core/ir/shape.js';
import {
  packLengths,
  paddedLength,
  storageOf,
  type InputLayout,
  type Region,
  type Slot,
} from './layout.js';
import {
  ArenaOverflow,
  arrayTooLarge,
  NO_SPLIT,
  ownsArena,
  windowsFor,
  type BufferSplit,
} from './buffer-split.js';

/** A dispatch as memory planning sees it: the roots it writes and the buffers it reads. */
export interface DispatchBuffers {
  readonly roots: readonly Node[];
  readonly inputs: readonly Node[];
  /** Roots stored in place into a donated input's region: root id → input node. */
  readonly aliases: ReadonlyMap<number, Node>;
}

export interface MemoryPlan {
  readonly slots: readonly Slot[];
  /** Region of every buffer-backed node: inputs, data constants and kernel roots. */
  readonly regions: ReadonlyMap<number, Region>;
  /**
   * Where the array for each output position lives (results buffer or, in place, a donated input's
   * region).
   */
  readonly outputs: readonly Region[];
  /**
   * Copies into the results made after the dispatches (returned inputs, constants, repeats), in
   * elements.
   */
  readonly copies: readonly {
    readonly from: Region;
    readonly to: Region;
    readonly length: number;
  }[];
  /** One-element inputs read through the `scalars` uniform slot: node id → cell. */
  readonly scalars: ReadonlyMap<number, number>;
  /** Slots longer than one binding: slot → the windows kernels bind it as. */
  readonly windows: ReadonlyMap<number, number>;
  /** Elements per window of a windowed slot. */
  readonly windowElements: number;
}

/**
 * Cells of the `scalars` uniform buffer: 16 KiB, the smallest maxUniformBufferBindingSize WebGPU
 * allows, of 16-byte cells.
 */
export const MAX_SCALARS = 1024;

/**
 * A label for the buffer `node` will live in, before offsets exist (used to count bindings): a
 * buffer longer than one binding is labelled `…×k`, k being the windows a kernel binds it as.
 */
export type BindingKey = (node: Node) => string;

/** The windows the buffer labelled `key` is bound as (1: whole). */
export const windowsOfKey = (key: string): number => Number(/×(\d+)$/.exec(key)?.[1] ?? 1);

/** The bindings a kernel reading and writing the buffers labelled `keys` needs. */
export function bindingsOfKeys(keys: Iterable<string>): number {
  let count = 0;
  for (const key of new Set(keys)) count += windowsOfKey(key);
  return count;
}

export function bindingKeys(
  layout: InputLayout,
  outputs: readonly Node[],
  hosted: ReadonlySet<number> = new Set(),
  split: BufferSplit = NO_SPLIT,
  inputs: readonly Node[] = [],
): BindingKey {
  // A computed output is stored at its first position: the results buffer of that position.
  const outputPack = new Map<number, number>();
  outputs.forEach((n, i) => {
    if (!outputPack.has(n.id)) outputPack.set(n.id, split.outputPacks[i] ?? 0);
  });
  // An input slot is as many windows as its furthest array needs.
  const inputEnds = new Map<number, number>();
  for (const n of inputs) {
    const at = layout.regions.get(n.id);
    if (at === undefined) continue;
    const end = at.offset + paddedLength(shapeSize(n.shape));
    inputEnds.set(at.slot, Math.max(end, inputEnds.get(at.slot) ?? 0));
  }
  const windowed = (key: string, end: number) => {
    const windows = windowsFor(split, end);
    return windows > 1 ? `${key}×${windows}` : key;
  };
  return (node) => {
    if (hosted.has(node.id)) return 'scalars';
    const length = paddedLength(shapeSize(node.shape));
    // Past the longest buffer, no binding helps: said before kernels are formed around it.
    if (length > split.maxBufferElements)
      throw arrayTooLarge(whatIs(node, outputPack), node, split.maxBufferElements);
    if (node.op === 'input') {
      const slot = layout.regions.get(node.id)?.slot;
      if (slot === undefined) return `in?${node.id}`;
      return windowed(`in${slot}`, Math.max(length, inputEnds.get(slot) ?? 0));
    }
    const storage = storageOf(node.dtype);
    // (a constant of one repeated value is computed by a kernel: a result or an intermediate)
    const pack = split.constantPacks.get(node.id);
    if (pack !== undefined) return windowed(`const:${storage}:${pack}`, length);
    const out = outputPack.get(node.id);
    if (out !== undefined) return windowed(`out:${storage}:${out}`, length);
    return ownsArena(split, node) ? windowed(`arena#${node.id}`, length) : `arena:${storage}`;
  };
}

/** How errors name `node`'s array. */
const whatIs = (node: Node, outputs: ReadonlyMap<number, unknown>): string =>
  node.op === 'input'
    ? `the input "${(node as Node<'input'>).attrs.name}"`
    : node.op === 'constant' && 'data' in (node.attrs as object)
      ? 'a constant'
      : outputs.has(node.id)
        ? 'a result'
        : 'an intermediate';

/**
 * Gives every buffer-backed node a region. Inputs keep the caller's layout; data constants are
 * packed into one buffer per storage type; returned roots are packed into one results buffer per
 * type; intermediates share an arena per type, a region being reused once the last dispatch that
 * reads it has run (dispatches run in order, and a dispatch never writes where it reads).
 */
export function planMemory(
  dispatches: readonly DispatchBuffers[],
  externals: readonly Node[],
  outputs: readonly Node[],
  layout: InputLayout,
  inPlace: {
    readonly donated: ReadonlySet<number>;
    readonly copyBack: ReadonlyMap<number, Node>;
    /** Values the caller computes each call: a scalars cell each, and no buffer. */
    readonly hosted?: readonly { readonly placeholder: Node<'input'> }[];
  } = { donated: new Set(), copyBack: new Map() },
  split: BufferSplit = NO_SPLIT,
): MemoryPlan {
  const { donated, copyBack } = inPlace;
  const hosted = inPlace.hosted ?? [];
  const slots: Slot[] = layout.slots.map((storage, index) => ({ kind: 'input', index, storage }));
  const regions = new Map<number, Region>(layout.regions);
  const outputIds = new Set(outputs.map((n) => n.id));

  const isData = (n: Node) => n.op === 'constant' && 'data' in (n.attrs as object);
  const byStorage = <T extends Node>(nodes: readonly T[]) =>
    (['f32', 'i32'] as const)
      .map((storage) => ({ storage, nodes: nodes.filter((n) => storageOf(n.dtype) === storage) }))
      .filter((g) => g.nodes.length > 0);

  const packOf = (n: Node) => split.constantPacks.get(n.id) ?? 0;
  for (const { storage, nodes } of byStorage(externals.filter(isData)).flatMap(
    ({ storage, nodes }) => groupBy(nodes, packOf).map((group) => ({ storage, nodes: group })),
  )) {
    const { offsets, length } = packLengths(nodes.map((n) => shapeSize(n.shape)));
    if (length > split.maxBufferElements)
      throw arrayTooLarge('a constant', nodes[0], split.maxBufferElements);
    const data = new Float64Array(length);
    nodes.forEach((n, i) => {
      // externals hold data constants only
      data.set((n.attrs as { readonly data: Float64Array }).data, offsets[i]);
      regions.set(n.id, { slot: slots.length, offset: offsets[i] });
    });
    slots.push({ kind: 'constants', storage, data });
  }

  const aliased = new Map<number, Node>();
  for (const d of dispatches) for (const [root, input] of d.aliases) aliased.set(root, input);
  for (const [root, input] of aliased) regions.set(root, regions.get(input.id) as Region);

  // Every output position is an array of its own. The first position of a computed root is
  // where its kernel stores it (the results buffer, or a donated input's region in place);
  // inputs, data constants and repeated roots are copied into the results after the dispatches,
  // so two results never share memory and the caller never holds the program's constants.
  const computed = (n: Node) => n.op !== 'input' && !isData(n);
  const seen = new Set<number>();
  const fresh = outputs.map((n) => {
    // A donated input returned (once) is handed back in place, as JAX does: no copy.
    const passed = n.op === 'input' && donated.has(n.id) && !seen.has(n.id);
    const copy = !passed && (!computed(n) || seen.has(n.id));
    // computed in the arena, copied into its donated input's region
    const back = !copy && copyBack.has(n.id);
    seen.add(n.id);
    return { n, copy, back, stored: !copy && !passed && !back && !regions.has(n.id) };
  });
  const outputRegions: Region[] = new Array(outputs.length);
  const copies: { from: Region; to: Region; length: number }[] = [];
  const results = (['f32', 'i32'] as const).flatMap((storage) =>
    groupBy(
      fresh
        .map((f, i) => ({ ...f, i }))
        .filter((f) => (f.copy || f.stored) && storageOf(f.n.dtype) === storage),
      (f) => split.outputPacks[f.i] ?? 0,
    ).map((here) => ({ storage, here })),
  );
  for (const { storage, here } of results) {
    const { offsets, length } = packLengths(here.map((f) => shapeSize(f.n.shape)));
    if (length > split.maxBufferElements)
      throw arrayTooLarge('a result', here[0].n, split.maxBufferElements);
    here.forEach((f, k) => {
      const to = { slot: slots.length, offset: offsets[k] };
      outputRegions[f.i] = to;
      if (f.stored) regions.set(f.n.id, to);
    });
    slots.push({ kind: 'results', storage, length });
  }
  fresh.forEach((f, i) => {
    if (f.back) outputRegions[i] = regions.get((copyBack.get(f.n.id) as Node).id) as Region;
    // stored in place, or a donated input
    else if (!f.copy && !f.stored) outputRegions[i] = regions.get(f.n.id) as Region;
  });
  const intermediates = dispatches.flatMap((d) =>
    d.roots.filter((r) => (!outputIds.has(r.id) || copyBack.has(r.id)) && !aliased.has(r.id)),
  );
  const own = intermediates.filter((n) => ownsArena(split, n));
  const arenas = [
    ...byStorage(intermediates.filter((n) => !ownsArena(split, n))),
    ...own.map((n) => ({ storage: storageOf(n.dtype), nodes: [n] })),
  ];
  const keptToEnd = new Set(copyBack.keys());
  // Buffers bound as windows are shared only among themselves: one bound whole must fit a binding.
  const wide = (n: Node) => paddedLength(shapeSize(n.shape)) > split.maxElements;
  const sharing = shareBuffers(
    [own.filter((n) => !wide(n)), own.filter(wide)],
    dispatches,
    keptToEnd,
  );
  for (const { storage, nodes } of arenas) {
    const { offsets, length } = allocateByLiveness(nodes, dispatches, keptToEnd);
    if (nodes.length === 1 && length > split.maxBufferElements)
      throw arrayTooLarge('an intermediate', nodes[0], split.maxBufferElements);
    if (nodes.length > 1 && length > split.maxElements)
      throw new ArenaOverflow(`an arena of ${length} elements`);
    const slot = slots.length;
    nodes.forEach((n) => regions.set(n.id, { slot, offset: offsets.get(n.id) as number }));
    const buffer = sharing.get(nodes[0].id);
    slots.push({ kind: 'arena', storage, length, ...(buffer === undefined ? {} : { buffer }) });
  }
  // Repeats after the arena's regions exist: a root returned twice and copied back into its
  // donated input is computed in the arena, which the first copy reads.
  fresh.forEach((f, i) => {
    if (f.copy)
      copies.push({
        from: regions.get(f.n.id) as Region,
        to: outputRegions[i],
        length: paddedLength(shapeSize(f.n.shape)),
      });
  });
  for (const [root, input] of copyBack) {
    const node = intermediates.find((n) => n.id === root) as Node;
    copies.push({
      from: regions.get(root) as Region,
      to: regions.get(input.id) as Region,
      length: paddedLength(shapeSize(node.shape)),
    });
  }

  // One-element inputs (hyperparameters, step counts) get a uniform cell each; values computed
  // on the host come first (they have no buffer to be read from instead).
  const scalars = new Map<number, number>();
  const hostCells = new Map(hosted.map((h) => [h.placeholder.id, h.placeholder] as const));
  const scalarInputs = [
    ...hostCells.values(),
    ...[...new Set(dispatches.flatMap((d) => d.inputs))].filter(
      (n) => n.op === 'input' && shapeSize(n.shape) === 1 && !hostCells.has(n.id),
    ),
  ];
  scalarInputs.slice(0, MAX_SCALARS).forEach((n, cell) => scalars.set(n.id, cell));
  if (scalars.size > 0) {
    for (const id of hostCells.keys()) regions.set(id, { slot: slots.length, offset: 0 });
    slots.push({
      kind: 'scalars',
      storage: 'i32',
      sources: [...scalars.keys()].map((id) => {
        const placeholder = hostCells.get(id);
        return placeholder === undefined
          ? (regions.get(id) as Region)
          : { host: placeholder.attrs.name };
      }),
    });
  }

  // No array is longer than a buffer may be (the caller's, from its allocation, cannot be).
  for (const n of externals) {
    if (n.op === 'input' && paddedLength(shapeSize(n.shape)) > split.maxBufferElements)
      throw arrayTooLarge(
        `the input "${(n as Node<'input'>).attrs.name}"`,
        n,
        split.maxBufferElements,
      );
  }
  return {
    slots,
    regions,
    outputs: outputRegions,
    copies,
    scalars,
    windows: windowedSlots(slots, regions, [...externals, ...intermediates, ...outputs], split),
    windowElements: split.windowElements,
  };
}

/**
 * Slots whose arrays reach past one binding: each is bound as windows, as many as its furthest
 * array needs (an arena as its length).
 */
function windowedSlots(
  slots: readonly Slot[],
  regions: ReadonlyMap<number, Region>,
  nodes: readonly Node[],
  split: BufferSplit,
): Map<number, number> {
  const ends = slots.map((slot) =>
    slot.kind === 'arena' || slot.kind === 'results'
      ? slot.length
      : slot.kind === 'constants'
        ? slot.data.length
        : 0,
  );
  for (const n of nodes) {
    const at = regions.get(n.id);
    if (at === undefined || slots[at.slot].kind !== 'input') continue;
    ends[at.slot] = Math.max(ends[at.slot], at.offset + paddedLength(shapeSize(n.shape)));
  }
  const out = new Map<number, number>();
  ends.forEach((end, slot) => {
    const windows = windowsFor(split, end);
    if (windows > 1) out.set(slot, windows);
  });
  return out;
}

/** `items` grouped by `key`, groups in order of first appearance. */
function groupBy<T>(items: readonly T[], key: (item: T) => number): T[][] {
  const groups = new Map<number, T[]>();
  for (const item of items) {
    const group = groups.get(key(item));
    if (group === undefined) groups.set(key(item), [item]);
    else group.push(item);
  }
  return [...groups.values()];
}

/**
 * Buffers for intermediates that have arenas of their own: one whose last reader has run is free
 * for a later one, as regions within an arena are (the best fitting free buffer, grown if none
 * is long enough). Node id → buffer number.
 */
function shareBuffers(
  groups: readonly (readonly Node[])[],
  dispatches: readonly DispatchBuffers[],
  keptToEnd: ReadonlySet<number>,
): Map<number, number> {
  const { written, lastRead } = lifetimes(dispatches, keptToEnd);
  const out = new Map<number, number>();
  let numbered = 0;
  for (const nodes of groups) {
    const buffers = shareWithin(nodes, written, lastRead);
    for (const [id, buffer] of buffers.out) out.set(id, numbered + buffer);
    numbered += buffers.count;
  }
  return out;
}

/** shareBuffers for one group: node id → buffer within it, and how many buffers it uses. */
function shareWithin(
  nodes: readonly Node[],
  written: ReadonlyMap<number, number>,
  lastRead: ReadonlyMap<number, number>,
): { out: Map<number, number>; count: number } {
  const buffers: { length: number; until: number }[] = [];
  const out = new Map<number, number>();
  const order = [...nodes].sort((a, b) => (written.get(a.id) ?? 0) - (written.get(b.id) ?? 0));
  for (const node of order) {
    const from = written.get(node.id) ?? 0;
    const length = paddedLength(shapeSize(node.shape));
    const free = buffers.flatMap((b, i) => (b.until < from ? [i] : []));
    const fits = free.filter((i) => buffers[i].length >= length);
    const pick =
      fits.length > 0
        ? fits.reduce((a, b) => (buffers[b].length < buffers[a].length ? b : a))
        : free.length > 0
          ? free.reduce((a, b) => (buffers[b].length > buffers[a].length ? b : a))
          : buffers.push({ length: 0, until: -1 }) - 1;
    buffers[pick] = {
      length: Math.max(buffers[pick].length, length),
      until: lastRead.get(node.id) ?? from,
    };
    out.set(node.id, pick);
  }
  return { out, count: buffers.length };
}

/** The dispatch that writes each root, and the last that reads it (the copies: past the end). */
function lifetimes(dispatches: readonly DispatchBuffers[], keptToEnd: ReadonlySet<number>) {
  const written = new Map<number, number>();
  const lastRead = new Map<number, number>();
  dispatches.forEach((d, k) => {
    d.roots.forEach((n) => written.set(n.id, k));
    d.inputs.forEach((n) => lastRead.set(n.id, k));
  });
  for (const id of keptToEnd) lastRead.set(id, dispatches.length);
  return { written, lastRead };
}

/**
 * First-fit offsets for `nodes` (roots of `dispatches`): a region is free after its last reader.
 */
function allocateByLiveness(
  nodes: readonly Node[],
  dispatches: readonly DispatchBuffers[],
  keptToEnd: ReadonlySet<number>,
): { offsets: Map<number, number>; length: number } {
  const wanted = new Set(nodes.map((n) => n.id));
  const { lastRead } = lifetimes(dispatches, keptToEnd);
  const live: { offset: number; length: number; until: number }[] = [];
  const offsets = new Map<number, number>();
  let length = 0;
  dispatches.forEach((d, k) => {
    // Regions last read before this dispatch are free; those it reads stay taken while it runs.
    for (let i = live.length - 1; i >= 0; i--) if (live[i].until < k) live.splice(i, 1);
    for (const root of d.roots) {
      if (!wanted.has(root.id)) continue;
      const size = paddedLength(shapeSize(root.shape));
      live.sort((a, b) => a.offset - b.offset);
      let at = 0;
      for (const block of live) {
        if (block.offset - at >= size) break;
        at = Math.max(at, block.offset + block.length);
      }
      live.push({ offset: at, length: size, until: lastRead.get(root.id) ?? k });
      offsets.set(root.id, at);
      length = Math.max(length, at + size);
    }
  });
  return { offsets, length };
}

/** A slot for messages and explain(): "arena f32 (1024 elements)". */
export function slotLabel(slot: Slot): string {
  if (slot.kind === 'scalars') return `scalars uniform (${slot.sources.length} cells)`;
  const size =
    slot.kind === 'input'
      ? "the caller's buffer"
      : `${slot.kind === 'constants' ? slot.data.length : slot.length} elements`;
  const shared =
    slot.kind === 'arena' && slot.buffer !== undefined ? `, shared buffer ${slot.buffer}` : '';
  return `${slot.kind}${slot.kind === 'input' ? ` ${slot.index}` : ''} ${slot.storage} (${size}${shared})`;
}
