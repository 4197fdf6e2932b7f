import { builder as b, shapesEqual, type Node } from '../core/ir/index.js';
import { fmtShape, GrngError } from '../core/errors.js';
import { forwardGraph } from './autodiff/forward.js';
import { reverseGraph } from './autodiff/reverse.js';
import { substitute } from './autodiff/substitute.js';
import { Tensor, isTensor } from './tensor.js';
import { flattenTree, type Tree } from '../core/tree.js';

/** Arguments and results of transformed functions: tensors, or arrays/objects of tensors. */
export type TensorTree = Tree<Tensor>;

let placeholderCount = 0;

/**
 * A fresh input standing for `x` while a function is traced. Tracing on placeholders and
 * substituting the real arguments afterwards keeps nested transforms from mistaking an
 * argument for an equal subexpression elsewhere (perturbation confusion).
 */
function placeholder(op: string, x: Tensor): Node {
  if (x.dtype !== 'f32') {
    throw new GrngError(
      op,
      `can only differentiate with respect to f32 tensors, got ` +
        `${x.dtype}${fmtShape(x.shape)}; cast it or leave it out of argnums`,
    );
  }
  return b.input(`%d${placeholderCount++}`, x.shape, 'f32');
}

interface Traced {
  readonly outputs: readonly Node[];
  readonly rebuildOutputs: (nodes: readonly Node[]) => Tree<Tensor>;
  /** Per differentiated argument: its placeholders and real leaves. */
  readonly variables: readonly {
    placeholders: Node[];
    actual: Node[];
    rebuild: (nodes: readonly Node[]) => Tree<Tensor>;
  }[];
}

function trace(
  op: string,
  f: (...args: never[]) => unknown,
  args: readonly unknown[],
  argnums: readonly number[],
): Traced {
  argnums.forEach((n) => {
    if (!Number.isInteger(n) || n < 0 || n >= args.length) {
      throw new GrngError(
        op,
        `argnums ${n} is out of range: the function was called with ${args.length} argument(s)`,
      );
    }
  });
  const callArgs = [...args];
  const variables = argnums.map((n) => {
    const { leaves, rebuild } = flattenTree(op, args[n], isTensor, 'a Tensor');
    const placeholders = leaves.map((t) => placeholder(op, t));
    callArgs[n] = rebuild(placeholders.map((p) => new Tensor(p)));
    return {
      placeholders,
      actual: leaves.map((t) => t.node),
      rebuild: (nodes: readonly Node[]) => rebuild(nodes.map((x) => new Tensor(x))),
    };
  });
  const result = f(...(callArgs as never[]));
  const { leaves, rebuild } = flattenTree(op, result, isTensor, 'a Tensor (the function result)');
  return {
    outputs: leaves.map((t) => t.node),
    rebuildOutputs: (nodes) => rebuild(nodes.map((x) => new Tensor(x))),
    variables,
  };
}

/** Puts the real arguments back in place of the placeholders. */
function bindArguments(traced: Traced, nodes: readonly Node[]): Node[] {
  const mapping = new Map<number, Node>();
  for (const v of traced.variables)
    v.placeholders.forEach((p, i) => mapping.set(p.id, v.actual[i]));
  return substitute(nodes, mapping);
}

function scalarOutput(op: string, traced: Traced): Node {
  const [out] = traced.outputs;
  if (traced.outputs.length !== 1 || !(traced.rebuildOutputs(traced.outputs) instanceof Tensor)) {
    throw new GrngError(
      op,
      `the function must return one scalar Tensor, got ` +
        `${traced.outputs.length} tensor(s) in a tree`,
    );
  }
  if (out.shape.length !== 0 || out.dtype !== 'f32') {
    throw new GrngError(
      op,
      `the function must return a scalar f32 tensor, got ` +
        `${out.dtype}${fmtShape(out.shape)}; reduce it first, e.g. with sum() ` +
        `or mean()`,
    );
  }
  return out;
}

function valueAndGradImpl(
  op: string,
  f: (...args: never[]) => unknown,
  args: readonly unknown[],
  argnums: readonly number[],
) {
  const traced = trace(op, f, args, argnums);
  const out = scalarOutput(op, traced);
  const wrt = traced.variables.flatMap((v) => v.placeholders);
  const cts = reverseGraph([out], [b.fill(1, [], 'f32')], wrt).map(
    (c, i) => c ?? b.zerosLike(wrt[i]),
  );
  const [value, ...grads] = bindArguments(traced, [out, ...cts]);
  let k = 0;
  const trees = traced.variables.map((v) =>
    v.rebuild(grads.slice(k, (k += v.placeholders.length))),
  );
  return { value: new Tensor(value), trees };
}

type Fn<A extends readonly TensorTree[]> = (...args: A) => Tensor;
type Pick<A extends readonly unknown[], N extends readonly number[]> = {
  -readonly [K in keyof N]: A[N[K]];
};

/**
 * The gradient of a scalar function, as in JAX: `grad(f)(x)` has x's structure and shapes;
 * `argnums` picks which arguments (a number, or an array for a tuple of gradients).
 * Works on symbolic tensors, so it composes: grad(grad(f)), grad(x => sqnorm(grad(f)(x))).
 */
