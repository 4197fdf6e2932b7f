import { topoSort, type Node } from '../../core/ir/node.js';
import { shapeSize } from '../../core/ir/shape.js';
import { splatValue } from '../../core/ir/builder.js';

/** A condition on a one-element bool array: the work it gates is needed only when it is `when`. */
export interface Gate {
  readonly node: Node;
  readonly when: boolean;
}

/**
 * For every node whose value is needed only under some condition, the condition to gate its kernel
 * on (a dispatch the device skips when the condition does not hold; see runtime/gpu/gates.ts).
 *
 * A node is needed under the conjunction of conditions common to all its uses. Reading a branch of
 * `where(c, x, y)` with a one-element `c` (broadcast or not) adds `c` (for x) or `¬c` (for y) to
 * what the `where` itself is needed under; every other use passes its consumer's conditions on.
 * Outputs are always needed. `where(g, c, false)` implies g, so needing it true also needs g: a
 * chain of "still going" flags (g₁ ⇐ g₂ ⇐ …) gates each step on its own flag.
 *
 * Of a node's conditions the latest computed is the one reported: the most specific there is in a
 * chain like the one above. Skipping a gated kernel is always safe: every reader of what it would
 * have stored is itself not needed, or a `where` that selects the other branch.
 */
export function gatesOf(outputs: readonly Node[]): Map<number, Gate> {
  const order = topoSort(outputs);
  const rank = new Map(order.map((n, i) => [n.id, i] as const));
  const users = new Map<number, { user: Node; input: number }[]>();
  for (const user of order)
    user.inputs.forEach((n, input) => {
      const list = users.get(n.id);
      if (list === undefined) users.set(n.id, [{ user, input }]);
      else list.push({ user, input });
    });
  const always = new Set(outputs.map((n) => n.id));
  // Conditions as "id:when" literals; a node's set is the conjunction it is needed under.
  const needed = new Map<number, ReadonlyMap<string, Gate>>();
  for (let i = order.length - 1; i >= 0; i--) {
    const node = order[i];
    if (always.has(node.id)) {
      needed.set(node.id, new Map());
      continue;
    }
    let common: Map<string, Gate> | undefined;
    for (const { user, input } of users.get(node.id) ?? []) {
      const via = new Map(needed.get(user.id));
      const condition = user.op === 'select' && input > 0 ? uniformCondition(user) : undefined;
      if (condition !== undefined)
        for (const g of implied(condition, input === 1)) via.set(key(g), g);
      common = common === undefined ? via : intersect(common, via);
    }
    needed.set(node.id, common ?? new Map());
  }
  const gates = new Map<number, Gate>();
  for (const [id, conditions] of needed) {
    let latest: Gate | undefined;
    for (const g of conditions.values())
      if (latest === undefined || (rank.get(g.node.id) ?? 0) > (rank.get(latest.node.id) ?? 0))
        latest = g;
    if (latest !== undefined) gates.set(id, latest);
  }
  return gates;
}

/** A short name of a gate, for grouping (undefined: always runs). */
export function gateKey(gate: Gate | undefined): string {
  return gate === undefined ? '' : key(gate);
}

const key = (g: Gate) => `${g.node.id}:${g.when}`;

/**
 * The one-element computed bool a `where` selects on (seen through broadcasts and reshapes), or
 * undefined when it selects element by element or on a constant.
 */
function uniformCondition(select: Node): Node | undefined {
  let c = select.inputs[0];
  while (c.op === 'broadcast' || c.op === 'reshape') c = c.inputs[0];
  // A constant has no buffer to read (and selects statically); an input is a buffer like any.
  if (shapeSize(c.shape) !== 1 || c.op === 'constant') return undefined;
  return c;
}

/** `c = when` and what it implies: where(g, x, false) = true needs g = true, recursively. */
function implied(c: Node, when: boolean): Gate[] {
  const out: Gate[] = [{ node: c, when }];
  for (let n = c; when && n.op === 'select' && splatValue(n.inputs[2]) === 0;) {
    const g = uniformCondition(n);
    if (g === undefined) break;
    out.push({ node: g, when: true });
    n = g;
  }
  return out;
}

function intersect(a: ReadonlyMap<string, Gate>, b: ReadonlyMap<string, Gate>): Map<string, Gate> {
  return new Map([...a].filter(([k]) => b.has(k)));
}
