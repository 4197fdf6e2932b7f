import type { Node } from '../../core/ir/node.js';
import { shapeSize } from '../../core/ir/shape.js';
import type { KernelPlan } from '../kernels/partition.js';
import type { Emitter } from './emitter.js';
import { wgslRuleOf, unravelSized, type Location } from './emitter.js';
import { withHelpers, type Declare, type KernelSource } from './module.js';

/** Reductions over at least this many elements per output use a whole workgroup per output. */
const WIDE_REDUCTION = 1024;

export function isWideReduction(plan: KernelPlan): boolean {
  const root = plan.roots[0];
  if (plan.roots.length !== 1 || wgslRuleOf(root).kind !== 'reduce') return false;
  return shapeSize(root.inputs[0].shape) / Math.max(1, shapeSize(root.shape)) >= WIDE_REDUCTION;
}

/** Lanes of a wide reduction's workgroup: a power of two, for the halving. */
export const wideReductionLanes = (workgroupSize: number): number =>
  2 ** Math.floor(Math.log2(workgroupSize));

/**
 * A long reduction: one workgroup per output element. Each lane accumulates a strided share of
 * the reduced elements (the producer expression inlined), then the workgroup combines the lanes
 * by halving in workgroup memory. Without it, summing a million elements is one thread's loop.
 */
export function generateWideReduction(
  plan: KernelPlan,
  e: Emitter,
  out: Location,
  declare: Declare,
  workgroupSize: number,
): KernelSource {
  const root = plan.roots[0] as Node<'reduceSum'>;
  const rule = wgslRuleOf(root);
  if (rule.kind !== 'reduce') throw new Error(`internal: ${root.op} is not a reduction`);
  const { axes } = root.attrs;
  const input = root.inputs[0];
  const reduced = axes.map((a) => input.shape[a]);
  const lanes = wideReductionLanes(workgroupSize);
  const outIndex = unravelSized(e, 'flat', root.shape, 'output');
  e.line(`var acc = ${rule.init(root)};`);
  const body = e.block(() => {
    const r = unravelSized(e, 'r', reduced, 'reduced');
    let k = 0;
    const inIndex = input.shape.map((_, i) =>
      axes.includes(i) ? r[axes.indexOf(i)] : outIndex[k++],
    );
    e.line(`acc = ${rule.combine('acc', e.value(input, inIndex))};`);
  });
  const count = e.dimension('reduced', shapeSize(reduced));
  e.line(`for (var r = i32(lane); r < i32(${count}); r += ${lanes}i) {`);
  body.forEach((l) => e.line(`  ${l}`));
  e.line('}');
  const t = root.dtype === 'f32' ? 'f32' : 'i32';
  const outputs = shapeSize(root.shape);
  const store = e.storeElement(out, 'flat', 'partial[0]'); // before `declare` (offsets it reads)
  const bound = e.dimension('outputs', outputs);
  const code = `${[...declare(new Set()), `var<workgroup> partial: array<${t}, ${lanes}>;`].join('\n')}

@compute @workgroup_size(${lanes})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32, @builtin(num_workgroups) groups: vec3<u32>) {
  let flat = i32(wid.x + wid.y * groups.x);
  if (flat >= i32(${bound})) { return; }
${e
  .lines()
  .map((l) => `  ${l}`)
  .join('\n')}
  partial[lane] = acc;
  workgroupBarrier();
  for (var s = ${lanes / 2}u; s > 0u; s = s / 2u) {
    if (lane < s) { partial[lane] = ${rule.combine('partial[lane]', 'partial[lane + s]')}; }
    workgroupBarrier();
  }
  if (lane == 0u) { ${store} }
}
`;
  // One workgroup per output: the device dispatches invocations / workgroupSize groups.
  return { code: withHelpers(code, 'f32'), invocations: outputs * lanes, workgroupSize: lanes };
}
