import type { Node } from '../../core/ir/node.js';
import { shapeSize } from '../../core/ir/shape.js';
import type { KernelPlan } from '../kernels/partition.js';
import { offsetCells, scalarCells, type Region, type Slot } from '../memory/layout.js';
import {
  Emitter,
  RegisterIndexError,
  wgslRuleOf,
  unravelSized,
  type Location,
  type ReduceRule,
} from './emitter.js';
import { generateMatmul } from './matmul.js';
import { generateSolver } from './solvers.js';
import { assemble, emptyKernel, type KernelSource } from './module.js';
import { generateWideReduction, isWideReduction } from './wide-reduction.js';
import { usesWindowed, windowedDeclarations } from './windowed-bindings.js';

export type { KernelSource } from './module.js';
export { isWideReduction, wideReductionLanes } from './wide-reduction.js';

/** Where the dispatch's nodes live: regions of the program's slots. */
export interface DispatchMemory {
  readonly slots: readonly Slot[];
  readonly regions: ReadonlyMap<number, Region>;
  /** One-element inputs read from the `scalars` uniform slot: node id → cell. */
  readonly scalars?: ReadonlyMap<number, number>;
  /** Slots longer than one binding: slot → its windows (see windowed-bindings.ts). */
  readonly windows?: ReadonlyMap<number, number>;
  /** Elements per window of a windowed slot. */
  readonly windowElements?: number;
}

export interface DispatchSource extends KernelSource {
  /**
   * The slots bound, in binding order (storage slots, then the scalars uniform if read). A slot
   * longer than one binding appears once per window, in order.
   */
  readonly bindings: readonly number[];
  /**
   * Present when a slot is bound as windows: for each binding, its window (-1: the buffer bound
   * whole), and the elements per window. Window j binds the slot's buffer from element
   * j·elements, for `elements` elements or to the buffer's end.
   */
  readonly windows?: { readonly of: readonly number[]; readonly elements: number };
  /**
   * The values of the kernel's `offsets` uniform (u32, where its arrays start), bound after the
   * slots when there are any.
   */
  readonly offsets: readonly number[];
  /** FLOPs of the dispatch's matmuls, 2·m·n·k per product (elementwise work not counted). */
  readonly matmulFlops: number;
  /**
   * Run only when the bool (stored as i32) at this region is `when`, decided on the device:
   * everything the dispatch stores is needed only then (compiler/kernels/gates.ts).
   */
  readonly gate?: DispatchGate;
  /**
   * Dispatches this kernel runs as, in order (a solver over ranges of its steps, see solvers.ts;
   * an elementwise kernel over long arrays one window at a time). Absent: one dispatch with
   * `offsets`. Compilation expands it into one dispatch each (compiler/program.ts), so plans never
   * hold it.
   */
  readonly passes?: readonly DispatchPass[];
}

/** One dispatch of a kernel run in passes: what differs from the kernel's own. */
export interface DispatchPass {
  /** The values of its offsets uniform. */
  readonly offsets: readonly number[];
  readonly invocations?: number;
  /** The window each binding binds (DispatchSource.windows.of). */
  readonly windows?: readonly number[];
}

/** Where a gated dispatch's condition lives, and the value it runs on. */
export interface DispatchGate extends Region {
  /** Tells conditions apart: two may use one region at different times. */
  readonly condition: number;
  readonly when: boolean;
}

/**
 * How a plan runs: 'vec4' and 'scalar' plans can share a dispatch with other plans of their
 * mode (each a segment of the invocation range); matmuls and wide reductions run alone.
 */
export type SegmentMode = 'vec4' | 'scalar' | 'alone';

export function segmentMode(plan: KernelPlan): SegmentMode {
  if (isEmpty(plan) || isMatmul(plan) || isWideReduction(plan) || isSolver(plan)) return 'alone';
  return vectorizable(plan) ? 'vec4' : 'scalar';
}

