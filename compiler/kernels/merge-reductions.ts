import type { Node } from '../../core/ir/node.js';
import { opTable } from '../../core/ops/table.js';
import type { BindingKey } from '../memory/plan-memory.js';
import { bindingCount, type KernelPlan } from './partition.js';

const isReduce = (n: Node) => opTable[n.op].wgsl.kind === 'reduce';
const sameShape = (a: Node, b: Node) =>
  a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);

/**
 * Chains reductions that read an earlier reduction at their own output element into that
 * reduction's kernel: softmax's sum of exp(x − max) is computed right after the max, in the same
 * invocation, from a register. `fits` (from codegen) confirms the reads are really at the own
 * element; `single` marks plans that must keep a kernel of their own (e.g. wide reductions), and
 * `sameGate` keeps kernels needed under different conditions apart (gates.ts).
 */
export function mergeDependentReductions(
  plans: readonly KernelPlan[],
  maxBuffers: number,
  fits: (plan: KernelPlan) => boolean,
  single: (plan: KernelPlan) => boolean,
  bindingKey: BindingKey,
  sameGate: (a: Node, b: Node) => boolean = () => true,
): KernelPlan[] {
  const out: KernelPlan[] = [];
  const position = new Map<number, number>(); // root id → index in `out`
  for (const plan of plans) {
    const root = plan.roots[0];
    let at = -1;
    if (plan.roots.length === 1 && isReduce(root) && !single(plan)) {
      for (const input of plan.inputs) {
        const g = position.get(input.id);
        if (g === undefined) continue;
        const group = out[g];
        if (!group.roots.every(isReduce) || !sameShape(group.roots[0], root) || single(group))
          continue;
        if (!sameGate(group.roots[0], root)) continue;
        const others = plan.inputs.filter((n) => !group.roots.includes(n));
        // must be ready before the group runs
        if (others.some((n) => (position.get(n.id) ?? -1) >= g)) continue;
        const inputs = new Map([...group.inputs, ...others].map((n) => [n.id, n]));
        const candidate = {
          roots: [...group.roots, root],
          inputs: [...inputs.values()].sort((a, b) => a.id - b.id),
        };
        if (bindingCount([candidate], bindingKey) > maxBuffers || !fits(candidate)) continue;
        out[g] = candidate;
        at = g;
        break;
      }
    }
    if (at < 0) {
      out.push(plan);
      at = out.length - 1;
    }
    for (const r of plan.roots) position.set(r.id, at);
  }
  return out;
}
