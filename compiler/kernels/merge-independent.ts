import { shapeSize, shapesEqual } from '../../core/ir/shape.js';
import { LARGE_ARRAY } from './large-array.js';
import type { Node } from '../../core/ir/node.js';
import type { BindingKey } from '../memory/plan-memory.js';
import { opTable } from '../../core/ops/table.js';
import { bindingCount, isExternal, type KernelPlan } from './partition.js';

/** One compute dispatch: kernel plans run side by side over one invocation range. */
export interface DispatchPlan {
  readonly segments: readonly KernelPlan[];
}

export interface MergeOptions {
  readonly maxBuffers: number;
  readonly bindingKey: BindingKey;
  /** How a plan runs: plans share a dispatch only with plans of the same mode; 'alone' never. */
  readonly mode: (plan: KernelPlan) => string;
  /** Invocations a plan's segment covers. */
  readonly invocations: (plan: KernelPlan) => number;
  /**
   * The most invocations a dispatch of several segments may cover (see
   * CompileOptions.maxMergedInvocations).
   */
  readonly maxMergedInvocations?: number;
  /** See PartitionOptions.byWindow: a dispatch of one such segment binds a window per array. */
  readonly byWindow?: (plan: KernelPlan, windowed: ReadonlySet<number>) => boolean;
}

const elementwise = (n: Node) => {
  const kind = opTable[n.op].wgsl.kind;
  return kind !== 'reduce' && kind !== 'matmul';
};

/**
 * Packs independent kernels into few dispatches. Taking plans in dependency order, a plan joins the
 * first earlier dispatch that reads nothing computed at or after it (so, run there, its inputs are
 * ready and nothing between reads its outputs too early), has its mode and stays within the binding
 * limit:
 * - as more roots of a segment over the same shape (a multi-output kernel: θ, m and v of an Adam
 *   step share one pass over the inputs), when both are elementwise;
 * - else as a segment of its own (horizontal fusion: the update of every parameter, whatever
 *   its shape, in one dispatch, the arrays being packed into shared buffers).
 */
export function mergeIndependent(
  plans: readonly KernelPlan[],
  options: MergeOptions,
): DispatchPlan[] {
  const { maxBuffers, bindingKey, mode, invocations } = options;
  const maxInvocations = options.maxMergedInvocations ?? Infinity;
  const groups: { segments: KernelPlan[]; mode: string }[] = [];
  const covered = (segments: readonly KernelPlan[]) =>
    segments.reduce((n, s) => n + invocations(s), 0);
  const position = new Map<number, number>(); // root id → index of the dispatch computing it
  const fits = (segments: readonly KernelPlan[]) =>
    bindingCount(
      segments,
      bindingKey,
      (windowed) => segments.length === 1 && (options.byWindow?.(segments[0], windowed) ?? false),
    ) <= maxBuffers;
  // Plans nothing reads (the final updates of a training step) go last, so they meet in one
  // dispatch after every gradient is ready instead of each joining the first group it can.
  const read = new Set(plans.flatMap((p) => p.inputs.map((n) => n.id)));
  // Except those that free large values (kernels/free-early.ts ran them as soon as they could):
  // held to the end, those values would cost more memory than a dispatch of their own costs time.
  const lastReader = new Map<number, number>();
  plans.forEach((p, i) => p.inputs.forEach((n) => lastReader.set(n.id, i)));
  const freesLarge = (p: KernelPlan, i: number) =>
    p.inputs
      .filter((n) => lastReader.get(n.id) === i && !isExternal(n))
      .reduce((sum, n) => sum + shapeSize(n.shape), 0) >= LARGE_ARRAY;
  const terminal = (p: KernelPlan, i: number) =>
    p.roots.every((r) => !read.has(r.id)) && !freesLarge(p, i);
  for (const plan of [
    ...plans.filter((p, i) => !terminal(p, i)),
    ...plans.filter((p, i) => terminal(p, i)),
  ]) {
    const m = mode(plan);
    const readsAt = Math.max(-1, ...plan.inputs.map((n) => position.get(n.id) ?? -1));
    let at = -1;
    for (let g = readsAt + 1; g < groups.length && at < 0 && m !== 'alone'; g++) {
      const group = groups[g];
      if (group.mode !== m) continue;
      const same = group.segments.findIndex(
        (s) =>
          plan.roots.every(elementwise) &&
          s.roots.every(elementwise) &&
          shapesEqual(s.roots[0].shape, plan.roots[0].shape),
      );
      if (same >= 0) {
        const merged = mergePlans(group.segments[same], plan);
        const segments = group.segments.map((s, i) => (i === same ? merged : s));
        if (mode(merged) === m && fits(segments)) {
          group.segments = segments;
          at = g;
          continue;
        }
      }
      if (
        fits([...group.segments, plan]) &&
        covered(group.segments) + invocations(plan) <= maxInvocations
      ) {
        group.segments.push(plan);
        at = g;
      }
    }
    if (at < 0) {
      groups.push({ segments: [plan], mode: m });
      at = groups.length - 1;
    }
    for (const r of plan.roots) position.set(r.id, at);
  }
  return groups.map((g) => ({ segments: g.segments }));
}

function mergePlans(a: KernelPlan, b: KernelPlan): KernelPlan {
  const inputs = new Map([...a.inputs, ...b.inputs].map((n) => [n.id, n]));
  return {
    roots: [...a.roots, ...b.roots],
    inputs: [...inputs.values()].sort((x, y) => x.id - y.id),
  };
}
