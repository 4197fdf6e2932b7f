import type { Node } from '../../core/ir/node.js';
import { shapesEqual } from '../../core/ir/shape.js';
import type { BindingKey } from '../memory/plan-memory.js';
import { opTable } from '../../core/ops/table.js';
import { bindingCount, type KernelPlan } from './partition.js';

export interface EpilogueOptions {
  readonly maxBuffers: number;
  readonly bindingKey: BindingKey;
  /**
   * Whether two nodes are needed under the same condition (gates.ts): a product gated on one
   * condition fused into an epilogue needed under another would run whenever the epilogue does.
   */
  readonly sameGate?: (a: Node, b: Node) => boolean;
}

const kindOf = (node: Node) => opTable[node.op].wgsl.kind;

/**
 * Moves each matmul into the kernel of an elementwise consumer (a matmul with a fused epilogue:
 * relu(x·w + b) is one dispatch). A matmul plan M joins a plan P that reads it when P has one
 * root of M's shape and every node between M and that root is elementwise over M's shape, so
 * the epilogue reads the product only at the output element being stored, straight from the
 * accumulator. P's other inputs may be anything (broadcast biases, scalars, other matrices), as
 * long as the fused kernel stays within the binding limit. When the product is returned or read
 * by other plans too, the fused kernel stores it beside the epilogue (two roots: relu(x·w + b)
 * and x·w, which relu's derivative reads), unless the epilogue is itself returned; otherwise the
 * product is never stored.
 */
export function fuseMatmulEpilogues(
  plans: readonly KernelPlan[],
  outputs: readonly Node[],
  options: EpilogueOptions,
): KernelPlan[] {
  const returned = new Set(outputs.map((n) => n.id));
  let list = [...plans];
  for (const p of plans) {
    if (p.roots.length !== 1 || p.matmul !== undefined || kindOf(p.roots[0]) !== 'expr') continue;
    list = fuseInto(list, p, returned, options) ?? list;
  }
  return list;
}

/**
 * `list` with a matmul that `p` reads fused into it, or undefined when none can be. The fused
 * plan runs where `p` ran when every other reader of the product comes after `p` (the matmul
 * moves later: its operands stay live until then); else where the matmul ran, when all else
 * `p` reads is ready by then (`p` moves earlier: its readers all come after it anyway).
 */
function fuseInto(
  list: readonly KernelPlan[],
  p: KernelPlan,
  returned: ReadonlySet<number>,
  { maxBuffers, bindingKey, sameGate }: EpilogueOptions,
): KernelPlan[] | undefined {
  const position = new Map<number, number>(); // root id → index in list
  list.forEach((q, i) => q.roots.forEach((r) => position.set(r.id, i)));
  const ip = list.indexOf(p);
  const root = p.roots[0];
  for (const m of p.inputs) {
    const im = position.get(m.id);
    if (im === undefined || kindOf(m) !== 'matmul' || list[im].matmul !== undefined) continue;
    if (!shapesEqual(m.shape, root.shape) || !readsAtOwnElement(p, m) || computesIntegers(p))
      continue;
    if (sameGate !== undefined && !sameGate(m, root)) continue;
    const others = list.flatMap((q, i) =>
      q !== p && q.inputs.some((n) => n.id === m.id) ? [i] : [],
    );
    const stored = returned.has(m.id) || others.length > 0;
    // A returned root beside a stored product would leave the dispatch that updates its
    // siblings (θ, m, v of an optimizer step) and lose its in-place store, saving nothing.
    if (stored && returned.has(root.id)) continue;
    const inputs = new Map(
      [...list[im].inputs, ...p.inputs.filter((n) => n.id !== m.id)].map((n) => [n.id, n] as const),
    );
    const fused: KernelPlan = {
      roots: stored ? [m, root] : [root],
      inputs: [...inputs.values()].sort((a, b) => a.id - b.id),
      matmul: m,
    };
    if (bindingCount([fused], bindingKey) > maxBuffers) continue;
    let at: number;
    if (others.every((i) => i > ip)) at = ip;
    else if (p.inputs.every((n) => n.id === m.id || (position.get(n.id) ?? -1) < im)) at = im;
    else continue;
    return list.flatMap((q, i) => (i === at ? [fused] : i === ip || i === im ? [] : [q]));
  }
  return undefined;
}

/**
 * Whether `plan` does integer arithmetic inline (random bits): a matmul kernel evaluates its
 * epilogue once per output of its tile (256), unrolled, and integer chains cannot run on vec4s
 * there — Sophia-H's Rademacher probe fused that way was 7,000 lines, 5 s of the driver's compile.
 * Alone it is one cheap elementwise kernel, and the product a plain one. An index compared with
 * another (an identity from iota) is not arithmetic: cheap per element, it stays fused.
 */
function computesIntegers(plan: KernelPlan): boolean {
  const buffers = new Set(plan.inputs.map((n) => n.id));
  const seen = new Set<number>();
  const visit = (n: Node): boolean => {
    if (buffers.has(n.id) || seen.has(n.id)) return false;
    seen.add(n.id);
    return (n.dtype === 'i32' && n.op !== 'iota') || n.inputs.some(visit);
  };
  return visit(plan.roots[0]);
}

/**
 * True when every inlined node of `plan` on a path from `m` to its root is elementwise over
 * `m`'s shape: the root's element [i…] then reads `m` at [i…] only (no broadcast, transpose,
 * slice or reduction of the product in between).
 */
function readsAtOwnElement(plan: KernelPlan, m: Node): boolean {
  const buffers = new Set(plan.inputs.map((n) => n.id));
  // The inlined nodes, inputs before their users (ids grow as nodes are built).
  const inlined = new Map<number, Node>();
  const stack = [plan.roots[0]];
  while (stack.length > 0) {
    const n = stack.pop() as Node;
    if (inlined.has(n.id) || buffers.has(n.id)) continue;
    inlined.set(n.id, n);
    stack.push(...n.inputs);
  }
  const reaches = new Set<number>([m.id]); // nodes with a path to m (m included)
  for (const n of [...inlined.values()].sort((a, b) => a.id - b.id)) {
    if (!n.inputs.some((x) => reaches.has(x.id))) continue;
    if (kindOf(n) !== 'expr' || !shapesEqual(n.shape, m.shape)) return false;
    reaches.add(n.id);
  }
  return reaches.has(plan.roots[0].id);
}
