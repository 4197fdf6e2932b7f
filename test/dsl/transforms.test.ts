// Semantics of the transform API (grad, valueAndGrad, vjp, jvp, hvp), JAX-style: argnums,
// pytree arguments and results, closures, nesting without perturbation confusion, and
// hash-consing; plus grng/testing's checkGradient.
//
// Expected values are closed-form derivatives written here and evaluated in float64 next to
// the interpreter's float64 evaluation of the transformed graph. They agree up to association
// order: a few ulps on values of size ≤ 1e2, so TOL = 1e-12 (scaled error) has ample headroom
// and is still ~10 orders below a wrong derivative.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  add,
  array,
  createDevice,
  exp,
  grad,
  GrngError,
  hvp,
  input,
  jit,
  jvp,
  matmul,
  mul,
  sin,
  square,
  stopGradient,
  sum,
  tanh,
  valueAndGrad,
  vjp,
  type Tensor,
} from '../../index.js';
import { checkGradient } from '../../testing.js';
import { interpret } from '../../runtime/interpreter.js';
import { maxScaledError } from '../support/numeric.js';
import { prng, uniform } from '../support/random.js';

const TOL = 1e-12;

/** Evaluates tensors built from named inputs on the float64 interpreter. */
function evaluate(
  tensors: readonly Tensor[],
  env: Record<string, ArrayLike<number>>,
): Float64Array[] {
  return interpret(
    tensors.map((t) => t.node),
    new Map(Object.entries(env).map(([k, v]) => [k, Float64Array.from(v)] as const)),
  );
}
const value = (t: Tensor, env: Record<string, ArrayLike<number>>): Float64Array =>
  evaluate([t], env)[0];

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = TOL): void {
  expect(actual.length).toBe(expected.length);
  const err = maxScaledError(actual, expected);
  if (!(err <= tol))
    throw new Error(
      `max scaled error ${err} > ${tol}\n actual   ` +
        `${Array.from(actual).join(', ')}\n expected ` +
        `${Array.from(expected).join(', ')}`,
    );
}
const map = (a: ArrayLike<number>, f: (v: number, i: number) => number): number[] =>
  Array.from(a, f);

describe('grad and argnums', () => {
  const x = input('x', [3]);
  const y = input('y', [3]);
  const z = input('z', [3]);
  const env = { x: [0.5, -1, 2], y: [1.5, 0.25, -0.75], z: [-2, 3, 0.5] };
  // f(x, y, z) = Σ x²·y + sin(z)·y
  const f = (a: Tensor, b: Tensor, c: Tensor) => sum(add(mul(square(a), b), mul(sin(c), b)));
  const dx = map(env.x, (v, i) => 2 * v * env.y[i]);
  const dy = map(env.x, (v, i) => v * v + Math.sin(env.z[i]));
  const dz = map(env.z, (v, i) => Math.cos(v) * env.y[i]);

  test('default argnums is 0; a number picks one argument and returns one gradient', () => {
    expectClose(value(grad(f)(x, y, z), env), dx);
    const gy: Tensor = grad(f, 1)(x, y, z);
    expect(gy.shape).toEqual([3]);
    expectClose(value(gy, env), dy);
    expectClose(value(grad(f, 2)(x, y, z), env), dz);
  });

  test('an array of argnums returns a tuple of gradients in that order', () => {
    const [gz, gx] = grad(f, [2, 0])(x, y, z);
    expectClose(value(gz, env), dz);
    expectClose(value(gx, env), dx);
    const single = grad(f, [1])(x, y, z);
    expect(Array.isArray(single)).toBe(true);
    expect(single).toHaveLength(1);
    expectClose(value(single[0], env), dy);
  });

  test('valueAndGrad returns f(x) and the gradient', () => {
    const [v, g] = valueAndGrad(f)(x, y, z);
    expect(v.shape).toEqual([]);
    const expected = env.x.reduce(
      (s, a, i) => s + a * a * env.y[i] + Math.sin(env.z[i]) * env.y[i],
      0,
    );
    expectClose(value(v, env), [expected]);
    expectClose(value(g, env), dx);
    const [v2, [gy, gz]] = valueAndGrad(f, [1, 2])(x, y, z);
    expectClose(value(v2, env), [expected]);
    expectClose(value(gy, env), dy);
    expectClose(value(gz, env), dz);
  });

  test('the gradient of an argument f does not use is zero', () => {
    const g = grad((a: Tensor, _b: Tensor) => sum(exp(a)), 1)(x, y);
    expect(Array.from(value(g, env))).toEqual([0, 0, 0]);
  });
});

