// Kernels loop a bounded number of times per invocation. Mesa's llvmpipe (the software adapter
// WebGPU falls back to) stops every shader invocation's loops after 65535 iterations in all
// (gallivm's loop limiter, LP_MAX_TGSI_LOOP_ITERATIONS), silently: a sum over 5M elements came
// out as the sum of its first 131070. So work that one invocation would loop over longer is
// rewritten before partitioning into pieces that stay within LOOP_BUDGET (half the limit):
// - a reduction over R elements per output, whose wide kernel loops R / lanes times per lane:
//   over chunks of `lanes`·LOOP_BUDGET/2 elements first, then over the chunks' results;
// - a product over k > LOOP_BUDGET/2 (its kernel loops over k): a batched product over chunks of
//   k, summed.
// Both change the order of additions only (the float32 interpreter sums in another order anyway;
// i32 sums wrap alike in any order).
import { emit } from '../../core/ir/builder.js';
import { topoSort, type Node } from '../../core/ir/node.js';

/** Loop iterations one kernel invocation may run (llvmpipe's limit is 65535). */
export const LOOP_BUDGET = 2 ** 15;

/**
 * `outputs` with long reductions and long products split (see the file comment); `lanes` is the
 * wide-reduction kernel's lanes per output.
 */
export function splitLongLoops(outputs: readonly Node[], lanes: number): Node[] {
  const rebuilt = new Map<number, Node>();
  const get = (n: Node) => rebuilt.get(n.id) ?? n;
  for (const n of topoSort(outputs)) {
    const inputs = n.inputs.map(get);
    let out: Node = inputs.some((x, i) => x !== n.inputs[i]) ? emit(n.op, inputs, n.attrs) : n;
    if (out.op === 'reduceSum' || out.op === 'reduceMax')
      out = splitReduction(out as Node<'reduceSum'>, (lanes * LOOP_BUDGET) / 2);
    else if (out.op === 'matmul') out = splitProduct(out, LOOP_BUDGET / 2);
    if (out !== n) rebuilt.set(n.id, out);
  }
  return outputs.map(get);
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** reduce(x, [last axis]) of the node's kind, then the same combine of two results. */
function reducer(node: Node<'reduceSum' | 'reduceMax'>) {
  const op = node.op;
  return {
    last: (x: Node) => emit(op, [x], { axes: [x.shape.length - 1] }),
    combine: (a: Node, b: Node) => emit(op === 'reduceSum' ? 'add' : 'max', [a, b], {}),
  };
}

/** x cut along `axis` to [from, to). */
function cut(x: Node, axis: number, from: number, to: number): Node {
  const starts = x.shape.map((_, i) => (i === axis ? from : 0));
  const ends = x.shape.map((d, i) => (i === axis ? to : d));
  return emit('slice', [x], { starts, ends });
}

/** A reduction over more than `chunk` elements per output, over chunks of `chunk` first. */
function splitReduction(node: Node<'reduceSum' | 'reduceMax'>, chunk: number): Node {
  const x = node.inputs[0];
  const { axes } = node.attrs;
  const count = axes.reduce((n, a) => n * x.shape[a], 1);
  if (count <= chunk) return node;
  const kept = range(x.shape.length).filter((a) => !axes.includes(a));
  const keptShape = kept.map((a) => x.shape[a]);
  const perm = [...kept, ...axes];
  const moved = perm.every((p, i) => p === i) ? x : emit('permute', [x], { perm });
  const flat = emit('reshape', [moved], { shape: [...keptShape, count] });
  const { last, combine } = reducer(node);
  const chunks = Math.floor(count / chunk);
  const axis = keptShape.length;
  const whole = emit('reshape', [cut(flat, axis, 0, chunks * chunk)], {
    shape: [...keptShape, chunks, chunk],
  });
  const head = last(last(whole));
  return chunks * chunk === count
    ? head
    : combine(head, last(cut(flat, axis, chunks * chunk, count)));
}

/** [..., m, k] × [..., k, n] with k > `chunk`: a batched product over chunks of k, summed. */
function splitProduct(node: Node, chunk: number): Node {
  const [a, b] = node.inputs;
  const r = a.shape.length;
  const [m, k] = a.shape.slice(r - 2);
  const n = b.shape[r - 1];
  if (k <= chunk) return node;
  const batch = a.shape.slice(0, r - 2);
  const chunks = Math.floor(k / chunk);
  const end = chunks * chunk;
  // a: [..., m, C·q] → [..., m, C, q] → [..., C, m, q]; b: [..., C·q, n] → [..., C, q, n].
  const aChunks = emit(
    'permute',
    [emit('reshape', [cut(a, r - 1, 0, end)], { shape: [...batch, m, chunks, chunk] })],
    { perm: [...range(r - 2), r - 1, r - 2, r] },
  );
  const bChunks = emit('reshape', [cut(b, r - 2, 0, end)], { shape: [...batch, chunks, chunk, n] });
  const head = emit('reduceSum', [emit('matmul', [aChunks, bChunks], {})], { axes: [r - 2] });
  if (end === k) return head;
  const tail = emit('matmul', [cut(a, r - 1, end, k), cut(b, r - 2, end, k)], {});
  return emit('add', [head, tail], {});
}
