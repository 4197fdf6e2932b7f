import type { DType } from './dtype.js';
import type { Primitive, PrimitiveAttrs } from './primitives.js';
import type { Shape } from './shape.js';

/**
 * A node of the IR graph. Nodes are immutable and hash-consed: building the same primitive
 * over the same inputs with the same attributes returns the same node, so common
 * subexpressions are shared for free and node identity is structural equality.
 */
export interface Node<P extends Primitive = Primitive> {
  readonly id: number;
  readonly op: P;
  readonly inputs: readonly Node[];
  readonly attrs: PrimitiveAttrs[P];
  readonly shape: Shape;
  readonly dtype: DType;
}

let nextId = 0;
// Weak values: graphs nobody holds any more can be collected even though they were interned.
const interned = new Map<string, WeakRef<Node>>();
const cleanup = new FinalizationRegistry<string>((key) => {
  const ref = interned.get(key);
  if (ref !== undefined && ref.deref() === undefined) interned.delete(key);
});

/**
 * Returns the unique node for (op, inputs, attrs). Shape and dtype must already be inferred;
 * use `emit` from the builder, which runs the op table's rules first.
 */
export function intern<P extends Primitive>(
  op: P,
  inputs: readonly Node[],
  attrs: PrimitiveAttrs[P],
  shape: Shape,
  dtype: DType,
): Node<P> {
  const key = `${op}(${inputs.map((n) => n.id).join(',')})${attrsKey(attrs)}`;
  const hit = interned.get(key)?.deref();
  if (hit !== undefined && sameData(hit.attrs, attrs)) return hit as Node<P>;
  const node: Node<P> = Object.freeze({
    id: nextId++,
    op,
    inputs: Object.freeze([...inputs]),
    attrs: Object.freeze(attrs) as PrimitiveAttrs[P],
    shape: Object.freeze([...shape]),
    dtype,
  });
  if (hit === undefined) {
    interned.set(key, new WeakRef(node));
    cleanup.register(node, key);
  }
  return node;
}

function attrsKey(attrs: object): string {
  return JSON.stringify(attrs, (_k, v: unknown) =>
    v instanceof Float64Array ? `f64#${v.length}:${hashData(v)}` : v,
  );
}

// FNV-1a over the bytes: large constants get a short key; `sameData` settles collisions.
function hashData(data: Float64Array): string {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return (h >>> 0).toString(16);
}

function sameData(a: object, b: object): boolean {
  const da = (a as { data?: unknown }).data;
  const db = (b as { data?: unknown }).data;
  if (!(da instanceof Float64Array) || !(db instanceof Float64Array)) return true;
  if (da.length !== db.length) return false;
  for (let i = 0; i < da.length; i++) if (!Object.is(da[i], db[i])) return false;
  return true;
}

/**
 * Nodes reachable from `outputs`, each after all of its inputs (iterative, so deep graphs are
 * fine).
 */
export function topoSort(outputs: readonly Node[]): Node[] {
  const order: Node[] = [];
  const state = new Map<number, 1 | 2>(); // 1: on the stack, 2: emitted
  const stack: { node: Node; next: number }[] = [];
  for (const root of outputs) {
    if (state.has(root.id)) continue;
    stack.push({ node: root, next: 0 });
    state.set(root.id, 1);
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      if (top.next < top.node.inputs.length) {
        const child = top.node.inputs[top.next++];
        if (!state.has(child.id)) {
          state.set(child.id, 1);
          stack.push({ node: child, next: 0 });
        }
      } else {
        stack.pop();
        state.set(top.node.id, 2);
        order.push(top.node);
      }
    }
  }
  return order;
}
