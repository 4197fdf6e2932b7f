import { builder as b, shapesEqual, topoSort, type Node } from '../../core/ir/index.js';
import { GrngError, fmtShape } from '../../core/errors.js';
import { ruleOf } from '../../core/ops/table.js';

/**
 * Reverse mode as a graph transform: the cotangents of `wrt` given cotangents of `outputs`,
 * as new IR nodes built from primitives (so the result can be differentiated again).
 * Nodes in `wrt` are independent variables: propagation stops there. null means a zero
 * cotangent (the output does not depend on that variable through any float path).
 */
export function reverseGraph(
  outputs: readonly Node[],
  cotangents: readonly Node[],
  wrt: readonly Node[],
): (Node | null)[] {
  const order = topoSort(outputs);
  const variables = new Set(wrt.map((n) => n.id));
  const active = activeNodes(order, variables);
  const cts = new Map<number, Node>();
  const accumulate = (node: Node, ct: Node) => {
    if (!shapesEqual(ct.shape, node.shape)) {
      throw new GrngError(
        'vjp',
        `internal: cotangent ${fmtShape(ct.shape)} for a ${node.op} node of ` +
          `shape ${fmtShape(node.shape)}`,
      );
    }
    const prev = cts.get(node.id);
    cts.set(node.id, prev === undefined ? ct : b.add(prev, ct));
  };
  outputs.forEach((out, i) => {
    if (active.has(out.id)) accumulate(out, cotangents[i]);
  });
  for (let k = order.length - 1; k >= 0; k--) {
    const node = order[k];
    const ct = cts.get(node.id);
    if (ct === undefined || variables.has(node.id)) continue;
    const inputCts = ruleOf(node).vjp(b, node, ct);
    node.inputs.forEach((input, i) => {
      const c = inputCts[i];
      if (c !== null && c !== undefined && active.has(input.id)) accumulate(input, c);
    });
  }
  return wrt.map((n) => cts.get(n.id) ?? null);
}

/** Float nodes that depend on a variable: the only ones that can carry a derivative. */
export function activeNodes(order: readonly Node[], variables: ReadonlySet<number>): Set<number> {
  const active = new Set<number>();
  for (const node of order) {
    if (node.dtype !== 'f32') continue;
    if (variables.has(node.id) || node.inputs.some((n) => active.has(n.id))) active.add(node.id);
  }
  return active;
}
