// Trees addressed by dotted paths ('blocks.0.attention.q.w'): how users name parameters (a
// partition's labels, R-Kalman's subset, the trainable part of a model), and how a tree is split
// into the part a step trains and the part it only reads.
import { GrngError } from './errors.js';
import { flattenTree, type Tree } from './tree.js';

/** The dotted path of every leaf of `tree`, in flattenTree's order ('' for a lone leaf). */
export function leafPaths<L>(
  op: string,
  tree: unknown,
  isLeaf: (x: unknown) => x is L,
  what: string,
): string[] {
  const { leaves, rebuild } = flattenTree(op, tree, isLeaf, what);
  const indexed = rebuild(leaves.map((_, i) => i));
  const paths: string[] = [];
  // A worklist rather than recursion: grng compile's purity check wants loops with known ends.
  const pending: { node: unknown; path: string }[] = [{ node: indexed, path: '' }];
  for (let item = pending.pop(); item !== undefined; item = pending.pop()) {
    const { node, path } = item;
    const at = (key: string | number) => (path === '' ? `${key}` : `${path}.${key}`);
    if (typeof node === 'number') paths[node] = path;
    else if (Array.isArray(node))
      node.forEach((child, i) => pending.push({ node: child, path: at(i) }));
    else
      for (const [k, child] of Object.entries(node as Record<string, unknown>))
        pending.push({ node: child, path: at(k) });
  }
  return paths;
}

/** Whether `path` is one of `prefixes` or lies under one ('blocks.0' holds 'blocks.0.norm1.w'). */
export function underAny(prefixes: readonly string[], path: string): boolean {
  if (!Array.isArray(prefixes) || !prefixes.every((p) => typeof p === 'string'))
    throw new GrngError(
      'underAny',
      `prefixes must be an array of dotted paths (strings), got ${JSON.stringify(prefixes)}`,
    );
  if (typeof path !== 'string')
    throw new GrngError('underAny', `path must be a dotted path (a string), got ${typeof path}`);
  return prefixes.some((p) => path === p || path.startsWith(`${p}.`));
}

/**
 * The leaves of `tree` whose path `keep` accepts, and the others, as two trees shaped like
 * `tree` (an object loses the keys left empty; an array keeps its length, an emptied element
 * becomes {}), so that joinTrees puts them back together and paths stay the same in both.
 */
export function splitTree<L>(
  op: string,
  tree: Tree<L>,
  isLeaf: (x: unknown) => x is L,
  keep: (path: string) => boolean,
): { kept: Tree<L>; rest: Tree<L> } {
  const paths = leafPaths(op, tree, isLeaf, 'a leaf');
  const { leaves, rebuild } = flattenTree(op, tree, isLeaf, 'a leaf');
  const marked = rebuild(leaves.map((leaf, i) => new Marked(leaf, keep(paths[i]))));
  const part = (wanted: boolean): Tree<L> => prune(marked, wanted) ?? {};
  return { kept: part(true), rest: part(false) };
}

class Marked<L> {
  constructor(
    readonly leaf: L,
    readonly kept: boolean,
  ) {}
}

function prune<L>(node: unknown, wanted: boolean): Tree<L> | undefined {
  if (node instanceof Marked) return node.kept === wanted ? (node.leaf as L) : undefined;
  if (Array.isArray(node)) {
    const parts = node.map((child) => prune<L>(child, wanted));
    return parts.every((p) => p === undefined) ? undefined : parts.map((p) => p ?? {});
  }
  const entries = Object.entries(node as Record<string, unknown>).flatMap(([k, child]) => {
    const p = prune<L>(child, wanted);
    return p === undefined ? [] : [[k, p] as const];
  });
  return entries.length === 0 ? undefined : Object.fromEntries(entries);
}

/** The union of two trees from splitTree (or any two trees whose leaves never share a path). */
export function joinTrees<L>(
  op: string,
  a: Tree<L>,
  b: Tree<L>,
  isLeaf: (x: unknown) => x is L,
): Tree<L> {
  if (isEmpty(a)) return b;
  if (isEmpty(b)) return a;
  if (isLeaf(a) || isLeaf(b))
    throw new GrngError(op, 'the two parts of the parameters both hold a leaf at the same path');
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length)
      throw new GrngError(op, `the two parts hold lists of ${a.length} and ${b.length} entries`);
    return a.map((x: Tree<L>, i) => joinTrees(op, x, b[i] as Tree<L>, isLeaf));
  }
  if (Array.isArray(a) || Array.isArray(b))
    throw new GrngError(
      op,
      'the two parts of the parameters hold a list and an object at one path',
    );
  const x = a as Record<string, Tree<L>>;
  const y = b as Record<string, Tree<L>>;
  const keys = [...new Set([...Object.keys(x), ...Object.keys(y)])];
  return Object.fromEntries(
    keys.map((k) => [k, k in x && k in y ? joinTrees(op, x[k], y[k], isLeaf) : (x[k] ?? y[k])]),
  );
}

const isEmpty = (t: unknown): boolean =>
  typeof t === 'object' &&
  t !== null &&
  !Array.isArray(t) &&
  Object.getPrototypeOf(t) === Object.prototype &&
  Object.keys(t).length === 0;