describe('pytrees', () => {
  // A type alias, not an interface: interfaces have no implicit index signature, so TS does not
  // consider them trees of tensors.
  type Params = {
    readonly dense: { readonly w: Tensor; readonly b: Tensor };
    readonly scales: readonly [Tensor, Tensor];
  };
  const params: Params = {
    dense: { w: input('w', [2, 3]), b: input('b', [3]) },
    scales: [input('s0', []), input('s1', [3])],
  };
  const xIn = input('xin', [4, 2]);
  const rng = prng(11);
  const env = {
    w: uniform(rng, 6),
    b: uniform(rng, 3),
    s0: uniform(rng, 1),
    s1: uniform(rng, 3),
    xin: uniform(rng, 8),
  };
  // loss(p, x) = s0 · Σ_{n,j} s1_j · tanh((x W + b)_{nj})
  const loss = (p: Params, x: Tensor) =>
    mul(p.scales[0], sum(mul(tanh(add(matmul(x, p.dense.w), p.dense.b)), p.scales[1])));

  /** Independent float64 forward pass and gradients of `loss`. */
  function reference() {
    const { w, b, s0, s1, xin } = env;
    const gw = new Array<number>(6).fill(0);
    const gb = new Array<number>(3).fill(0);
    const gs1 = new Array<number>(3).fill(0);
    let inner = 0;
    for (let n = 0; n < 4; n++) {
      for (let j = 0; j < 3; j++) {
        const pre = xin[2 * n] * w[j] + xin[2 * n + 1] * w[3 + j] + b[j];
        const t = Math.tanh(pre);
        inner += s1[j] * t;
        gs1[j] += s0[0] * t;
        const d = s0[0] * s1[j] * (1 - t * t);
        gb[j] += d;
        gw[j] += xin[2 * n] * d;
        gw[3 + j] += xin[2 * n + 1] * d;
      }
    }
    return { value: s0[0] * inner, gw, gb, gs0: inner, gs1 };
  }

  test('grad of a nested object/array argument has the same structure, shapes and values', () => {
    const g = grad(loss)(params, xIn);
    expect(Object.keys(g).sort()).toEqual(['dense', 'scales']);
    expect(Object.keys(g.dense).sort()).toEqual(['b', 'w']);
    expect(Array.isArray(g.scales)).toBe(true);
    expect(g.scales).toHaveLength(2);
    expect([g.dense.w.shape, g.dense.b.shape, g.scales[0].shape, g.scales[1].shape]).toEqual([
      [2, 3],
      [3],
      [],
      [3],
    ]);
    const ref = reference();
    const [gw, gb, gs0, gs1] = evaluate([g.dense.w, g.dense.b, g.scales[0], g.scales[1]], env);
    expectClose(gw, ref.gw);
    expectClose(gb, ref.gb);
    expectClose(gs0, [ref.gs0]);
    expectClose(gs1, ref.gs1);
  });

  test('valueAndGrad on a tree, through jit with tree arguments and results', async () => {
    const device = await createDevice({ kind: 'cpu' });
    const step = jit(
      (p: Params, x: Tensor) => {
        const [v, g] = valueAndGrad(loss)(p, x);
        return { loss: v, grads: g };
      },
      { device },
    );
    const hostParams = {
      dense: { w: array(env.w, [2, 3]), b: array(env.b, [3]) },
      scales: [array(env.s0, []), array(env.s1, [3])],
    };
    const out = (await step(hostParams, array(env.xin, [4, 2]))) as unknown as {
      loss: { read(): Promise<Float64Array>; shape: readonly number[] };
      grads: {
        dense: {
          w: { read(): Promise<Float64Array>; shape: readonly number[] };
          b: { read(): Promise<Float64Array> };
        };
        scales: { read(): Promise<Float64Array> }[];
      };
    };
    const ref = reference();
    expect(out.loss.shape).toEqual([]);
    expectClose(await out.loss.read(), [ref.value]);
    expect(out.grads.dense.w.shape).toEqual([2, 3]);
    expectClose(await out.grads.dense.w.read(), ref.gw);
    expectClose(await out.grads.dense.b.read(), ref.gb);
    expectClose(await out.grads.scales[0].read(), [ref.gs0]);
    expectClose(await out.grads.scales[1].read(), ref.gs1);
  });

  test(
    'object keys are order-independent: {b, a} and {a, b} give the same ' + 'gradients by name',
    () => {
      const a = input('ka', [2]);
      const b = input('kb', [2]);
      const h = (p: { a: Tensor; b: Tensor }) => sum(mul(mul(p.a, p.a), p.b));
      const g1 = grad(h)({ a, b });
      const g2 = grad(h)({ b, a });
      expect(g1.a.node).toBe(g2.a.node);
      expect(g1.b.node).toBe(g2.b.node);
      const e = { ka: [1, 2], kb: [3, 4] };
      expectClose(value(g1.a, e), [6, 16]);
      expectClose(value(g1.b, e), [1, 4]);
    },
  );
});

