import { shapeSize, stridesOf } from '../ir/shape.js';
import type { KernelPlan } from '../kernels/partition.js';
import { Emitter, unravel, type Location } from './emitter.js';
import { literal } from './literals.js';
import { assemble, type KernelSource } from './module.js';

/** Outputs per invocation of a matmul (rows × cols), tuned on llvmpipe (issue 3's measurements). */
const MATMUL_TILE = { rows: 8, cols: 16 };

/**
 * Register-blocked matmul: each invocation computes a TM×TN tile of outputs, loading TM values
 * of a and TN of b per k (operands are index arithmetic over buffers, inlined). No workgroup
 * memory: on llvmpipe register blocking is what pays (shared-memory tiling measured slower).
 * Rows and columns past the edge are clamped for loading and skipped when storing.
 */
export function generateMatmul(plan: KernelPlan, e: Emitter, out: Location, decls: readonly string[], workgroupSize: number): KernelSource {
  const root = plan.roots[0];
  const [a, b] = root.inputs;
  const r = root.shape.length;
  const [m, n] = root.shape.slice(r - 2);
  const depth = a.shape[r - 1];
  const tm = Math.min(MATMUL_TILE.rows, m);
  const tn = Math.min(MATMUL_TILE.cols, n);
  const space = [...root.shape.slice(0, r - 2), Math.ceil(m / tm), Math.ceil(n / tn)];
  const idx = unravel(e, 'flat', space);
  const batch = idx.slice(0, r - 2);
  const row0 = e.bind(`${idx[r - 2]} * ${tm}i`);
  const col0 = e.bind(`${idx[r - 1]} * ${tn}i`);
  // Clamping is only needed where the last tile runs past the edge.
  const rows = Array.from({ length: tm }, (_, i) => e.bind(m % tm === 0 ? `${row0} + ${i}i` : `min(${row0} + ${i}i, ${m - 1}i)`));
  const cols = Array.from({ length: tn }, (_, j) => e.bind(n % tn === 0 ? `${col0} + ${j}i` : `min(${col0} + ${j}i, ${n - 1}i)`));
  const acc = (i: number, j: number) => `c${i}_${j}`;
  for (let i = 0; i < tm; i++) for (let j = 0; j < tn; j++) e.line(`var ${acc(i, j)} = ${literal(0, root.dtype)};`);
  const k = e.fresh('k');
  const body = e.block(() => {
    const as = rows.map((row) => e.value(a, [...batch, row, k]));
    const bs = cols.map((col) => e.value(b, [...batch, k, col]));
    for (let i = 0; i < tm; i++) for (let j = 0; j < tn; j++) e.line(`${acc(i, j)} = ${acc(i, j)} + ${as[i]} * ${bs[j]};`);
  });
  e.line(`for (var ${k} = 0i; ${k} < ${depth}i; ${k}++) {`);
  body.forEach((l) => e.line(`  ${l}`));
  e.line('}');
  const strides = stridesOf(root.shape);
  const base = batch.map((v, i) => `${v} * ${strides[i]}i`).join(' + ') || '0i';
  for (let i = 0; i < tm; i++) {
    for (let j = 0; j < tn; j++) {
      const guard = [m % tm === 0 ? '' : `${row0} + ${i}i < ${m}i`, n % tn === 0 ? '' : `${col0} + ${j}i < ${n}i`].filter((g) => g !== '');
      const store = `${e.element(out, `${base} + (${row0} + ${i}i) * ${n}i + ${col0} + ${j}i`)} = ${acc(i, j)};`;
      e.line(guard.length === 0 ? store : `if (${guard.join(' && ')}) { ${store} }`);
    }
  }
  return assemble(decls, e.lines(), shapeSize(space), workgroupSize);
}
