import { GrngError } from './errors.js';

/** A pytree: a leaf, an array of trees, or a plain object of trees (like JAX's pytrees). */
export type Tree<L> = L | readonly Tree<L>[] | { readonly [key: string]: Tree<L> };

/**
 * Leaves in a fixed order (arrays by index, objects by sorted key, so order never depends on
 * insertion), each leaf's path ('.m[0]', '' for a lone leaf) for messages, and a function that
 * rebuilds the same structure from new leaves.
 */
export function flattenTree<L>(
  op: string,
  tree: unknown,
  isLeaf: (x: unknown) => x is L,
  what: string,
): { leaves: L[]; paths: string[]; rebuild: <M>(leaves: readonly M[]) => Tree<M> } {
  const leaves: L[] = [];
  const paths: string[] = [];
  const walk = (node: unknown, path: string): ((next: () => unknown) => unknown) => {
    if (isLeaf(node)) {
      leaves.push(node);
      paths.push(path);
      return (next) => next();
    }
    if (Array.isArray(node)) {
      const parts = node.map((child, i) => walk(child, `${path}[${i}]`));
      return (next) => parts.map((p) => p(next));
    }
    if (
      node !== null &&
      typeof node === 'object' &&
      Object.getPrototypeOf(node) === Object.prototype
    ) {
      const keys = Object.keys(node).sort();
      const parts = keys.map((k) => walk((node as Record<string, unknown>)[k], `${path}.${k}`));
      return (next) => Object.fromEntries(keys.map((k, i) => [k, parts[i](next)]));
    }
    throw new GrngError(
      op,
      `${path || 'argument'} is ${describe(node)}, but must be ${what} or an array/object of them`,
    );
  };
  const build = walk(tree, '');
  return {
    leaves,
    paths,
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

/**
 * Applies `f` leaf by leaf to trees of the same structure (as jax.tree.map): the result has the
 * first tree's structure. A tree of another structure is a GrngError naming `what`.
 */
export function mapTrees<L, R>(
  op: string,
  isLeaf: (x: unknown) => x is L,
  f: (...leaves: L[]) => R,
  trees: readonly unknown[],
  names: readonly string[],
): Tree<R> {
  const flat = trees.map((t, i) => flattenTree(op, t, isLeaf, `a leaf of ${names[i]}`));
  const structure = (k: number) => JSON.stringify(flat[k].rebuild(flat[k].leaves.map(() => 0)));
  for (let k = 1; k < trees.length; k++) {
    if (structure(k) !== structure(0)) {
      throw new GrngError(
        op,
        `${names[k]} must have the structure of ${names[0]} (${structure(0)}), got ${structure(k)}`,
      );
    }
  }
  return flat[0].rebuild(flat[0].leaves.map((_, i) => f(...flat.map((t) => t.leaves[i]))));
}
