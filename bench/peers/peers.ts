// The same workloads written for each peer: an Adam(W) update over a list of tensors, a square
// matmul, an MLP training step and a transformer encoder block's forward and backward. Each loader
// returns the peer or the reason it cannot run here (reported, not dropped).
import type * as TfCore from '@tensorflow/tfjs-core';
import type * as Jax from '@jax-js/jax';
import type { AdamWHyper } from '../hand-written-adamw.js';
import type { PeerRun } from '../sections/contenders.js';

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

/** One pre-LN encoder block on [batch, tokens, dim]: `heads` heads, an MLP of width `mlp`. */
export interface EncoderSetup {
  readonly batch: number;
  readonly tokens: number;
  readonly dim: number;
  readonly heads: number;
  readonly mlp: number;
}

/** Fixed values of order `scale` (weights need only be finite and of a sensible size). */
function wave(n: number, phase: number, scale: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + phase) * scale);
}

/**
 * TF.js: value and gradients (tf.variableGrads, every parameter a variable) of sum(block(x)) for
 * x + MHA(LN(x)), then x + fc2(gelu(fc1(LN(x)))), written with tf ops on [B·T, d] token rows:
 * tf.moments for the layer norms, 4-D tf.matMul and tf.softmax for the heads, and the exact GELU
 * 0.5·x·(1 + erf(x/√2)) with tf.erf (core has no GELU op). run() reads the value.
 */
export function tfEncoderBlock(tf: typeof TfCore, setup: EncoderSetup): PeerRun {
  const { batch, tokens, dim, heads, mlp } = setup;
  const [rows, headDim] = [batch * tokens, dim / heads];
  let phase = 0;
  // Weights [in, out] (TF.js's layout: h·W, no transpose).
  const dense = (inputs: number, outputs: number) => ({
    w: tf.variable(
      tf.tensor2d(wave(inputs * outputs, phase++, 1 / Math.sqrt(inputs)), [inputs, outputs]),
    ),
    b: tf.variable(tf.zeros([outputs])),
  });
  const norm = () => ({ weight: tf.variable(tf.ones([dim])), bias: tf.variable(tf.zeros([dim])) });
  const p = {
    norm1: norm(),
    q: dense(dim, dim),
    k: dense(dim, dim),
    v: dense(dim, dim),
    o: dense(dim, dim),
    norm2: norm(),
    fc1: dense(dim, mlp),
    fc2: dense(mlp, dim),
  };
  const variables = Object.values(p).flatMap((layer) => Object.values(layer));
  const x = tf.tensor2d(wave(rows * dim, 0.5, 1), [rows, dim]);
  type T2 = TfCore.Tensor2D;
  type Norm = { weight: TfCore.Variable; bias: TfCore.Variable };
  const layerNorm = (h: T2, n: Norm): T2 => {
    const { mean, variance } = tf.moments(h, -1, true);
    const normalized = tf.mul(tf.sub(h, mean), tf.rsqrt(tf.add(variance, 1e-5)));
    return tf.add(tf.mul(normalized, n.weight), n.bias);
  };
  const linear = (h: T2, l: { w: TfCore.Variable; b: TfCore.Variable }): T2 =>
    tf.add(tf.matMul(h, l.w as TfCore.Variable<TfCore.Rank.R2>), l.b);
  // [B·T, d] → [B, heads, T, d/heads]
  const split = (h: T2) =>
    tf.transpose(tf.reshape(h, [batch, tokens, heads, headDim]), [0, 2, 1, 3]) as TfCore.Tensor4D;
  const gelu = (h: T2): T2 => tf.mul(tf.mul(h, 0.5), tf.add(1, tf.erf(tf.mul(h, Math.SQRT1_2))));
  const block = (): T2 => {
    const a = layerNorm(x, p.norm1);
    const scores = tf.mul(
      tf.matMul(split(linear(a, p.q)), split(linear(a, p.k)), false, true),
      1 / Math.sqrt(headDim),
    );
    const mixed = tf.matMul(tf.softmax(scores), split(linear(a, p.v)));
    const merged = tf.reshape(tf.transpose(mixed, [0, 2, 1, 3]), [rows, dim]) as T2;
    const h: T2 = tf.add(x, linear(merged, p.o));
    return tf.add(h, linear(gelu(linear(layerNorm(h, p.norm2), p.fc1)), p.fc2));
  };
  return {
    note: 'tf.erf GELU',
    async run() {
      const { value, grads } = tf.variableGrads(
        () => tf.tidy(() => tf.sum(block()) as TfCore.Scalar),
        variables,
      );
      await value.data();
      value.dispose();
      tf.dispose(grads);
    },
  };
}

