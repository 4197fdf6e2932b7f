import { GrngError } from '../compiler/ir/index.js';

/** A pytree: a leaf, an array of trees, or a plain object of trees (like JAX's pytrees). */
export type Tree<L> = L | readonly Tree<L>[] | { readonly [key: string]: Tree<L> };

/**
 * Leaves in a fixed order (arrays by index, objects by sorted key, so order never depends on
 * insertion) and a function that rebuilds the same structure from new leaves.
 */
export function flattenTree<L>(
  op: string,
  tree: unknown,
  isLeaf: (x: unknown) => x is L,
  what: string,
): { leaves: L[]; rebuild: <M>(leaves: readonly M[]) => Tree<M> } {
  const leaves: L[] = [];
  const walk = (node: unknown, path: string): ((next: () => unknown) => unknown) => {
    if (isLeaf(node)) {
      leaves.push(node);
      return (next) => next();
    }
    if (Array.isArray(node)) {
      const parts = node.map((child, i) => walk(child, `${path}[${i}]`));
      return (next) => parts.map((p) => p(next));
    }
    if (node !== null && typeof node === 'object' && Object.getPrototypeOf(node) === Object.prototype) {
      const keys = Object.keys(node).sort();
      const parts = keys.map((k) => walk((node as Record<string, unknown>)[k], `${path}.${k}`));
      return (next) => Object.fromEntries(keys.map((k, i) => [k, parts[i](next)]));
    }
    throw new GrngError(op, `${path || 'argument'} is ${describe(node)}, but must be ${what} or an array/object of them`);
  };
  const build = walk(tree, '');
  return {
    leaves,
    rebuild<M>(newLeaves: readonly M[]) {
      let i = 0;
      return build(() => newLeaves[i++]) as Tree<M>;
    },
  };
}

function describe(x: unknown): string {
  if (x === null || x === undefined) return String(x);
  if (typeof x === 'object') return `a ${x.constructor?.name ?? 'object'}`;
  return `a ${typeof x}`;
}
