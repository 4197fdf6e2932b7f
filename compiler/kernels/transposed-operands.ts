import { topoSort, type Node } from '../../core/ir/node.js';

/**
 * Right operands of products that are permuted views moving their last axis (x·Wᵀ, a dense layer's
 * forward pass; kᵀ in attention) with a width the vec4 kernel takes: stored in a kernel of their
 * own, so that the product runs on the vec4 'rows' kernel — one more product of a shape other
 * products share — rather than the 'dot' kernel, which reads b along k (or the scalar kernel).
 * Measured on llvmpipe (784-256-256-10 MLP, batch 128): the 'dot' kernels took 0.45–0.7 s each to
 * compile, a third of Sophia-H's first contact, and the transposed products ran as fast (AdamW's
 * step 20.6 → 18.4 ms, Sophia-H's and RING's within noise); the transposes are elementwise kernels
 * of one shared pipeline.
 */
export function transposedRightOperands(outputs: readonly Node[]): Set<number> {
  const out = new Set<number>();
  for (const n of topoSort(outputs)) {
    if (n.op !== 'matmul' || n.dtype !== 'f32') continue;
    const b = n.inputs[1];
    if (b.op !== 'permute') continue;
    const { perm } = b.attrs as { readonly perm: readonly number[] };
    const r = perm.length;
    if (perm[r - 1] !== r - 1 && b.shape[r - 1] % 4 === 0) out.add(b.id);
  }
  return out;
}
