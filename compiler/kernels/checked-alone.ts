import { topoSort, type Node } from '../../core/ir/node.js';
import { shapeSize } from '../../core/ir/shape.js';
import { opTable } from '../../core/ops/table.js';
import type { KernelPlan } from './partition.js';
import { LARGE_ARRAY } from './large-array.js';

/**
 * A predicate for plans that must run in a dispatch of their own: those that store a large value
 * (LARGE_ARRAY) that isFinite tests, and the reductions that read one (the tests). isFinite reads
 * its operand from memory (partition.ts), so a step that checks its new parameters and state
 * stores a copy of each before it knows whether to keep them; side by side, the copies of a
 * layer's parameter and moments are several times its size at once. Kept apart, each stored copy
 * is freed by its test (kernels/free-early.ts moves the test up) before the next is stored. (The
 * non-finite guard in runtime/finite-guard.ts reduces such values one by one, so that each test
 * reads one of them.)
 */
export function checkedAlone(outputs: readonly Node[]): (plan: KernelPlan) => boolean {
  const large = new Set<number>();
  for (const node of topoSort(outputs))
    if (node.op === 'isFinite' && shapeSize(node.shape) >= LARGE_ARRAY)
      large.add(node.inputs[0].id);
  if (large.size === 0) return () => false;
  return (plan) =>
    plan.roots.some((r) => large.has(r.id)) ||
    (opTable[plan.roots[0].op].wgsl.kind === 'reduce' && plan.inputs.some((n) => large.has(n.id)));
}