/**
 * jax-js: one jitted jax.valueAndGrad of the same sum(block(x)) with respect to every parameter
 * (not x): jax.nn.standardize for the layer norms, np.matmul and jax.nn.softmax for the heads and
 * jax.nn.gelu with approximate: false (the erfc form). run() waits for the gradients and reads
 * the value (jax-js evaluates lazily).
 */
export function jaxEncoderBlock(jax: typeof Jax, setup: EncoderSetup): PeerRun {
  const np = jax.numpy;
  const { batch, tokens, dim, heads, mlp } = setup;
  type Dense = { w: Jax.Array; b: Jax.Array };
  type Norm = { weight: Jax.Array; bias: Jax.Array };
  type Block = {
    norm1: Norm;
    q: Dense;
    k: Dense;
    v: Dense;
    o: Dense;
    norm2: Norm;
    fc1: Dense;
    fc2: Dense;
  };
  let phase = 0;
  const dense = (inputs: number, outputs: number): Dense => ({
    w: np.array(wave(inputs * outputs, phase++, 1 / Math.sqrt(inputs)), {
      shape: [inputs, outputs],
    }),
    b: np.zeros([outputs]),
  });
  const norm = (): Norm => ({ weight: np.ones([dim]), bias: np.zeros([dim]) });
  const params: Block = {
    norm1: norm(),
    q: dense(dim, dim),
    k: dense(dim, dim),
    v: dense(dim, dim),
    o: dense(dim, dim),
    norm2: norm(),
    fc1: dense(dim, mlp),
    fc2: dense(mlp, dim),
  };
  const x = np.array(wave(batch * tokens * dim, 0.5, 1), { shape: [batch, tokens, dim] });
  // jax-js arrays are consumed by each use: every use but the last takes a .ref.
  const layerNorm = (h: Jax.Array, n: Norm) =>
    jax.nn.standardize(h, -1, { epsilon: 1e-5 }).mul(n.weight).add(n.bias);
  const linear = (h: Jax.Array, l: Dense) => np.matmul(h, l.w).add(l.b);
  // [B, T, d] → [B, heads, T, d/heads]
  const split = (h: Jax.Array) =>
    np.transpose(h.reshape([batch, tokens, heads, dim / heads]), [0, 2, 1, 3]);
  // softmax(q kᵀ/√d_head) v, written out: jax.nn.dotProductAttention goes through np.einsum, whose
  // parser needs iterator helpers (Node ≥ 22).
  const attention = (q: Jax.Array, k: Jax.Array, v: Jax.Array) => {
    const scores = np.matmul(q, np.transpose(k, [0, 1, 3, 2])).mul(1 / Math.sqrt(dim / heads));
    const mixed = np.matmul(jax.nn.softmax(scores, -1), v);
    return np.transpose(mixed, [0, 2, 1, 3]).reshape([batch, tokens, dim]);
  };
  const block = (p: Block, xs: Jax.Array) => {
    const a = layerNorm(xs.ref, p.norm1);
    const mixed = attention(
      split(linear(a.ref, p.q)),
      split(linear(a.ref, p.k)),
      split(linear(a, p.v)),
    );
    const h = xs.add(linear(mixed, p.o));
    const inner = jax.nn.gelu(linear(layerNorm(h.ref, p.norm2), p.fc1), { approximate: false });
    return h.add(linear(inner, p.fc2));
  };
  const step = jax.jit((p: Block, xs: Jax.Array) =>
    jax.valueAndGrad((q: Block) => block(q, xs).sum())(p),
  );
  return {
    note: 'erfc GELU',
    async run() {
      const [value, grads] = step(jax.tree.ref(params), x.ref) as [Jax.Array, Block];
      jax.tree.dispose(await jax.blockUntilReady(grads));
      await value.data();
    },
  };
}