describe('vjp, jvp and hvp on trees', () => {
  const x = input('x', [3]);
  const env = { x: [0.3, -1.2, 2], ca: [1.5], cb0: [1, -2, 0.5], cb1: [0.25, 2, -1] };

  test(
    'vjp with a tree output: the pullback takes a cotangent tree and ' + 'returns one per primal',
    () => {
      const f = (t: Tensor) => ({ a: sum(t), b: [mul(t, 2), exp(t)] as [Tensor, Tensor] });
      const [out, pullback] = vjp(f, x);
      expectClose(value(out.a, env), [env.x.reduce((s, v) => s + v, 0)]);
      expectClose(value(out.b[1], env), map(env.x, Math.exp));
      const [gx] = pullback({ a: input('ca', []), b: [input('cb0', [3]), input('cb1', [3])] });
      const expected = map(env.x, (v, i) => env.ca[0] + 2 * env.cb0[i] + env.cb1[i] * Math.exp(v));
      expectClose(value(gx, env), expected);
    },
  );

  test('vjp with two primals returns a tuple of cotangents', () => {
    const y = input('y', [3]);
    const [, pullback] = vjp((a: Tensor, b: Tensor) => mul(a, sin(b)), x, y);
    const [ga, gb] = pullback(input('cb0', [3]));
    const e = { ...env, y: [0.1, 0.2, 0.3] };
    expectClose(
      value(ga, e),
      map(e.y, (v, i) => env.cb0[i] * Math.sin(v)),
    );
    expectClose(
      value(gb, e),
      map(e.y, (v, i) => env.cb0[i] * env.x[i] * Math.cos(v)),
    );
  });

  test('jvp with tree primals and tangents', () => {
    type Layer = { readonly w: Tensor; readonly b: Tensor };
    const layer: Layer = { w: input('w', [2, 2]), b: input('b', [2]) };
    const dLayer: Layer = { w: input('dw', [2, 2]), b: input('db', [2]) };
    const xin = input('xi', [2]);
    const dx = input('dx', [2]);
    // f(layer, x) = { y: x W + b, s: Σ (x W + b)² }
    const f = (p: Layer, v: Tensor) => {
      const yv = add(matmul(v, p.w), p.b);
      return { y: yv, s: sum(square(yv)) };
    };
    const [primal, tangent] = jvp(f, [layer, xin], [dLayer, dx]);
    const e = {
      w: [1, 2, -1, 0.5],
      b: [0.1, -0.2],
      xi: [0.7, -0.3],
      dw: [0.5, 0, 1, -1],
      db: [1, 2],
      dx: [-0.4, 0.9],
    };
    const yRef = [0, 1].map((j) => e.xi[0] * e.w[j] + e.xi[1] * e.w[2 + j] + e.b[j]);
    const dyRef = [0, 1].map(
      (j) =>
        e.dx[0] * e.w[j] +
        e.dx[1] * e.w[2 + j] +
        e.xi[0] * e.dw[j] +
        e.xi[1] * e.dw[2 + j] +
        e.db[j],
    );
    expectClose(value(primal.y, e), yRef);
    expectClose(value(primal.s, e), [yRef[0] ** 2 + yRef[1] ** 2]);
    expectClose(value(tangent.y, e), dyRef);
    expectClose(value(tangent.s, e), [2 * (yRef[0] * dyRef[0] + yRef[1] * dyRef[1])]);
  });

  test('hvp on a tree matches the closed-form Hessian', () => {
    // f(p) = Σ a²·b + Σ sin(b): H_aa = diag(2b), H_ab = diag(2a), H_bb = diag(−sin b).
    const f = (p: { a: Tensor; b: Tensor }) => add(sum(mul(square(p.a), p.b)), sum(sin(p.b)));
    fc.assert(
      fc.property(fc.nat(), (seed) => {
        const rng = prng(seed);
        const e = {
          pa: uniform(rng, 3),
          pb: uniform(rng, 3),
          va: uniform(rng, 3),
          vb: uniform(rng, 3),
        };
        const hv = hvp(f)(
          { a: input('pa', [3]), b: input('pb', [3]) },
          { a: input('va', [3]), b: input('vb', [3]) },
        );
        const [ha, hb] = evaluate([hv.a, hv.b], e);
        expectClose(
          ha,
          map(e.pa, (a, i) => 2 * e.pb[i] * e.va[i] + 2 * a * e.vb[i]),
        );
        expectClose(
          hb,
          map(e.pa, (a, i) => 2 * a * e.va[i] - Math.sin(e.pb[i]) * e.vb[i]),
        );
      }),
      { numRuns: 20 },
    );
  });
});

