// Parameter lists as grng trees and back, for the optimizer checks: the checks think in flat
// lists of leaves (what a float64 reference loops over); compileOptimizer takes trees.
import { fmtShape, GrngError } from '../core/errors.js';
import { flattenTree, type Tree } from '../core/tree.js';
import type { DeviceArray } from '../runtime/device.js';
import { array, type HostArray } from '../core/host-array.js';
import { isArrayLeaf } from '../runtime/jit.js';

/**
 * How a list of leaves is arranged as a tree. Every arrangement flattens (flattenTree: arrays by
 * index, objects by sorted key) back to the list order, so leaf k of a reference is leaf k here.
 * 'object': { p0, p1, … }; 'list': [l0, l1, …]; 'nested': { a: [l0, …, l(n−2)], b: l(n−1) }.
 */
export type TreeStructure = 'object' | 'list' | 'nested';

export const TREE_STRUCTURES: readonly TreeStructure[] = ['object', 'list', 'nested'];

/** The leaves arranged as `structure` (see TreeStructure for the order guarantee). */
export function treeOfLeaves<L>(
  leaves: readonly L[],
  structure: TreeStructure = 'object',
): Tree<L> {
  if (!Array.isArray(leaves))
    throw new GrngError('treeOfLeaves', `leaves must be an array, got ${typeof leaves}`);
  // Any other name would silently give the 'object' arrangement.
  if (!TREE_STRUCTURES.includes(structure))
    throw new GrngError(
      'treeOfLeaves',
      `structure must be ${TREE_STRUCTURES.map((s) => `'${s}'`).join(', ')}, got ` +
        `${JSON.stringify(structure)}`,
    );
  if (structure === 'list') return [...leaves];
  if (structure === 'nested' && leaves.length > 1)
    return { a: leaves.slice(0, -1), b: leaves[leaves.length - 1] };
  // Zero-padded names keep the sorted key order equal to the index order past ten leaves.
  const width = String(Math.max(0, leaves.length - 1)).length;
  return Object.fromEntries(leaves.map((leaf, k) => [`p${String(k).padStart(width, '0')}`, leaf]));
}

/** Host arrays (dtype f32) of the given values and shapes, arranged as `structure`. */
export function hostTree(
  values: readonly Float64Array[],
  shapes: readonly (readonly number[])[],
  structure: TreeStructure = 'object',
): Tree<HostArray> {
  // A missing shape would make array() take the values' length as the shape, silently.
  if (!Array.isArray(values) || !Array.isArray(shapes) || values.length !== shapes.length)
    throw new GrngError(
      'hostTree',
      `needs one shape per leaf: got ${Array.isArray(values) ? values.length : typeof values} ` +
        `values and ${Array.isArray(shapes) ? shapes.length : typeof shapes} shapes`,
    );
  return treeOfLeaves(
    values.map((v, k) => array(v, shapes[k])),
    structure,
  );
}

/** The array leaves of a tree of device arrays, in flattenTree order. */
export const deviceLeaves = (tree: Tree<DeviceArray>): DeviceArray[] =>
  flattenTree('grng/testing', tree, isArrayLeaf, 'an array').leaves as DeviceArray[];

/** The values of every leaf of a tree of device arrays, in flattenTree order. */
export const readLeaves = (tree: Tree<DeviceArray>): Promise<Float64Array[]> =>
  Promise.all(deviceLeaves(tree).map((a) => a.read()));

/**
 * Host copies (same shapes and dtypes) of a tree of device arrays: a checkpoint kept on the host.
 */
export async function hostCopy(tree: Tree<DeviceArray>): Promise<Tree<HostArray>> {
  const { leaves, rebuild } = flattenTree('grng/testing', tree, isArrayLeaf, 'an array');
  const arrays = leaves as DeviceArray[];
  const copies = await Promise.all(
    arrays.map(async (a) => array(await a.read(), a.shape, a.dtype)),
  );
  return rebuild(copies);
}

/**
 * A tree's structure, shapes and dtypes as a string, e.g. {"m":{"p0":"f32[2, 3]"}}: equal strings,
 * equal structure.
 */
export function structureOf(tree: Tree<DeviceArray>): string {
  const { leaves, rebuild } = flattenTree('grng/testing', tree, isArrayLeaf, 'an array');
  return JSON.stringify(
    rebuild((leaves as DeviceArray[]).map((a) => `${a.dtype}${fmtShape(a.shape)}`)),
  );
}

/** Frees every array of a tree (WebGPU memory would otherwise wait for garbage collection). */
export function disposeTree(tree: Tree<DeviceArray>): void {
  for (const a of deviceLeaves(tree)) if (!a.consumed) a.dispose();
}

/** Number of elements of a shape ([] is a scalar: 1). */
export const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);
