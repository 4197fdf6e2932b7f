import { GrngError } from '../../core/errors.js';
import { topoSort, type Node } from '../../core/ir/node.js';
import { shapeSize } from '../../core/ir/shape.js';
import { opTable } from '../../core/ops/table.js';
import { bindingsOfKeys, windowsOfKey, type BindingKey } from '../memory/plan-memory.js';

/**
 * One kernel: computes its `roots` (each materialized in a buffer) by inlining every
 * non-materialized node between them and its `inputs` (the materialized nodes it reads).
 * Several roots share one iteration space and one pass over the inputs (multi-output kernel).
 */
export interface KernelPlan {
  readonly roots: readonly Node[];
  readonly inputs: readonly Node[];
  /**
   * A matmul computed inside this kernel with a fused epilogue (see fuse-epilogues.ts): the last
   * root is an elementwise epilogue of it, evaluated per output element from the accumulators;
   * the matmul is the first root when its product is stored too (read elsewhere or returned).
   * `inputs` holds the matmul's operands' buffers beside the epilogue's.
   */
  readonly matmul?: Node;
}

export interface PartitionOptions {
  /** false: every non-leaf node is its own kernel (the unfused reference schedule). */
  readonly fuse: boolean;
  /** Storage buffers a kernel may bind (maxStorageBuffersPerShaderStage). */
  readonly maxBuffers: number;
  /** The buffer each node will be bound through (packed arrays share one). */
  readonly bindingKey: BindingKey;
  /** Nodes to store whatever their kind (conditions that gate kernels, see gates.ts). */
  readonly materialize?: ReadonlySet<number>;
  /**
   * Whether a kernel alone in its dispatch runs one window at a time over its arrays longer than a
   * binding, `windowed` (node ids; binding one window of each: see wgsl/kernel.ts, windowPasses).
   * Default: never.
   */
  readonly byWindow?: (plan: KernelPlan, windowed: ReadonlySet<number>) => boolean;
}

/** Nodes that live in buffers without a kernel: graph inputs and data constants. */
export function isExternal(node: Node): boolean {
  return node.op === 'input' || (node.op === 'constant' && 'data' in (node.attrs as object));
}

const kindOf = (node: Node) => opTable[node.op].wgsl.kind;

/**
 * Splits the graph of `outputs` into kernels. Materialized: reductions, matmuls and solvers
 * (their own kernels), outputs, and operands of matmuls and solvers that are more than index
 * arithmetic over a buffer (they would be recomputed in the inner loop; a gather is not index
 * arithmetic: its rows are read at the ids' values, so a gathered operand is materialized).
 * Everything else — elementwise chains, broadcasts, transposes, slices, pads, gathers — is
 * inlined into the kernels that read it. isFinite's operand is stored too (see below).
 */
export function partition(outputs: readonly Node[], options: PartitionOptions): KernelPlan[] {
  const order = topoSort(outputs);
  const materialized = new Set<number>();
  const checked = new Set<number>();
  for (const node of order) {
    if (isExternal(node)) continue;
    const kind = kindOf(node);
    if (!options.fuse && kind !== 'leaf') materialized.add(node.id);
    if (
      kind === 'reduce' ||
      kind === 'matmul' ||
      kind === 'sequential' ||
      options.materialize?.has(node.id)
    )
      materialized.add(node.id);
    // A solver reads its operands at many elements, many times: stored, or views of stored ones.
    if (kind === 'sequential')
      for (const operand of node.inputs)
        if (!isIndexOnly(operand, materialized)) materialized.add(operand.id);
    // WGSL lets a driver assume values are finite, so an ∞ or NaN computed in the same kernel as
    // the test may be optimized away (llvmpipe does); bits read from memory are what they are. The
    // operand is stored by its own kernel and read back by isFinite, while its other consumers
    // still compute it in registers (an Adam step stays one pass).
    if (node.op === 'isFinite' && !isIndexOnly(node.inputs[0], materialized))
      checked.add(node.inputs[0].id);
    if (kind === 'matmul') {
      // Computed operands first: then a view of one of them (aᵀa with a computed, a Gram matrix)
      // reads it where it is stored instead of being copied in its own layout.
      const computed = (n: Node) => !isExternal(n) && kindOf(n) !== 'index';
      for (const operand of node.inputs) if (computed(operand)) materialized.add(operand.id);
      for (const operand of node.inputs)
        if (!isIndexOnly(operand, materialized)) materialized.add(operand.id);
    }
  }
  // A checked value whose recomputation would read several large computed values (a select over
  // a loop's last iterates) is read by every consumer where it is stored: recomputed, it would
  // hold all of them until its last consumer (a guard's final select, after every check) runs.
  for (const node of order) {
    if (!checked.has(node.id)) continue;
    const held = inputsOf(node, materialized, checked).filter(
      (x) => !isExternal(x) && shapeSize(x.shape) >= LARGE_INTERMEDIATE,
    );
    if (held.length > 1) {
      checked.delete(node.id);
      materialized.add(node.id);
    }
  }
  // Outputs are stored, but consumers of an elementwise output recompute it in registers rather
  // than read it back: that keeps θ' reading m' and v' from splitting an Adam step in three.
  const stored = new Set([...materialized, ...checked]);
  for (const out of outputs) if (!isExternal(out)) stored.add(out.id);

  // Consumers first, so nodes materialized to fit a kernel's buffer limit get checked too.
  for (let i = order.length - 1; i >= 0; i--) {
    if (stored.has(order[i].id) || materialized.has(order[i].id)) {
      holdFewIntermediates(order[i], materialized, checked);
      splitToFit(order[i], materialized, checked, options);
    }
  }
  return order
    .filter((n) => stored.has(n.id) || materialized.has(n.id))
    .map((root) => ({ roots: [root], inputs: inputsOf(root, materialized, checked) }));
}