export function grad<A extends readonly TensorTree[], N extends number = 0>(
  f: Fn<A>,
  argnums?: N,
): (...args: A) => A[N];
export function grad<A extends readonly TensorTree[], const N extends readonly number[]>(
  f: Fn<A>,
  argnums: N,
): (...args: A) => Pick<A, N>;
export function grad(f: Fn<TensorTree[]>, argnums: number | readonly number[] = 0) {
  return (...args: TensorTree[]) => {
    const { trees } = valueAndGradImpl(
      'grad',
      f as (...a: never[]) => unknown,
      args,
      typeof argnums === 'number' ? [argnums] : argnums,
    );
    return typeof argnums === 'number' ? trees[0] : trees;
  };
}

/** `[f(x), grad(f)(x)]` from one trace. */
export function valueAndGrad<A extends readonly TensorTree[], N extends number = 0>(
  f: Fn<A>,
  argnums?: N,
): (...args: A) => [Tensor<[]>, A[N]];
export function valueAndGrad<A extends readonly TensorTree[], const N extends readonly number[]>(
  f: Fn<A>,
  argnums: N,
): (...args: A) => [Tensor<[]>, Pick<A, N>];
export function valueAndGrad(f: Fn<TensorTree[]>, argnums: number | readonly number[] = 0) {
  return (...args: TensorTree[]) => {
    const { value, trees } = valueAndGradImpl(
      'valueAndGrad',
      f as (...a: never[]) => unknown,
      args,
      typeof argnums === 'number' ? [argnums] : argnums,
    );
    return [value, typeof argnums === 'number' ? trees[0] : trees];
  };
}

function checkLike(
  op: string,
  what: string,
  given: readonly Tensor[],
  expected: readonly Node[],
): void {
  if (given.length !== expected.length)
    throw new GrngError(op, `${what}: expected ${expected.length} tensor(s), got ${given.length}`);
  given.forEach((t, i) => {
    if (!shapesEqual(t.shape, expected[i].shape) || t.dtype !== expected[i].dtype) {
      throw new GrngError(
        op,
        `${what} #${i} is ${t.dtype}${fmtShape(t.shape)} but must match ` +
          `${expected[i].dtype}${fmtShape(expected[i].shape)}`,
      );
    }
  });
}

/**
 * Reverse mode, as JAX's vjp: returns f(...primals) and a function mapping an output cotangent
 * (same structure as the output) to the primals' cotangents (same structure as the primals).
 */
export function vjp<A extends readonly TensorTree[], R extends TensorTree>(
  f: (...args: A) => R,
  ...primals: A
): [R, (cotangent: R) => A] {
  const traced = trace(
    'vjp',
    f as (...a: never[]) => unknown,
    primals,
    primals.map((_, i) => i),
  );
  const [out] = [traced.rebuildOutputs(bindArguments(traced, traced.outputs))];
  const pullback = (cotangent: R) => {
    const { leaves } = flattenTree('vjp', cotangent, isTensor, 'a Tensor');
    checkLike('vjp', 'cotangent', leaves, traced.outputs);
    const wrt = traced.variables.flatMap((v) => v.placeholders);
    const cts = reverseGraph(
      traced.outputs,
      leaves.map((t) => t.node),
      wrt,
    ).map((c, i) => c ?? b.zerosLike(wrt[i]));
    const bound = bindArguments(traced, cts);
    let k = 0;
    return traced.variables.map((v) =>
      v.rebuild(bound.slice(k, (k += v.placeholders.length))),
    ) as unknown as A;
  };
  return [out as R, pullback];
}

/**
 * Forward mode, as JAX's jvp: f(...primals) and its directional derivative along `tangents`
 * (one tree per primal, same structure and shapes).
 */
export function jvp<A extends readonly TensorTree[], R extends TensorTree>(
  f: (...args: A) => R,
  primals: A,
  tangents: A,
): [R, R] {
  if (primals.length !== tangents.length) {
    throw new GrngError(
      'jvp',
      `got ${primals.length} primal(s) but ${tangents.length} tangent(s); ` +
        `give one tangent per primal`,
    );
  }
  const traced = trace(
    'jvp',
    f as (...a: never[]) => unknown,
    primals,
    primals.map((_, i) => i),
  );
  const tangentLeaves = tangents.flatMap((t) => flattenTree('jvp', t, isTensor, 'a Tensor').leaves);
  const wrt = traced.variables.flatMap((v) => v.placeholders);
  checkLike('jvp', 'tangent', tangentLeaves, wrt);
  const outTangents = forwardGraph(
    traced.outputs,
    wrt,
    tangentLeaves.map((t) => t.node),
  ).map((t, i) => t ?? b.zerosLike(traced.outputs[i]));
  const bound = bindArguments(traced, [...traced.outputs, ...outTangents]);
  const n = traced.outputs.length;
  return [
    traced.rebuildOutputs(bound.slice(0, n)) as R,
    traced.rebuildOutputs(bound.slice(n)) as R,
  ];
}

/**
 * Hessian-vector product H(x)·v of a scalar function, forward-over-reverse:
 * jvp of grad(f) at x along v. `x` and `v` are trees of the same structure.
 */
export function hvp<T extends TensorTree>(f: (x: T) => Tensor): (x: T, v: T) => T {
  const gradient = grad(f as Fn<[TensorTree]>) as (x: TensorTree) => TensorTree;
  return (x, v) => {
    const xs = flattenTree('hvp', x, isTensor, 'a Tensor').leaves;
    const vs = flattenTree('hvp', v, isTensor, 'a Tensor').leaves;
    checkLike(
      'hvp',
      'direction v',
      vs,
      xs.map((t) => t.node),
    );
    return jvp(gradient, [x], [v])[1] as T;
  };
}
