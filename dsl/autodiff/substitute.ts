import { emit, shapesEqual, topoSort, type Node } from '../../core/ir/index.js';
import { GrngError, fmtShape } from '../../core/errors.js';

/**
 * Rebuilds `outputs` with some nodes replaced (by id). Used to trace a function on fresh
 * placeholder inputs, differentiate, then plug the real arguments back in: that keeps
 * nested transforms from confusing an argument with an equal subexpression elsewhere.
 */
export function substitute(
  outputs: readonly Node[],
  replacements: ReadonlyMap<number, Node>,
): Node[] {
  if (replacements.size === 0) return [...outputs];
  const done = new Map<number, Node>();
  for (const node of topoSort(outputs)) {
    const replacement = replacements.get(node.id);
    if (replacement !== undefined) {
      if (!shapesEqual(replacement.shape, node.shape) || replacement.dtype !== node.dtype) {
        throw new GrngError(
          'substitute',
          `cannot replace a ${node.dtype}${fmtShape(node.shape)} node by ` +
            `${replacement.dtype}${fmtShape(replacement.shape)}`,
        );
      }
      done.set(node.id, replacement);
      continue;
    }
    const inputs = node.inputs.map((n) => done.get(n.id) as Node);
    const changed = inputs.some((n, i) => n !== node.inputs[i]);
    done.set(node.id, changed ? emit(node.op, inputs, node.attrs) : node);
  }
  return outputs.map((n) => done.get(n.id) as Node);
}