/**
 * Invocations from which an elementwise dispatch over the caller's arrays only (an optimizer's
 * update of parameters and state in place) writes where its arrays start, its sizes and its scalar
 * cells as literals rather than reading them from its offsets uniform. Such a kernel runs long
 * enough that sharing its pipeline saves less than the uniform costs it: on llvmpipe, AdamW over
 * 2^20 parameters spent 7 % less time in its kernel. Kernels over intermediates keep reading the
 * uniform even when large: repeated structures (Newton–Schulz iterations over 788² factors, layers
 * of one width) share one pipeline that way, and literals there took RING from 110 pipelines to
 * 284 (11.9 s of driver compile instead of 8.9).
 */
export const LITERAL_PLACEMENTS_FROM = 32768;

/** Invocations a segment of `plan` covers: one per vec4 or per element. */
export function segmentInvocations(plan: KernelPlan): number {
  const size = shapeSize(plan.roots[0].shape);
  return segmentMode(plan) === 'vec4' ? Math.ceil(size / 4) : size;
}

/**
 * A plan over zero elements: it computes nothing, and its index arithmetic (sizes of 0: divisions
 * by literal zeros, empty tiles) need not be valid WGSL, so it gets a kernel that does nothing.
 */
const isEmpty = (plan: KernelPlan) => plan.roots.every((r) => shapeSize(r.shape) === 0);

/** A dense solver's kernel (Cholesky, triangular solve): a sequential algorithm of its own. */
const isSolver = (plan: KernelPlan) => wgslRuleOf(plan.roots[0]).kind === 'sequential';

/** A matmul kernel: a matmul root, or a matmul with a fused elementwise epilogue. */
const isMatmul = (plan: KernelPlan) =>
  plan.matmul !== undefined || wgslRuleOf(plan.roots[0]).kind === 'matmul';

/**
 * WGSL for one dispatch running `segments` (kernel plans, each over its own iteration space)
 * back to back over one invocation range: horizontal fusion, e.g. the same optimizer update
 * over parameters of different shapes. Every node is read and written through its region.
 */
export function generateDispatch(
  segments: readonly KernelPlan[],
  memory: DispatchMemory,
  workgroupSize: number,
): DispatchSource {
  return emitDispatch(segments, memory, workgroupSize).source;
}

/**
 * In-place opportunities of a dispatch: inputs read by exactly one segment, and only at that
 * segment's own element. A root of that segment with the input's shape may overwrite it.
 * Dispatches that run alone offer none: a matmul (with a fused epilogue or not) reads its
 * operands at many elements, which other invocations' stores could already have overwritten.
 */
export function inPlaceCandidates(
  segments: readonly KernelPlan[],
): { segment: number; input: Node }[] {
  const mode = segmentMode(segments[0]);
  if (mode === 'alone') return [];
  const { emitter } = emitDispatch(segments, placeholderMemory(segments), 64);
  return segments.flatMap((s, k) =>
    s.inputs
      .filter(
        (n) =>
          !emitter.readElsewhere.has(n.id) &&
          emitter.readBy.get(n.id)?.size === 1 &&
          emitter.readBy.get(n.id)?.has(k),
      )
      .map((input) => ({ segment: k, input })),
  );
}

/** Every array of `segments` in a buffer of its own, for emitting code only to inspect it. */
function placeholderMemory(segments: readonly KernelPlan[]): DispatchMemory {
  const regions = new Map<number, Region>();
  let slot = 0;
  for (const s of segments)
    for (const n of [...s.inputs, ...s.roots])
      if (!regions.has(n.id)) regions.set(n.id, { slot: slot++, offset: 0 });
  const slots: Slot[] = Array.from({ length: slot }, (_, i) => ({
    kind: 'arena',
    storage: 'f32',
    length: i,
  }));
  return { slots, regions };
}

/**
 * Whether `plan` can be one kernel: false when a root reads an earlier root of it at another
 * element.
 */
export function fitsOneKernel(plan: KernelPlan): boolean {
  try {
    inPlaceCandidates([plan]);
    return true;
  } catch (error) {
    if (error instanceof RegisterIndexError) return false;
    throw error;
  }
}