describe('closures and nesting', () => {
  const x0 = input('x0', []);
  const c = input('c', []);
  const env = { x0: [1.7], c: [-0.6] };

  test('a closure over an outer tensor treats it as a constant', () => {
    const w = input('w', [3]);
    const x = input('x', [3]);
    const e = { w: [1, -2, 3], x: [0.5, 0.5, 2] };
    expectClose(value(grad((t: Tensor) => sum(mul(t, w)))(x), e), e.w);
    // Closing over the very tensor we differentiate at: d/dt Σ t·x at t = x is x, not 2x.
    expectClose(value(grad((t: Tensor) => sum(mul(t, x)))(x), e), e.x);
  });

  test('no perturbation confusion: d/dx [ d/dy (x·y) at y = c ] = 1', () => {
    const g = grad((x: Tensor) => grad((y: Tensor) => mul(x, y))(c))(x0);
    expectClose(value(g, env), [1]);
  });

  test('no perturbation confusion: d/dx [ x · d/dy (x + y) at y = x ] = 1', () => {
    // Siskind & Pearlmutter's example; confusing the two perturbations gives 2.
    const g = grad((x: Tensor) => mul(x, grad((y: Tensor) => add(x, y))(x)))(x0);
    expectClose(value(g, env), [1]);
  });

  test(
    'no confusion when the inner function computes a subexpression ' +
      'structurally equal to its argument',
    () => {
      // Inner: d/dy [ y · exp(x) ] at y = exp(x) is exp(x). Hash-consing makes the argument and the
      // inner exp(x) the same node; treating that node as the variable would give 2·exp(x).
      // Outer: d/dx exp(x) = exp(x).
      const inner = (x: Tensor) => grad((y: Tensor) => mul(y, exp(x)))(exp(x));
      expectClose(value(inner(x0), env), [Math.exp(1.7)]);
      expectClose(value(grad(inner)(x0), env), [Math.exp(1.7)]);
      // The same with the argument itself: d/dy [ y · x ] at y = x is x (not 2x); its x-derivative
      // is 1.
      const self = (x: Tensor) => grad((y: Tensor) => mul(y, x))(x);
      expectClose(value(self(x0), env), [1.7]);
      expectClose(value(grad(self)(x0), env), [1]);
    },
  );

  test('grad(grad(f)) for f(x) = x³ is 6x, and third order is 6', () => {
    const f = (x: Tensor) => mul(mul(x, x), x);
    const d1 = grad(f);
    const d2 = grad(d1);
    const d3 = grad(d2);
    fc.assert(
      fc.property(fc.double({ min: -10, max: 10, noNaN: true }), (v) => {
        const e = { x0: [v] };
        expectClose(value(d1(x0), e), [3 * v * v]);
        expectClose(value(d2(x0), e), [6 * v]);
        expectClose(value(d3(x0), e), [6]);
      }),
      { numRuns: 20 },
    );
    // Vector version: Σ of the gradient of Σ x³ is Σ 3x², whose gradient is 6x.
    const xv = input('xv', [3]);
    const g2 = grad((t: Tensor) => sum(grad((u: Tensor) => sum(mul(mul(u, u), u)))(t)))(xv);
    expectClose(value(g2, { xv: [1, -2, 0.5] }), [6, -12, 3]);
  });
});

