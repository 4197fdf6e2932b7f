import type { Node } from '../../core/ir/node.js';
import { shapeSize, shapesEqual } from '../../core/ir/shape.js';
import type { Emitter, Locate } from './emitter.js';
import { wgslRuleOf } from './emitter.js';
import { stridedView, type StridedView } from './strided-view.js';
import { range, scaled, sum } from './u32-index.js';

/**
 * A fused epilogue the vec4 matmul kernel evaluates on vec4s, four output columns at once, as an
 * elementwise vector kernel would: one expression per vec4 of output instead of one per element,
 * which is most of a fused kernel's source and so of the driver's compile time. `views` are the
 * arrays it reads besides the product, each at the vec4's four elements (biases, other matrices,
 * broadcasts of either); per-call scalars and one-element arrays are read once, as scalars.
 */
export interface VectorEpilogue {
  readonly root: Node;
  readonly views: ReadonlyMap<Node, StridedView>;
}

/**
 * The vector form of the epilogue `root` over `product`, or undefined when a node in between is
 * not elementwise over f32 vec4s (casts, iota, integer arithmetic, movement no strided view
 * expresses).
 */
export function vectorEpilogue(
  root: Node,
  product: Node,
  locate: Locate,
): VectorEpilogue | undefined {
  const views = new Map<Node, StridedView>();
  const seen = new Set<number>();
  const rootShaped = (n: Node) => shapesEqual(n.shape, root.shape);
  const ok = (n: Node): boolean => {
    if (n.id === product.id || seen.has(n.id)) return true;
    seen.add(n.id);
    const at = locate(n);
    if (at?.scalar !== undefined) return true; // a per-call scalar: the emitter reads it once
    const view = rootShaped(n) && n.dtype === 'f32' ? stridedView(n, locate) : undefined;
    // (a per-call scalar spread over the output stays in its uniform: see movement below)
    if (view !== undefined && view.at.scalar === undefined) {
      views.set(n, view);
      return true;
    }
    if (at !== undefined) return shapeSize(n.shape) === 1; // read once, as a scalar
    if (n.op === 'cast' || n.op === 'iota' || n.op === 'isFinite' || n.dtype === 'i32')
      return false;
    const kind = wgslRuleOf(n).kind;
    if (kind === 'leaf') return n.op === 'constant' && 'value' in (n.attrs as object);
    if (kind === 'expr') return (rootShaped(n) || shapeSize(n.shape) === 1) && n.inputs.every(ok);
    // movement of a one-element value (a computed scalar spread over the output): its operand
    // index is all zeros whatever the output element
    if (kind === 'index' && n.op !== 'pad' && n.op !== 'windows')
      return shapeSize(n.inputs[0].shape) === 1 && ok(n.inputs[0]);
    return false;
  };
  return root.dtype === 'f32' && ok(root) ? { root, views } : undefined;
}

/** Where a vec4 of the output is: batch indices, row, and column group (WGSL u32). */
export interface OutputVec4 {
  readonly batch: readonly string[];
  readonly row: string;
  readonly group: string;
}

/**
 * The epilogue's vec4 at `out`, given the product's vec4 `acc` there. `index` names the element
 * for the emitter's memo (distinct per output vec4); `loads` memoizes view loads across the
 * kernel, so a bias's vec4 is read once per column group, not once per row.
 */
export function emitVectorEpilogue(
  e: Emitter,
  epilogue: VectorEpilogue,
  product: Node,
  acc: string,
  out: OutputVec4,
  index: readonly string[],
  loads: Map<string, string>,
): string {
  const memo = (expr: string) => {
    let name = loads.get(expr);
    if (name === undefined) loads.set(expr, (name = e.bind(expr)));
    return name;
  };
  e.registers.set(product.id, { name: e.bind(acc), index });
  for (const [node, view] of epilogue.views)
    e.registers.set(node.id, { name: memo(viewVec4(e, view, out, memo)), index });
  e.vector = e.vectorHelpers = true;
  const value = e.value(epilogue.root, index);
  e.vector = e.vectorHelpers = false;
  for (const node of epilogue.views.keys()) e.registers.delete(node.id);
  return value;
}

/**
 * The vec4 of `view` at `out`: one vec4 load when its four elements are consecutive and aligned in
 * a vec4 binding, a splat when the view repeats along columns, else four element loads.
 */
function viewVec4(
  e: Emitter,
  view: StridedView,
  out: OutputVec4,
  memo: (expr: string) => string,
): string {
  const { at, base, strides } = view;
  const r = strides.length;
  const [rowStride, colStride] = strides.slice(r - 2);
  const batchStrides = strides.slice(0, r - 2);
  const vec4 = e.vec4Bindings.has(at.name);
  if (vec4 && colStride === 1 && [base, rowStride, ...batchStrides].every((s) => s % 4 === 0)) {
    return e.vec4At(
      at,
      sum(
        e.offset(at, 4),
        `${base / 4}u`,
        ...out.batch.map((x, i) => scaled(x, batchStrides[i] / 4)),
        scaled(out.row, rowStride / 4),
        out.group,
      ),
    );
  }
  const origin = memo(
    sum(
      e.offset(at),
      `${base}u`,
      ...out.batch.map((x, i) => scaled(x, batchStrides[i])),
      scaled(out.row, rowStride),
    ),
  );
  const element = (i: string) => memo(e.component(at, vec4 ? memo(i) : i));
  if (colStride === 0) return `vec4<f32>(${element(origin)})`;
  const col0 = scaled(out.group, 4);
  return `vec4<f32>(${range(4)
    .map((q) => element(sum(origin, scaled(`(${sum(col0, `${q}u`)})`, colStride))))
    .join(', ')})`;
}
