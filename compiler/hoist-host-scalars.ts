// Per-call scalar work moved to the host: a one-element value computed only from one-element
// inputs the caller knows on the host (hyperparameters and the step number, passed as numbers) and
// from literals — Adam's bias corrections 1 − β^t, AdamW's 1 − η·λ — is evaluated once per call
// by the device runtime and read by the kernels from the scalars uniform, instead of by every
// invocation of every kernel that uses it.
import { emit } from '../core/ir/builder.js';
import { topoSort, type Node } from '../core/ir/node.js';
import type { Primitive } from '../core/ir/primitives.js';
import { shapeSize } from '../core/ir/shape.js';

/** A hoisted value: the one-element input kernels read in its place, and the value's graph. */
export interface HostScalar {
  readonly placeholder: Node<'input'>;
  readonly value: Node;
}

/**
 * Primitives evaluated on the host: f32 arithmetic, comparisons and selections, and movements of a
 * one-element array. Bit operations (random-number hashing) stay on the device.
 */
const HOSTABLE = new Set<Primitive>([
  'constant',
  'neg',
  'exp',
  'log',
  'sqrt',
  'rsqrt',
  'recip',
  'sin',
  'cos',
  'tanh',
  'erf',
  'abs',
  'sign',
  'floor',
  'cast',
  'stopGradient',
  'add',
  'sub',
  'mul',
  'div',
  'pow',
  'max',
  'min',
  'lt',
  'le',
  'gt',
  'ge',
  'eq',
  'ne',
  'select',
  'reshape',
  'permute',
  'broadcast',
]);

/** Operations that cost a kernel many arithmetic ones. */
const COSTLY = new Set<Primitive>([
  'exp',
  'log',
  'sqrt',
  'rsqrt',
  'recip',
  'div',
  'pow',
  'sin',
  'cos',
  'tanh',
  'erf',
]);

/** The least cost (see `costOf`) a value must have to be hoisted. */
const MIN_COST = 3;

/** Name of the input that stands for a hoisted value (never a traced input's name). */
const hostScalarName = (value: Node): string => `%host${value.id}`;

/**
 * Rewrites `outputs` so that every f32 one-element value computed from `known` inputs and
 * literals alone, and read by something that is not, is read from an input of its own (named by
 * `hostScalarName`). Outputs themselves stay computed on the device. At most `max` values are
 * hoisted (each takes a uniform cell).
 */
export function hoistHostScalars(
  outputs: readonly Node[],
  known: ReadonlySet<number>,
  max: number,
): { outputs: Node[]; hoisted: HostScalar[] } {
  const order = topoSort(outputs);
  const host = new Set<number>();
  for (const n of order) {
    const computable =
      n.op === 'input'
        ? known.has(n.id) && shapeSize(n.shape) === 1
        : HOSTABLE.has(n.op) &&
          shapeSize(n.shape) === 1 &&
          (n.op !== 'constant' || 'value' in n.attrs) &&
          n.inputs.every((x) => host.has(x.id));
    if (computable) host.add(n.id);
  }
  // What computing a host value costs a kernel invocation, in arithmetic operations (a
  // transcendental or a division counts as many).
  const cost = new Map<number, number>();
  const costOf = (n: Node): number => {
    let c = cost.get(n.id);
    if (c === undefined) {
      const own = n.op === 'input' || n.op === 'constant' ? 0 : COSTLY.has(n.op) ? 8 : 1;
      cost.set(n.id, (c = own + n.inputs.reduce((sum, x) => sum + costOf(x), 0)));
    }
    return c;
  };
  // Worth a cell: f32 values read by device work that cost more than reading the cell, a uniform
  // load through the offsets uniform (measured on llvmpipe: hoisting 1 − β1 made AdamW slower).
  const frontier = new Set<number>();
  for (const n of order) {
    if (host.has(n.id)) continue;
    for (const x of n.inputs)
      if (host.has(x.id) && x.dtype === 'f32' && costOf(x) >= MIN_COST) frontier.add(x.id);
  }
  const hoisted: HostScalar[] = [];
  const replaced = new Map<number, Node>();
  for (const n of order) {
    if (!frontier.has(n.id) || hoisted.length >= max) continue;
    const placeholder = emit('input', [], {
      name: hostScalarName(n),
      shape: [...n.shape],
      dtype: n.dtype,
    });
    hoisted.push({ placeholder, value: n });
    replaced.set(n.id, placeholder);
  }
  if (hoisted.length === 0) return { outputs: [...outputs], hoisted };
  // Rebuild the device side over the placeholders (the host side keeps its own nodes).
  const rebuilt = new Map<number, Node>();
  const rebuild = (n: Node): Node => rebuilt.get(n.id) ?? n;
  for (const n of order) {
    if (host.has(n.id)) continue;
    const inputs = n.inputs.map((x) => replaced.get(x.id) ?? rebuild(x));
    if (inputs.some((x, i) => x !== n.inputs[i])) rebuilt.set(n.id, emit(n.op, inputs, n.attrs));
  }
  return { outputs: outputs.map(rebuild), hoisted };
}
