import { GrngError } from '../errors.js';
import { topoSort, type Node } from '../ir/node.js';
import { opTable } from '../ops/table.js';

/**
 * One kernel: computes `root` (materialized in a buffer) by inlining every non-materialized
 * node between it and its `inputs` (the materialized nodes it reads).
 */
export interface KernelPlan {
  readonly root: Node;
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
  for (const out of outputs) if (!isExternal(out)) materialized.add(out.id);

  // Consumers first, so nodes materialized to fit a kernel's buffer limit get checked too.
  for (let i = order.length - 1; i >= 0; i--) {
    if (materialized.has(order[i].id)) splitToFit(order[i], materialized, options.maxInputs);
  }
  return order.filter((n) => materialized.has(n.id)).map((root) => ({ root, inputs: inputsOf(root, materialized) }));
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
