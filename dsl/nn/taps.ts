import { GrngError } from '../../core/errors.js';
import type { Node } from '../../core/ir/node.js';
import { isTensor, type Tensor } from '../tensor.js';

/**
 * A dense layer's curvature tap (docs/algorithms.md §2): its input activations `a` (B × d_in, with
 * a ones column appended when the layer has a bias) and its pre-activations `s` (B × d_out). The
 * per-sample pre-activation gradients g = B·∂L/∂s come from differentiating through a probe added
 * to `s` (see recordTaps), as kfac-jax's layer tags do.
 */
export interface DenseTap {
  readonly name: string;
  readonly a: Tensor;
  readonly s: Tensor;
  /**
   * The layer's parameters as passed to it (W [out, in], and b when it has a bias): how curvature
   * methods find what to precondition.
   */
  readonly w: Tensor;
  readonly b?: Tensor;
}

interface Tape {
  readonly taps: DenseTap[];
  readonly probes: readonly Tensor[] | undefined;
}

let active: Tape | undefined;

/**
 * Runs `f` recording every dense layer it applies. With `probes` (one per layer, shaped like its
 * pre-activations, in order), layer i's pre-activations become s + probes[i]: the gradient of the
 * loss with respect to the probes is then the pre-activation gradient.
 */
export function recordTaps<R>(
  f: () => R,
  probes?: readonly Tensor[],
): { result: R; taps: DenseTap[] } {
  if (typeof f !== 'function')
    throw new GrngError('recordTaps', `expected a function to run, got ${typeof f}`);
  if (probes !== undefined && (!Array.isArray(probes) || !probes.every(isTensor)))
    throw new GrngError(
      'recordTaps',
      'probes must be an array of Tensors (one per dense layer, shaped like its pre-activations)',
    );
  const outer = active;
  const tape: Tape = { taps: [], probes };
  active = tape;
  try {
    return { result: f(), taps: tape.taps };
  } finally {
    active = outer;
  }
}

let frozen: ReadonlySet<Node> = new Set();

/**
 * Runs `f` without recording the layers whose weight node is in `weights`: frozen layers, which no
 * optimizer preconditions (their statistics and probes would be dead work).
 */
export function withoutTapsOf<R>(weights: ReadonlySet<Node>, f: () => R): R {
  const outer = frozen;
  frozen = new Set([...outer, ...weights]);
  try {
    return f();
  } finally {
    frozen = outer;
  }
}

/** Called by dense layers: records the tap and returns the (probed) pre-activations. */
export function tapDense(
  name: string,
  a: Tensor,
  s: Tensor,
  probe: (s: Tensor, p: Tensor) => Tensor,
  params: { w: Tensor; b?: Tensor },
): Tensor {
  if (active === undefined || frozen.has(params.w.node)) return s;
  const probes = active.probes;
  const i = active.taps.length;
  active.taps.push({ name, a, s, w: params.w, b: params.b });
  return probes === undefined || probes[i] === undefined ? s : probe(s, probes[i]);
}