/**
 * How many bindings a kernel needs: one per distinct buffer among what it reads and writes, one per
 * window for a buffer longer than a binding — unless `byWindow` says the kernel runs one window at
 * a time (then one per buffer).
 */
export function bindingCount(
  plans: readonly KernelPlan[],
  key: BindingKey,
  byWindow?: (windowed: ReadonlySet<number>) => boolean,
): number {
  const nodes = plans.flatMap((p) => [...p.inputs, ...p.roots]);
  const keys = nodes.map(key);
  const counted = bindingsOfKeys(keys);
  const distinct = new Set(keys).size;
  if (counted === distinct || byWindow === undefined) return counted;
  // Window passes need every long array to be as many windows (asked only then: it costs an
  // emission).
  const long = keys.flatMap((k, i) => (windowsOfKey(k) > 1 ? [i] : []));
  const windows = new Set(long.map((i) => windowsOfKey(keys[i])));
  const windowed = new Set(long.map((i) => nodes[i].id));
  return windows.size === 1 && byWindow(windowed) ? distinct : counted;
}

/** True when `node` is movement over a buffer-backed node (index arithmetic only). */
function isIndexOnly(node: Node, materialized: ReadonlySet<number>): boolean {
  for (let n = node; ; n = n.inputs[0]) {
    if (isExternal(n) || materialized.has(n.id)) return true;
    if (kindOf(n) !== 'index') return false;
  }
}

/** The buffers a kernel rooted at `root` reads (isFinite reads its `checked` operand stored). */
function inputsOf(
  root: Node,
  materialized: ReadonlySet<number>,
  checked: ReadonlySet<number>,
): Node[] {
  const found = new Map<number, Node>();
  const seen = new Set<number>();
  const stack = [...root.inputs];
  while (stack.length > 0) {
    const n = stack.pop() as Node;
    if (seen.has(n.id)) continue;
    seen.add(n.id);
    if (isExternal(n) || materialized.has(n.id)) found.set(n.id, n);
    else if (n.op === 'isFinite' && checked.has(n.inputs[0].id))
      found.set(n.inputs[0].id, n.inputs[0]);
    else stack.push(...n.inputs);
  }
  return [...found.values()].sort((a, b) => a.id - b.id);
}

/** Intermediates of at least this many elements count as large (see holdFewIntermediates). */
const LARGE_INTERMEDIATE = 4096;
/** The most large computed values one fused kernel may read. */
const MAX_HELD = 6;

/**
 * Materializes inlined subexpressions of the kernel at `root` until it reads at most MAX_HELD
 * large computed values. Each value a kernel reads stays in memory until it runs: a chain of
 * selects over a loop's iterates (`where(done, xₖ, …)`, as a guarded Newton–Schulz keeps its
 * best iterate) inlined into one final kernel would hold every iterate to the end; stored every
 * few links, it holds a few. Leaves (parameters, state) are held by the caller anyway.
 */
function holdFewIntermediates(
  root: Node,
  materialized: Set<number>,
  checked: ReadonlySet<number>,
): void {
  const held = (n: Node) =>
    inputsOf(n, materialized, checked).filter(
      (x) => !isExternal(x) && shapeSize(x.shape) >= LARGE_INTERMEDIATE,
    ).length;
  for (;;) {
    if (held(root) <= MAX_HELD) return;
    const inlined = topoSort(root.inputs).filter(
      (n) => !isExternal(n) && !materialized.has(n.id) && kindOf(n) !== 'leaf',
    );
    // The subexpression holding the most (within the bound) goes first: fewest new stores.
    const best = inlined
      .map((n) => ({ n, holds: held(n) }))
      .filter((c) => c.holds > 1 && c.holds <= MAX_HELD)
      .sort((a, b) => b.holds - a.holds)[0];
    if (best === undefined) return;
    materialized.add(best.n.id);
  }
}

/**
 * Materializes inlined subexpressions of the kernel at `root` (those binding the most buffers
 * first) until it binds no more than the stage allows. A materialized value lives in the
 * arena, so reading it costs at most the one binding the arena needs.
 */
function splitToFit(
  root: Node,
  materialized: Set<number>,
  checked: ReadonlySet<number>,
  { maxBuffers, bindingKey, byWindow }: PartitionOptions,
): void {
  const bindings = (n: Node) => {
    const plan = { roots: [n], inputs: inputsOf(n, materialized, checked) };
    return bindingCount([plan], bindingKey, (windowed) => byWindow?.(plan, windowed) ?? false);
  };
  for (;;) {
    const needed = bindings(root);
    if (needed <= maxBuffers) return;
    const inlined = topoSort(root.inputs).filter(
      (n) => !isExternal(n) && !materialized.has(n.id) && kindOf(n) !== 'leaf',
    );
    const candidates = inlined
      .map((n) => ({ n, reads: inputsOf(n, materialized, checked).length, binds: bindings(n) }))
      .filter((c) => c.reads > 1 && c.binds <= maxBuffers)
      .sort((a, b) => b.binds - a.binds || b.reads - a.reads);
    if (candidates.length === 0) {
      throw new GrngError(
        'compile',
        `a ${root.op} kernel binds ${needed} storage buffers but the device ` +
          `allows ${maxBuffers}; no split was found (an array longer than ` +
          `maxStorageBufferBindingSize is bound as one buffer per window of that size: split it ` +
          `into smaller arrays, or use an adapter with more storage buffers or larger bindings)`,
      );
    }
    materialized.add(candidates[0].n.id);
  }
}