function emitDispatch(
  segments: readonly KernelPlan[],
  memory: DispatchMemory,
  workgroupSize: number,
  windowPassesAllowed = true,
): { source: DispatchSource; emitter: Emitter } {
  const mode = segmentMode(segments[0]);
  const vector = mode === 'vec4';
  const regionOf = (n: Node) => memory.regions.get(n.id);
  // Bind each slot the dispatch reads or writes through a storage binding, once; read_write where a
  // root is stored.
  const scalarsSlot = memory.slots.findIndex((s) => s.kind === 'scalars');
  const touched = [
    ...new Set(
      segments.flatMap((s) => [...s.inputs, ...s.roots].map((n) => (regionOf(n) as Region).slot)),
    ),
  ]
    .filter((slot) => slot !== scalarsSlot)
    .sort((a, b) => a - b);
  const written = new Set(
    segments.flatMap((s) => s.roots.map((r) => (regionOf(r) as Region).slot)),
  );
  // Bindings are named in the order the kernel first locates them, not by slot number, so kernels
  // of one structure over different buffers are one WGSL text (one pipeline).
  const names = new Map<number, string>();
  const name = (slot: number) => {
    let n = names.get(slot);
    if (n === undefined) names.set(slot, (n = `b${names.size}`));
    return n;
  };
  let bindings: number[] = [];
  let windowOf: number[] = [];
  // An elementwise kernel over arrays longer than a binding runs one window at a time instead: each
  // pass binds the same window of every such array as a whole binding (see windowPasses).
  const byWindow =
    windowPassesAllowed && mode !== 'alone' && segments.length === 1
      ? windowPasses(segments[0], memory)
      : undefined;
  const windowsOf = (slot: number) =>
    byWindow === undefined ? memory.windows?.get(slot) : undefined;
  // Declares the bindings written or named by the code emitted so far (one-element inputs read from
  // the scalars uniform leave their storage slot unbound), in naming order: one element type per
  // binding, vec4 for those in `vec4`, a slot longer than one binding as its windows and their
  // helpers; then the scalars uniform if read and the offsets uniform.
  const declare = (vec4: ReadonlySet<string>) => {
    const code = e.lines().join('\n');
    const named = (id: string) => new RegExp(`\\b${id}\\[`).test(code) || usesWindowed(code, id);
    const storage = [...names.keys()].filter((slot) => written.has(slot) || named(name(slot)));
    bindings = [];
    windowOf = [];
    const bind = (slot: number, window: number) => {
      bindings.push(slot);
      windowOf.push(window);
    };
    const decls: string[] = [];
    for (const slot of storage) {
      const t = memory.slots[slot].storage;
      const windows = windowsOf(slot);
      if (windows !== undefined) {
        decls.push(
          ...windowedDeclarations({
            name: name(slot),
            first: bindings.length,
            windows,
            windowElements: memory.windowElements as number,
            storage: t,
            vec4: vec4.has(name(slot)),
            writable: written.has(slot),
          }),
        );
        for (let j = 0; j < windows; j++) bind(slot, j);
        continue;
      }
      decls.push(
        `@group(0) @binding(${bindings.length}) var<storage, ` +
          `${written.has(slot) ? 'read_write' : 'read'}> ${name(slot)}: ` +
          `array<${vec4.has(name(slot)) ? `vec4<${t}>` : t}>;`,
      );
      bind(slot, -1);
    }
    if (scalarsSlot >= 0 && named('scalars')) {
      decls.push(
        `@group(0) @binding(${bindings.length}) var<uniform> scalars: array<vec4<u32>, ` +
          `${scalarCells((memory.slots[scalarsSlot] as { sources: readonly Region[] }).sources.length)}>;`,
      );
      bind(scalarsSlot, -1);
    }
    if (e.offsets.length === 0) return decls;
    return [
      ...decls,
      `@group(0) @binding(${bindings.length}) var<uniform> offsets: ` +
        `array<vec4<u32>, ${offsetCells(e.offsets.length)}>;`,
    ];
  };
  const at = (n: Node): Location | undefined => {
    const region = regionOf(n);
    if (region === undefined) return undefined;
    const scalar = memory.scalars?.get(n.id);
    // A value computed on the host lives in the scalars uniform only.
    if (region.slot === scalarsSlot) return { name: 'scalars', offset: 0, scalar };
    const windowed = windowsOf(region.slot) !== undefined ? { windowed: true } : {};
    return { name: name(region.slot), offset: region.offset, scalar, ...windowed };
  };
  const inputs = new Set(segments.flatMap((s) => s.inputs.map((n) => n.id)));
  const e = new Emitter((n) => (inputs.has(n.id) ? at(n) : undefined));
  const done = (source: KernelSource) => ({
    source: {
      ...source,
      bindings,
      ...(windowOf.some((j) => j >= 0)
        ? { windows: { of: windowOf, elements: memory.windowElements as number } }
        : {}),
      offsets: e.offsets,
      matmulFlops: matmulFlops(segments),
    },
    emitter: e,
  });
  if (mode === 'alone') {
    const plan = segments[0];
    if (isEmpty(plan)) return done(emptyKernel());
    const outs = plan.roots.map((r) => at(r) as Location);
    if (isSolver(plan)) return done(generateSolver(plan, e, outs[0], declare, workgroupSize));
    return done(
      isMatmul(plan)
        ? generateMatmul(plan, e, outs, declare, workgroupSize)
        : generateWideReduction(plan, e, outs[0], declare, workgroupSize),
    );
  }
  e.vector = vector;
  // A vector dispatch binds every array as vec4s.
  if (vector) e.vec4Bindings = new Set(touched.map((_, i) => `b${i}`));
  const counts = segments.map((s) =>
    vector ? Math.ceil(shapeSize(s.roots[0].shape) / 4) : shapeSize(s.roots[0].shape),
  );
  e.literalPlacements =
    byWindow === undefined &&
    counts.reduce((a, b) => a + b, 0) >= LITERAL_PLACEMENTS_FROM &&
    touched.every((slot) => memory.slots[slot].kind === 'input');
  // Where segments end is read from the offsets uniform, as are the segments' own sizes (their
  // unravelled index, reduction bounds, strides): one update over parameters of other sizes
  // (another layer, another model) is the same pipeline.
  const end = (value: number, k: number) => `i32(${e.dimension(`segment ${k} end`, value)})`;
  let start = 0;
  // A window pass's first element (or vec4): its invocations count from there.
  const baseCell = e.offsets.length;
  const first = () => e.bind(`flat + i32(${e.dimension('window base', 0)})`);
  segments.forEach((plan, k) => {
    e.segment = k;
    e.registers.clear();
    const body = e.block(() => {
      const local =
        k > 0 ? e.bind(`flat - ${end(start, k - 1)}`) : byWindow === undefined ? 'flat' : first();
      // Unsigned vec4 indices spare the bounds checks a sign test costs.
      if (vector) e.vflat = e.bind(`u32(${local})`);
      emitSegment(e, plan, local, at);
    });
    start += counts[k];
    if (segments.length === 1) body.forEach((l) => e.line(l));
    else {
      e.line(
        `${k === 0 ? '' : '} else '}${k === segments.length - 1 ? '{' : `if (flat < ${end(start, k)}) {`}`,
      );
      body.forEach((l) => e.line(`  ${l}`));
      if (k === segments.length - 1) e.line('}');
    }
  });
  // A window pass needs every long array read at the invocation's own element only.
  if (byWindow !== undefined && byWindow.nodes.some((id) => e.readElsewhere.has(id)))
    return emitDispatch(segments, memory, workgroupSize, false);
  const boundCell = e.offsets.length; // a window pass's invocations (the single segment's end)
  const bound = end(start, segments.length - 1); // before `declare` sizes the offsets uniform
  const result = done(
    assemble(
      declare(vector ? new Set(touched.map(name)) : new Set()),
      e.lines(),
      start,
      workgroupSize,
      vector ? 'vec4<f32>' : 'f32',
      bound,
    ),
  );
  if (byWindow === undefined) return result;
  // Pass j covers elements [j·W, (j+1)·W): its invocations start at j·W (in the segment's unit),
  // and the long arrays, bound from their window j, start at −j·W (u32 arithmetic wraps).
  const elements = memory.windowElements as number;
  const unit = vector ? 4 : 1;
  const placements = [...byWindow.slots].flatMap((slot) => e.placementsOf(name(slot)));
  const passes = Array.from({ length: byWindow.windows }, (_, j) => {
    const invocations = Math.min(elements / unit, start - (j * elements) / unit);
    const offsets = [...e.offsets];
    offsets[boundCell] = invocations;
    offsets[baseCell] = (j * elements) / unit;
    for (const p of placements) offsets[p.index] = (2 ** 32 - (j * elements) / p.unit) % 2 ** 32;
    const windows = bindings.map((slot) => (byWindow.slots.has(slot) ? j : -1));
    return { offsets, invocations, windows };
  });
  return { ...result, source: { ...result.source, passes } };
}

/**
 * How an elementwise segment over arrays longer than a binding runs window by window: when it
 * reads and writes each such array at the invocation's own element only (checked as it is
 * emitted), the j-th window of each (all of the root's length, alone in their buffers) holds
 * everything the j-th pass touches, and a pass binds one window of each as a whole binding — the
 * same kernel as over short arrays, one binding per array however long. Undefined when the
 * segment's long arrays do not line up so (then it reads them through the window helpers).
 */
function windowPasses(
  plan: KernelPlan,
  memory: DispatchMemory,
): { windows: number; slots: ReadonlySet<number>; nodes: number[] } | undefined {
  const size = shapeSize(plan.roots[0].shape);
  const slots = new Set<number>();
  const nodes: number[] = [];
  let windows: number | undefined;
  for (const n of [...plan.inputs, ...plan.roots]) {
    const region = memory.regions.get(n.id) as Region;
    const count = memory.windows?.get(region.slot);
    if (count === undefined) continue;
    if (region.offset !== 0 || shapeSize(n.shape) !== size || (windows ?? count) !== count)
      return undefined;
    windows = count;
    slots.add(region.slot);
    nodes.push(n.id);
  }
  return windows === undefined ? undefined : { windows, slots, nodes };
}

/**
 * Whether `plan`, alone in a dispatch, would run window by window over its arrays longer than a
 * binding, `windowed` (node ids; see windowPasses): an elementwise plan reading and writing each
 * of them, all of its size, at the invocation's own element only.
 */
export function runsByWindow(plan: KernelPlan, windowed: ReadonlySet<number>): boolean {
  const mode = segmentMode(plan);
  if (mode === 'alone') return false;
  const size = shapeSize(plan.roots[0].shape);
  const nodes = [...plan.inputs, ...plan.roots].filter((n) => windowed.has(n.id));
  if (nodes.some((n) => shapeSize(n.shape) !== size)) return false;
  if (mode === 'vec4') return true; // a vector segment reads buffers at its own vec4 only
  try {
    const { emitter } = emitDispatch([plan], placeholderMemory([plan]), 64);
    return nodes.every((n) => !emitter.readElsewhere.has(n.id));
  } catch (error) {
    if (error instanceof RegisterIndexError) return false;
    throw error;
  }
}

/** 2·m·n·k for each product the segments compute (batched: times the batch). */
function matmulFlops(segments: readonly KernelPlan[]): number {
  return segments.reduce((total, plan) => {
    if (!isMatmul(plan)) return total;
    const product = plan.matmul ?? plan.roots[0];
    const a = product.inputs[0];
    return total + 2 * shapeSize(product.shape) * a.shape[a.shape.length - 1];
  }, 0);
}

/**
 * The statements of one segment: its roots at the element (or vec4) `local`, stored to their
 * regions.
 */
function emitSegment(
  e: Emitter,
  plan: KernelPlan,
  local: string,
  at: (n: Node) => Location | undefined,
): void {
  // Vector segments read buffers at their own vec4 only; the index serves broadcasts of uniform
  // values.
  const index = e.vector
    ? plan.roots[0].shape.map(() => '0i')
    : unravelSized(e, local, plan.roots[0].shape, `segment ${e.segment}`);
  e.ownIndex = index;
  const stores = plan.roots.map((r) => {
    const rule = wgslRuleOf(r);
    let result: string;
    if (rule.kind === 'reduce') {
      result = reduction(e, r, index, rule);
      e.registers.set(r.id, { name: result, index }); // later roots read it from the register
    } else result = e.value(r, index); // shared subexpressions are memoized across the roots
    const target = at(r) as Location;
    const value = r.dtype === 'bool' ? `select(0i, 1i, ${result})` : result;
    return e.vector ? e.storeOwnVec4(target, value) : e.storeElement(target, local, value);
  });
  stores.forEach((s) => e.line(s));
}

/**
 * Whether an elementwise plan can run on vec4s (4 elements per invocation, as hand-written kernels
 * do): f32 buffers of the roots' size read only at the invocation's own element (directly or
 * reshaped), and nothing inlined that depends on the index or converts types (iota, casts, other
 * movement over buffers: broadcast constants are fine). Sizes need not divide by 4: regions are
 * padded.
 */
function vectorizable(plan: KernelPlan): boolean {
  const root = plan.roots[0];
  const size = shapeSize(root.shape);
  if (size === 0) return false;
  const sameShape = (n: Node) =>
    n.shape.length === root.shape.length && n.shape.every((d, i) => d === root.shape[i]);
  if (
    !plan.roots.every(
      (r) =>
        r.dtype === 'f32' &&
        sameShape(r) &&
        wgslRuleOf(r).kind !== 'reduce' &&
        wgslRuleOf(r).kind !== 'matmul',
    )
  )
    return false;
  // Same size, not only same shape: a reshape keeps the row-major order, so vec4 i of the buffer is
  // vec4 i of the root.
  if (
    !plan.inputs.every(
      (n) => n.dtype === 'f32' && (shapeSize(n.shape) === size || shapeSize(n.shape) === 1),
    )
  )
    return false;
  const buffers = new Set(plan.inputs.map((n) => n.id));
  const seen = new Set<number>();
  const ok = (node: Node): boolean => {
    if (buffers.has(node.id) || seen.has(node.id)) return true;
    seen.add(node.id);
    const kind = wgslRuleOf(node).kind;
    // isFinite's bit test is written for f32, not vec4 (and yields bool)
    if (node.op === 'cast' || node.op === 'iota' || node.op === 'isFinite' || node.dtype === 'i32')
      return false;
    if (node.op === 'reshape') return ok(node.inputs[0]);
    // zeros outside: not uniform even over a uniform value
    if (node.op === 'pad' || node.op === 'windows') return false;
    if (kind === 'gather') return false; // reads its table at the ids' values, not its own vec4
    if (kind === 'index') return uniformValue(node.inputs[0], buffers);
    return node.inputs.every(ok);
  };
  return plan.roots.every(ok);
}

/**
 * True when `node` has one value everywhere: a splat constant, a one-element buffer, movement of
 * one (not pad), or arithmetic on one-element values (e.g. 1 − β₁ᵗ from hyperparameters).
 */
function uniformValue(node: Node, buffers: ReadonlySet<number>): boolean {
  if (buffers.has(node.id)) return shapeSize(node.shape) === 1;
  if (node.op === 'constant') return 'value' in (node.attrs as object);
  const kind = wgslRuleOf(node).kind;
  if (kind === 'index')
    return node.op !== 'pad' && node.op !== 'windows' && uniformValue(node.inputs[0], buffers);
  if (kind === 'expr')
    return (
      shapeSize(node.shape) === 1 &&
      node.op !== 'cast' &&
      node.inputs.every((n) => uniformValue(n, buffers))
    );
  return false;
}

/**
 * Sequential accumulation over the reduced axes (the producer expression is inlined per element).
 */
function reduction(e: Emitter, root: Node, outIndex: readonly string[], rule: ReduceRule): string {
  const { axes } = (root as Node<'reduceSum'>).attrs;
  const input = root.inputs[0];
  const acc = e.fresh('acc');
  e.line(`var ${acc} = ${rule.init(root)};`);
  const loops = axes.map(() => e.fresh('r'));
  let k = 0;
  const inIndex = input.shape.map((_, i) =>
    axes.includes(i) ? loops[axes.indexOf(i)] : outIndex[k++],
  );
  const body = e.block(() => e.line(`${acc} = ${rule.combine(acc, e.value(input, inIndex))};`));
  let lines = body;
  for (let j = axes.length - 1; j >= 0; j--) {
    const v = loops[j];
    lines = [
      `for (var ${v} = 0i; ${v} < i32(${e.dimension(`${v} end`, input.shape[axes[j]])}); ${v}++) {`,
      ...lines.map((l) => `  ${l}`),
      '}',
    ];
  }
  lines.forEach((l) => e.line(l));
  return acc;
}
