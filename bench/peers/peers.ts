// The same workloads written for each peer: an Adam(W) update over a list of tensors, a square
// matmul and an MLP training step. Each loader returns the peer or the reason it cannot run here
// (reported, not dropped).
import type * as TfCore from '@tensorflow/tfjs-core';
import type * as Jax from '@jax-js/jax';
import type { AdamWHyper } from '../hand-written-adamw.js';

export type Peer<T> = { ok: true; lib: T; device: string } | { ok: false; error: string };

const reason = (error: unknown) =>
  (error instanceof Error ? error.message : String(error)).split('\n')[0];

export async function loadTfjs(): Promise<Peer<typeof TfCore>> {
  try {
    const tf = await import('@tensorflow/tfjs-core');
    // tfjs-core alone has no gradients registered (the tfjs bundle imports them).
    await import('@tensorflow/tfjs-core/dist/register_all_gradients.js');
    await import('@tensorflow/tfjs-backend-webgpu');
    if (!(await tf.setBackend('webgpu')))
      return { ok: false, error: 'tf.setBackend("webgpu") returned false' };
    await tf.ready();
    return { ok: true, lib: tf, device: 'webgpu' };
  } catch (error) {
    return { ok: false, error: reason(error) };
  }
}

export async function loadJax(device: 'webgpu' | 'wasm'): Promise<Peer<typeof Jax>> {
  try {
    const jax = await import('@jax-js/jax');
    const available = await jax.init(device);
    if (!available.includes(device))
      return {
        ok: false,
        error: `jax.init('${device}') did not offer it (got ${available.join(', ')})`,
      };
    return { ok: true, lib: jax, device };
  } catch (error) {
    return { ok: false, error: reason(error) };
  }
}

/**
 * TF.js: tf.train.adam's update (TF.js has no AdamW; Adam moves the same bytes) on one variable per
 * tensor; run() resolves when done.
 */
export function tfAdam(
  tf: typeof TfCore,
  sizes: readonly number[],
  h: AdamWHyper,
): { run(): Promise<void> } {
  const vars = sizes.map((n) => tf.variable(tf.randomNormal([n])));
  const grads = vars.map((v) => ({ name: v.name, tensor: tf.randomNormal(v.shape) }));
  const optimizer = tf.train.adam(h.lr, h.beta1, h.beta2, h.eps);
  return {
    async run() {
      optimizer.applyGradients(grads);
      // One-element reads of every variable order after the update without copying it back.
      const probes = vars.map((v) => tf.slice(v, [0], [1]));
      await Promise.all(probes.map((p) => p.data()));
      probes.forEach((p) => p.dispose());
    },
  };
}

/**
 * jax-js: one jitted AdamW step over lists of θ, m, v (donated each call, as jax-js arrays are
 * consumed).
 */
export function jaxAdamW(
  jax: typeof Jax,
  sizes: readonly number[],
  h: AdamWHyper,
): { run(): Promise<void> } {
  const np = jax.numpy;
  const [c1, c2] = [1 - h.beta1 ** h.step, 1 - h.beta2 ** h.step];
  const one = (theta: Jax.Array, m: Jax.Array, v: Jax.Array, g: Jax.Array) => {
    const m1 = m.mul(h.beta1).add(g.ref.mul(1 - h.beta1));
    const v1 = v.mul(h.beta2).add(g.ref.mul(g).mul(1 - h.beta2));
    const update = m1.ref
      .div(c1)
      .div(np.sqrt(v1.ref.div(c2)).add(h.eps))
      .add(theta.ref.mul(h.weightDecay));
    return [theta.sub(update.mul(h.lr)), m1, v1];
  };
  const step = jax.jit((theta: Jax.Array[], m: Jax.Array[], v: Jax.Array[], g: Jax.Array[]) => {
    const next = theta.map((t, i) => one(t, m[i], v[i], g[i]));
    return [next.map((x) => x[0]), next.map((x) => x[1]), next.map((x) => x[2])];
  });
  let state = [
    sizes.map((n) => np.ones([n])),
    sizes.map((n) => np.zeros([n])),
    sizes.map((n) => np.zeros([n])),
  ];
  const g = sizes.map((n) => np.ones([n]).mul(0.5));
  return {
    async run() {
      state = step(
        state[0],
        state[1],
        state[2],
        g.map((x) => x.ref),
      ) as Jax.Array[][];
      // Extra references for the wait, released after it; `state` keeps its own.
      for (const a of await jax.blockUntilReady(state.flat().map((x) => x.ref))) a.dispose();
    },
  };
}

/** A k×k×k matmul per run, completion awaited. */
export function tfMatmul(tf: typeof TfCore, k: number): { run(): Promise<void> } {
  const a = tf.randomNormal([k, k]);
  const b = tf.randomNormal([k, k]);
  return {
    async run() {
      const c = tf.matMul(a, b);
      const probe = tf.slice(c, [0, 0], [1, 1]);
      await probe.data();
      probe.dispose();
      c.dispose();
    },
  };
}