describe('hash-consing', () => {
  test('equal expressions are the same node', () => {
    const x = input('hx', [2, 3]);
    const y = input('hy', [2, 3]);
    expect(x.add(y).node).toBe(x.add(y).node);
    expect(add(x, y).node).toBe(x.add(y).node);
    expect(exp(x.mul(y)).node).toBe(mul(x, y).exp().node);
    expect(input('hx', [2, 3]).node).toBe(x.node);
    // Different operand order or op is a different node.
    expect(x.add(y).node).not.toBe(y.add(x).node);
    expect(x.add(y).node).not.toBe(x.sub(y).node);
  });
});

describe('checkGradient (grng/testing)', () => {
  test('passes for a smooth function', async () => {
    const f = (w: Tensor, x: Tensor) =>
      sum(tanh(matmul(x, w)).mul(exp(w.sum(1, true).mul(0.1).neg()).sum()));
    const w = array(uniform(prng(21), 6), [3, 2]);
    const x = array(uniform(prng(22), 12), [4, 3]);
    const result = await checkGradient(f, [w, x]);
    // Default tolerances: |ad − fd| ≤ 1e-7 + 1e-6·|fd| (central differences with h = 1e-5).
    expect(result.maxAbsError).toBeLessThan(1e-7);
    expect(result.autodiff).toHaveLength(6);
    const byX = await checkGradient(f, [w, x], { argnum: 1 });
    expect(byX.autodiff).toHaveLength(12);
  });

  test(
    'throws a GrngError naming the element for a function whose derivative ' + 'is wrong',
    async () => {
      // stopGradient(g(x)) has g's value but zero gradient, so autodiff and finite differences
      // disagree.
      const wrong = (x: Tensor) => sum(stopGradient(square(x)));
      const x = array([0.5, -1.5, 2]);
      const err = await checkGradient(wrong, [x]).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(GrngError);
      const message = (err as GrngError).message;
      const m = /^checkGradient: element 0: autodiff (\S+) vs finite difference (\S+) /.exec(
        message,
      );
      expect(m, message).not.toBeNull();
      // autodiff is exactly 0; the central difference of x² at 0.5 is 2·0.5 = 1 up to rounding
      // ε·|f|/h ≈ 1e-11.
      expect(Number(m?.[1])).toBe(0);
      expect(Math.abs(Number(m?.[2]) - 1)).toBeLessThan(1e-8);
      expect(message).toMatch(/check the function's derivative/);
      // A subtler one: right value, derivative off by h'(x): f = g + stopGradient(h) − h.
      const subtle = (t: Tensor) =>
        sum(square(t))
          .add(stopGradient(sum(sin(t))))
          .sub(sum(sin(t)));
      await expect(checkGradient(subtle, [x])).rejects.toThrowError(GrngError);
    },
  );
});
