import type { Node } from '../../core/ir/node.js';
import { shapeSize } from '../../core/ir/shape.js';
import { isExternal, type KernelPlan } from './partition.js';

/**
 * Moves each kernel that frees memory — the last reader of computed values larger than what it
 * writes — up to just after the kernels computing its inputs and the other readers of those
 * values (and its gate's condition, so gated work stays gated). Dependency order alone may put it
 * far later (a select over a loop's iterates after the whole loop), and every value it reads is
 * held until it runs. Nothing it reads is written in between (each value has one writer) and
 * nothing before its old place reads what it writes, so every kernel still sees the same values.
 */
export function freeEarly(
  plans: readonly KernelPlan[],
  outputs: readonly Node[],
  /** The node whose value gates a plan (kernels/gates.ts): it stays after that node's kernel. */
  gateOf: (plan: KernelPlan) => Node | undefined = () => undefined,
): KernelPlan[] {
  const returned = new Set(outputs.map((n) => n.id));
  const lastReader = new Map<number, number>();
  plans.forEach((p, i) => p.inputs.forEach((n) => lastReader.set(n.id, i)));
  const freedBy = (plan: KernelPlan, i: number) =>
    plan.inputs.filter((n) => !isExternal(n) && !returned.has(n.id) && lastReader.get(n.id) === i);
  const out: KernelPlan[] = [];
  plans.forEach((plan, i) => {
    const freed = freedBy(plan, i);
    const size = (nodes: readonly Node[]) => nodes.reduce((sum, n) => sum + shapeSize(n.shape), 0);
    // Returned roots live in the caller's or the results buffers for the whole call, not in the
    // arena: writing them costs no scratch.
    if (size(freed) <= size(plan.roots.filter((r) => !returned.has(r.id)))) {
      out.push(plan);
      return;
    }
    // After what computes its inputs, and after the other readers of what it frees (else it
    // would free nothing).
    const computes = new Set([...plan.inputs, gateOf(plan)].flatMap((n) => (n ? [n.id] : [])));
    const frees = new Set(freed.map((n) => n.id));
    let at = out.length;
    while (
      at > 0 &&
      !out[at - 1].roots.some((r) => computes.has(r.id)) &&
      !out[at - 1].inputs.some((n) => frees.has(n.id))
    )
      at--;
    out.splice(at, 0, plan);
  });
  return out;
}
