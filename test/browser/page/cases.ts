// Programs the page runs on each device, through the public API only. Sizes are odd on
// purpose (17, 37, 41, 65) so no kernel gets away with assuming multiples of 4 or of a workgroup.
import {
  add,
  array,
  crossEntropy,
  div,
  exp,
  grad,
  jit,
  matmul,
  mul,
  pow,
  relu,
  softmax,
  sqrt,
  square,
  sub,
  sum,
  tanh,
  type Device,
  type DeviceArray,
  type Tensor,
} from '../../../index.js';

export interface CaseRun {
  readonly outputs: Float64Array[];
  /** Inputs donated to a call that were not consumed by it (must be none). */
  readonly unconsumed: number;
}

export interface Case {
  readonly name: string;
  run(device: Device): Promise<CaseRun>;
}

/**
 * Deterministic uniform values (a 32-bit LCG), so both devices and every run see the same inputs.
 */
function uniform(seed: number, n: number, lo: number, hi: number): Float64Array {
  let s = seed >>> 0;
  return Float64Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + ((hi - lo) * s) / 2 ** 32;
  });
}

const readAll = (xs: readonly DeviceArray[]): Promise<Float64Array[]> =>
  Promise.all(xs.map((x) => x.read()));

const elementwise: Case = {
  name: 'elementwise chain with broadcast [5,41]⊕[41]',
  async run(device) {
    const f = (x: Tensor, y: Tensor) =>
      sub(
        mul(tanh(add(mul(x, y), exp(mul(x, -0.5)))), sqrt(add(square(y), 1))),
        div(relu(sub(x, y)), add(square(x), 1)),
      );
    const out = await jit(f, { device })(
      array(uniform(1, 5 * 41, -2, 2), [5, 41]),
      array(uniform(2, 41, -2, 2), [41]),
    );
    return { outputs: await readAll([out]), unconsumed: 0 };
  },
};

const softmaxRows: Case = {
  name: 'softmax [7,65] and its cross-entropy gradient',
  async run(device) {
    const labels = array(
      Int32Array.from({ length: 7 }, (_, i) => (i * 9) % 65),
      [7],
    );
    const f = (z: Tensor, y: Tensor) => [softmax(z), grad((u: Tensor) => crossEntropy(u, y))(z)];
    const outs = (await jit(f, { device })(
      array(uniform(3, 7 * 65, -4, 4), [7, 65]),
      labels,
    )) as DeviceArray[];
    return { outputs: await readAll(outs), unconsumed: 0 };
  },
};

const smallMatmul: Case = {
  name: 'relu(17×3 · 3×65 + bias) and its sum',
  async run(device) {
    const f = (a: Tensor, b: Tensor, bias: Tensor) => {
      const h = relu(add(matmul(a, b), bias));
      return [h, sum(h)];
    };
    const outs = (await jit(f, { device })(
      array(uniform(4, 17 * 3, -1, 1), [17, 3]),
      array(uniform(5, 3 * 65, -1, 1), [3, 65]),
      array(uniform(6, 65, -0.5, 0.5), [65]),
    )) as DeviceArray[];
    return { outputs: await readAll(outs), unconsumed: 0 };
  },
};

const B1 = 0.9;
const B2 = 0.999;

/** Adam with bias correction; lr and the step t are scalar inputs, not constants. */
function adamStep(p: Tensor, m: Tensor, v: Tensor, g: Tensor, lr: Tensor, t: Tensor): Tensor[] {
  const m1 = add(mul(m, B1), mul(g, 1 - B1));
  const v1 = add(mul(v, B2), mul(square(g), 1 - B2));
  const mHat = div(m1, sub(1, pow(B1, t)));
  const vHat = div(v1, sub(1, pow(B2, t)));
  return [sub(p, div(mul(lr, mHat), add(sqrt(vHat), 1e-8))), m1, v1];
}

const adam: Case = {
  name: 'Adam, 3 steps on [37,5] with params and state donated',
  async run(device) {
    const step = jit(adamStep, { device, donate: [0, 1, 2] });
    const n = 37 * 5;
    let state = [uniform(7, n, -1, 1), new Float64Array(n), new Float64Array(n)].map((x) =>
      device.upload(x, [37, 5], 'f32'),
    );
    let unconsumed = 0;
    for (let t = 1; t <= 3; t++) {
      const next = (await step(
        state[0],
        state[1],
        state[2],
        array(uniform(10 + t, n, -1, 1), [37, 5]),
        0.01,
        t,
      )) as DeviceArray[];
      unconsumed += state.filter((x) => !x.consumed).length;
      state = next;
    }
    return { outputs: await readAll(state), unconsumed };
  },
};

export const CASES: readonly Case[] = [elementwise, softmaxRows, smallMatmul, adam];