export function jaxMatmul(jax: typeof Jax, k: number): { run(): Promise<void> } {
  const np = jax.numpy;
  const mm = jax.jit((x: Jax.Array, y: Jax.Array) => np.matmul(x, y));
  const a = np.ones([k, k]).mul(0.5);
  const b = np.ones([k, k]).mul(0.25);
  return {
    async run() {
      const c = mm(a.ref, b.ref) as Jax.Array;
      await jax.blockUntilReady(c.ref);
      c.dispose();
    },
  };
}

/** The MLP of the training-step benchmark: layer sizes, batch, and a fixed batch of inputs. */
export interface MlpSetup {
  readonly sizes: readonly number[];
  readonly batch: number;
}

/**
 * TF.js: forward, softmax cross-entropy, backward and tf.train.adam in optimizer.minimize; run()
 * reads the loss.
 */
export function tfMlpStep(tf: typeof TfCore, setup: MlpSetup): { run(): Promise<void> } {
  const { sizes, batch } = setup;
  const layers = sizes.slice(1).map((out, i) => ({
    w: tf.variable(tf.randomNormal([sizes[i], out], 0, 0.05)),
    b: tf.variable(tf.zeros([out])),
  }));
  const x = tf.randomUniform([batch, sizes[0]]);
  const y = tf.oneHot(
    tf.tensor1d(
      Array.from({ length: batch }, (_, i) => i % sizes[sizes.length - 1]),
      'int32',
    ),
    sizes[sizes.length - 1],
  );
  const optimizer = tf.train.adam(1e-3);
  const loss = () =>
    tf.tidy(() => {
      let h: TfCore.Tensor = x;
      layers.forEach((l, i) => {
        h = tf.add(tf.matMul(h as TfCore.Tensor2D, l.w as TfCore.Variable<TfCore.Rank.R2>), l.b);
        if (i < layers.length - 1) h = tf.relu(h);
      });
      return tf.neg(tf.mean(tf.sum(tf.mul(y, tf.logSoftmax(h)), -1))) as TfCore.Scalar;
    });
  return {
    async run() {
      const value = optimizer.minimize(loss, true) as TfCore.Scalar;
      await value.data();
      value.dispose();
    },
  };
}

/**
 * jax-js: one jitted step — value and gradient of the same loss, then Adam on every leaf; run()
 * reads the loss.
 */
export function jaxMlpStep(jax: typeof Jax, setup: MlpSetup): { run(): Promise<void> } {
  const np = jax.numpy;
  const { sizes, batch } = setup;
  const classes = sizes[sizes.length - 1];
  type Layer = { w: Jax.Array; b: Jax.Array };
  let params: Layer[] = sizes
    .slice(1)
    .map((out, i) => ({ w: np.ones([sizes[i], out]).mul(0.01), b: np.zeros([out]) }));
  const zeros = () => params.map((p) => ({ w: np.zerosLike(p.w.ref), b: np.zerosLike(p.b.ref) }));
  let [m, v] = [zeros(), zeros()];
  const x = np.ones([batch, sizes[0]]).mul(0.5);
  const y = jax.nn.oneHot(
    np.array(
      Array.from({ length: batch }, (_, i) => i % classes),
      { dtype: np.int32 },
    ),
    classes,
  );
  const loss = (p: Layer[], xs: Jax.Array, ys: Jax.Array) => {
    let h = xs;
    p.forEach((l, i) => {
      h = np.matmul(h, l.w).add(l.b);
      if (i < p.length - 1) h = jax.nn.relu(h);
    });
    return jax.nn
      .logSoftmax(h, -1)
      .mul(ys)
      .sum()
      .mul(-1 / batch);
  };
  const adam = (pi: Jax.Array, gi: Jax.Array, mi: Jax.Array, vi: Jax.Array) => {
    const m1 = mi.mul(0.9).add(gi.ref.mul(0.1));
    const v1 = vi.mul(0.999).add(gi.ref.mul(gi).mul(0.001));
    return [pi.sub(m1.ref.div(np.sqrt(v1.ref).add(1e-8)).mul(1e-3)), m1, v1];
  };
  const step = jax.jit((p: Layer[], ms: Layer[], vs: Layer[], xs: Jax.Array, ys: Jax.Array) => {
    const [value, g] = jax.valueAndGrad(loss)(jax.tree.ref(p), xs, ys) as [Jax.Array, Layer[]];
    const next = p.map((l, i) => ({
      w: adam(l.w, g[i].w, ms[i].w, vs[i].w),
      b: adam(l.b, g[i].b, ms[i].b, vs[i].b),
    }));
    return [
      value,
      next.map((n) => ({ w: n.w[0], b: n.b[0] })),
      next.map((n) => ({ w: n.w[1], b: n.b[1] })),
      next.map((n) => ({ w: n.w[2], b: n.b[2] })),
    ];
  });
  return {
    async run() {
      let value: Jax.Array;
      [value, params, m, v] = step(params, m, v, x.ref, y.ref) as [
        Jax.Array,
        Layer[],
        Layer[],
        Layer[],
      ];
      await value.data();
    },
  };
}
