import { builder as b, topoSort, type Node } from '../../core/ir/index.js';
import { activeNodes } from './reverse.js';
import { ruleOf } from '../../core/ops/table.js';

/**
 * Forward mode as a graph transform: the tangents of `outputs` when the variables `wrt`
 * move along `tangents`. null means a zero tangent.
 */
export function forwardGraph(
  outputs: readonly Node[],
  wrt: readonly Node[],
  tangents: readonly Node[],
): (Node | null)[] {
  const order = topoSort(outputs);
  const variables = new Set(wrt.map((n) => n.id));
  const active = activeNodes(order, variables);
  const ts = new Map<number, Node>();
  wrt.forEach((n, i) => ts.set(n.id, tangents[i]));
  for (const node of order) {
    if (variables.has(node.id) || !active.has(node.id)) continue;
    const inputTangents = node.inputs.map((n) => ts.get(n.id) ?? null);
    if (inputTangents.every((t) => t === null)) continue;
    const t = ruleOf(node).jvp(b, node, inputTangents);
    if (t !== null) ts.set(node.id, t);
  }
  return outputs.map((n) => ts.get(n.id) ?? null);
}
