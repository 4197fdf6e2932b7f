// The JIT path's purity check. A compiled step runs the graph of one trace of `update` forever, so
// an update that reads something changing between calls (a counter it keeps outside itself,
// Math.random, Date.now, performance.now) would have that value frozen into the program. The IR
// is hash-consed, so a pure update traced twice on the same inputs returns the very same output
// nodes: comparing them is one identity test per leaf. The second trace costs about as much as
// the first (less what the context caches, like taps), small beside compiling the program.
import { GrngError } from '../core/errors.js';
import { flattenTree, type Tree } from '../core/tree.js';
import { isTensor, type Tensor } from '../dsl/tensor.js';

/** An update's result as the check sees it. */
export interface Traced {
  readonly params: Tree<Tensor>;
  readonly state: unknown;
}

/**
 * Calls `trace` twice and returns the first result; a GrngError naming `name` when the two differ
 * (the first leaf that does is named).
 */
export function tracePure<R extends Traced>(name: string, trace: () => R): R {
  const first = trace();
  // Date.now counts milliseconds: wait (under a millisecond, 2 ms at most) until it moves past its
  // value at the end of the first trace, so an update reading the clock sees two values.
  const clock = Date.now();
  const until = performance.now() + 2;
  while (Date.now() === clock && performance.now() < until) {
    // spin: the trace is synchronous, so there is nothing to yield to
  }
  const second = trace();
  const difference =
    firstDifference(name, 'parameters', first.params, second.params) ??
    firstDifference(name, 'state', first.state, second.state);
  if (difference !== undefined)
    throw new GrngError(
      name,
      `update is not pure: traced twice on the same inputs it gave two different graphs ` +
        `(${difference}), and a compiled step replays one trace forever, so whatever changed ` +
        `between the calls (a counter kept outside update, Math.random, Date, ` +
        `performance.now) would be frozen into it. Keep what changes between steps in the ` +
        `optimizer's state, use ctx.key with grng's random functions (uniform, normal, …) ` +
        `and ctx.t for the step number; grng compile FILE --check names the line`,
    );
  return first;
}

/** Where two traced trees first differ, in words, or undefined when they are the same graph. */
function firstDifference(op: string, what: string, a: unknown, b: unknown): string | undefined {
  const x = flattenTree(op, a, isTensor, 'a Tensor');
  const y = flattenTree(op, b, isTensor, 'a Tensor');
  const n = Math.max(x.leaves.length, y.leaves.length);
  for (let i = 0; i < n; i++) {
    if (x.paths[i] !== y.paths[i])
      return (
        `the updated ${what} have two structures: leaf ${i + 1} is ` +
        `${shown(x.paths[i])}, then ${shown(y.paths[i])}`
      );
    if (x.leaves[i].node !== y.leaves[i].node)
      return `the updated ${what}${x.paths[i] === '' ? '' : ` at ${x.paths[i]}`} differ`;
  }
  return undefined;
}

const shown = (path: string | undefined): string =>
  path === undefined ? 'missing' : path === '' ? 'the whole tree' : `at ${path}`;
