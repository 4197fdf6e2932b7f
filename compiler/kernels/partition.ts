import { GrngError } from '../errors.js';
import { topoSort, type Node } from '../ir/node.js';
import { opTable } from '../ops/table.js';

/**
 * One kernel: computes its `roots` (each materialized in a buffer) by inlining every
 * non-materialized node between them and its `inputs` (the materialized nodes it reads).
 * Several roots share one iteration space and one pass over the inputs (multi-output kernel).
 */
export interface KernelPlan {
  readonly roots: readonly Node[];
  readonly inputs: readonly Node[];
}

export interface PartitionOptions {
  /** false: every non-leaf node is its own kernel (the unfused reference schedule). */
  readonly fuse: boolean;
  /** Storage buffers a kernel may read (the stage limit minus the output binding). */
  readonly maxInputs: number;
}

/** Nodes that live in buffers without a kernel: graph inputs and data constants. */
export function isExternal(node: Node): boolean {
  return node.op === 'input' || (node.op === 'constant' && 'data' in (node.attrs as object));
}

const kindOf = (node: Node) => opTable[node.op].wgsl.kind;

/**
 * Splits the graph of `outputs` into kernels. Materialized: reductions and matmuls (their
 * own kernels), outputs, and matmul operands that are more than index arithmetic over a
 * buffer (they would be recomputed k times in the inner loop). Everything else — elementwise
 * chains, broadcasts, transposes, slices, pads — is inlined into the kernels that read it.
 */
export function partition(outputs: readonly Node[], options: PartitionOptions): KernelPlan[] {
  const order = topoSort(outputs);
  const materialized = new Set<number>();
  for (const node of order) {
    if (isExternal(node)) continue;
    const kind = kindOf(node);
    if (!options.fuse && kind !== 'leaf') materialized.add(node.id);
    if (kind === 'reduce' || kind === 'matmul') materialized.add(node.id);
    if (kind === 'matmul') for (const operand of node.inputs) if (!isIndexOnly(operand, materialized)) materialized.add(operand.id);
  }
  // Outputs are stored, but consumers of an elementwise output recompute it in registers rather
  // than read it back: that keeps θ' reading m' and v' from splitting an Adam step in three.
  const stored = new Set(materialized);
  for (const out of outputs) if (!isExternal(out)) stored.add(out.id);

  // Consumers first, so nodes materialized to fit a kernel's buffer limit get checked too.
  for (let i = order.length - 1; i >= 0; i--) {
    if (stored.has(order[i].id) || materialized.has(order[i].id)) splitToFit(order[i], materialized, options.maxInputs);
  }
  const single = order
    .filter((n) => stored.has(n.id) || materialized.has(n.id))
    .map((root) => ({ roots: [root], inputs: inputsOf(root, materialized) }));
  return options.fuse ? mergeSameSpace(single, options.maxInputs + 1) : single;
}

/**
 * Merges independent elementwise kernels over the same shape into multi-output kernels (e.g.
 * θ, m and v of an Adam step: one pass over the inputs instead of three). A kernel joins the
 * first earlier group of its shape when it reads nothing computed at or after that group's
 * position (so the merged kernel, run there, has its inputs ready and nothing between reads
 * its outputs too early) and the group stays within the storage-buffer limit.
 */
function mergeSameSpace(kernels: readonly KernelPlan[], maxBuffers: number): KernelPlan[] {
  const position = new Map<number, number>(); // root id → index of the group that computes it
  const groups: { roots: Node[]; inputs: Map<number, Node>; at: number }[] = [];
  for (const k of kernels) {
    const root = k.roots[0];
    const readsAt = Math.max(-1, ...k.inputs.map((n) => position.get(n.id) ?? -1));
    const target =
      kindOf(root) === 'reduce' || kindOf(root) === 'matmul'
        ? undefined
        : groups.find(
            (g, i) =>
              i > readsAt &&
              kindOf(g.roots[0]) !== 'reduce' &&
              kindOf(g.roots[0]) !== 'matmul' &&
              g.roots[0].shape.length === root.shape.length &&
              g.roots[0].shape.every((d, j) => d === root.shape[j]) &&
              new Set([...g.inputs.keys(), ...k.inputs.map((n) => n.id)]).size + g.roots.length + 1 <= maxBuffers,
          );
    if (target === undefined) {
      groups.push({ roots: [root], inputs: new Map(k.inputs.map((n) => [n.id, n])), at: groups.length });
      position.set(root.id, groups.length - 1);
    } else {
      target.roots.push(root);
      for (const n of k.inputs) target.inputs.set(n.id, n);
      position.set(root.id, target.at);
    }
  }
  return groups.map((g) => ({ roots: g.roots, inputs: [...g.inputs.values()].sort((a, b) => a.id - b.id) }));
}

/** True when `node` is movement over a buffer-backed node (index arithmetic only). */
function isIndexOnly(node: Node, materialized: ReadonlySet<number>): boolean {
  for (let n = node; ; n = n.inputs[0]) {
    if (isExternal(n) || materialized.has(n.id)) return true;
    if (kindOf(n) !== 'index') return false;
  }
}

/** The buffers a kernel rooted at `root` reads. */
function inputsOf(root: Node, materialized: ReadonlySet<number>): Node[] {
  const found = new Map<number, Node>();
  const seen = new Set<number>();
  const stack = [...root.inputs];
  while (stack.length > 0) {
    const n = stack.pop() as Node;
    if (seen.has(n.id)) continue;
    seen.add(n.id);
    if (isExternal(n) || materialized.has(n.id)) found.set(n.id, n);
    else stack.push(...n.inputs);
  }
  return [...found.values()].sort((a, b) => a.id - b.id);
}

/**
 * Materializes inlined subexpressions of the kernel at `root` (largest first) until it reads no more than `maxInputs` buffers (the storage-buffer limit per stage).
 */
function splitToFit(root: Node, materialized: Set<number>, maxInputs: number): void {
  for (;;) {
    const inputs = inputsOf(root, materialized);
    if (inputs.length <= maxInputs) return;
    const inlined = topoSort(root.inputs).filter((n) => !isExternal(n) && !materialized.has(n.id) && kindOf(n) !== 'leaf');
    const candidates = inlined
      .map((n) => ({ n, reads: inputsOf(n, materialized).length }))
      .filter((c) => c.reads > 1 && c.reads <= maxInputs)
      .sort((a, b) => b.reads - a.reads);
    if (candidates.length === 0) {
      throw new GrngError('compile', `a ${root.op} kernel needs ${inputs.length} input buffers but the device allows ${maxInputs}; no split was found`);
    }
    materialized.add(candidates[0].n.id);
  }
}
