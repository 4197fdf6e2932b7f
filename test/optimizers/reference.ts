// Independent float64 references for the baseline optimizers, written from docs/algorithms.md
// §6.1–6.3 (PyTorch's torch.optim.SGD / Adam / AdamW semantics). Plain dense loops over
// Float64Arrays, one array per parameter tensor; nothing here uses the DSL, dsl/ or optimizers/.
// Every step is pure: it returns new arrays and never writes into its arguments.

/** Several parameter tensors (or gradients, or one kind of state), each flattened row-major. */
export type Tensors = readonly Float64Array[];

export interface SgdHyper {
  readonly lr: number;
  readonly momentum: number;
  readonly dampening: number;
  readonly weightDecay: number;
  readonly nesterov: boolean;
}

export interface AdamHyper {
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
}

/**
 * SGD's momentum buffers; undefined until the first step with μ ≠ 0 creates them (PyTorch keeps
 * none for μ = 0).
 */
export interface SgdState {
  readonly t: number;
  readonly buf: Tensors | undefined;
}

/** Adam's moments and the number of steps taken. */
export interface AdamState {
  readonly t: number;
  readonly m: Tensors;
  readonly v: Tensors;
}

export interface Stepped<S> {
  readonly params: Float64Array[];
  readonly state: S;
}

/** A reference optimizer over lists of tensors (what the common matrix drives). */
export interface ReferenceOptimizer<H, S> {
  init(params: Tensors): S;
  step(params: Tensors, grads: Tensors, state: S, hyper: H): Stepped<S>;
}

const zerosLike = (xs: Tensors): Float64Array[] => xs.map((x) => new Float64Array(x.length));

function checkSameSizes(what: string, a: Tensors, b: Tensors): void {
  if (a.length !== b.length || a.some((x, i) => x.length !== b[i].length)) {
    throw new Error(`reference: ${what} do not match the parameters`);
  }
}

/**
 * §6.1, SGD with momentum (PyTorch): g ← ∇L + λθ (coupled L2); with μ ≠ 0, b₁ = g₁ and
 * b_t = μ b_{t−1} + (1 − τ) g_t, d = g + μ b_t (Nesterov) or d = b_t; with μ = 0 no buffer and
 * d = g. θ ← θ − η d.
 */
export const sgdReference: ReferenceOptimizer<SgdHyper, SgdState> = {
  init: () => ({ t: 0, buf: undefined }),
  step(params, grads, state, h) {
    checkSameSizes('the gradients', params, grads);
    const { lr, momentum: mu, dampening: tau, weightDecay: wd, nesterov } = h;
    const next: Float64Array[] = [];
    const buffers: Float64Array[] = [];
    params.forEach((theta, k) => {
      const out = new Float64Array(theta.length);
      const b = new Float64Array(theta.length);
      for (let i = 0; i < theta.length; i++) {
        const g = grads[k][i] + wd * theta[i];
        let d = g;
        if (mu !== 0) {
          // PyTorch: the buffer is a copy of the first gradient, no dampening on that step.
          b[i] = state.buf === undefined ? g : mu * state.buf[k][i] + (1 - tau) * g;
          d = nesterov ? g + mu * b[i] : b[i];
        }
        out[i] = theta[i] - lr * d;
      }
      next.push(out);
      buffers.push(b);
    });
    return { params: next, state: { t: state.t + 1, buf: mu !== 0 ? buffers : state.buf } };
  },
};

/** One Adam moment update and bias-corrected step m̂/(√v̂ + ε) for element i (§6.2). */
function adamElement(
  g: number,
  m: number,
  v: number,
  h: AdamHyper,
  t: number,
): { m: number; v: number; step: number } {
  const m1 = h.beta1 * m + (1 - h.beta1) * g;
  const v1 = h.beta2 * v + (1 - h.beta2) * g * g;
  const mHat = m1 / (1 - Math.pow(h.beta1, t));
  const vHat = v1 / (1 - Math.pow(h.beta2, t));
  return { m: m1, v: v1, step: mHat / (Math.sqrt(vHat) + h.eps) };
}

function adamLike(decoupled: boolean): ReferenceOptimizer<AdamHyper, AdamState> {
  return {
    init: (params) => ({ t: 0, m: zerosLike(params), v: zerosLike(params) }),
    step(params, grads, state, h) {
      checkSameSizes('the gradients', params, grads);
      const t = state.t + 1;
      const next: Float64Array[] = [];
      const ms: Float64Array[] = [];
      const vs: Float64Array[] = [];
      params.forEach((theta, k) => {
        const [out, m, v] = [0, 1, 2].map(() => new Float64Array(theta.length));
        for (let i = 0; i < theta.length; i++) {
          // Adam: weight decay is L2 added to the gradient (it enters m and v).
          // AdamW: θ ← θ(1 − ηλ) first, then Adam on the raw gradient (decay never in m, v).
          const g = decoupled ? grads[k][i] : grads[k][i] + h.weightDecay * theta[i];
          const base = decoupled ? theta[i] * (1 - h.lr * h.weightDecay) : theta[i];
          const e = adamElement(g, state.m[k][i], state.v[k][i], h, t);
          m[i] = e.m;
          v[i] = e.v;
          out[i] = base - h.lr * e.step;
        }
        next.push(out);
        ms.push(m);
        vs.push(v);
      });
      return { params: next, state: { t, m: ms, v: vs } };
    },
  };
}

/** §6.2, Adam (Kingma & Ba) with PyTorch's L2 weight decay. */
export const adamReference = adamLike(false);

/** §6.3, AdamW (PyTorch form): decoupled decay θ(1 − ηλ), then Adam on the raw gradient. */
export const adamwReference = adamLike(true);

/**
 * Runs `steps` reference steps: gradients from `grads(params, t)`, hyperparameters from `hyper(t)`
 * (t = 1, 2, …).
 */
export function runReference<H, S>(
  ref: ReferenceOptimizer<H, S>,
  params0: Tensors,
  steps: number,
  grads: (params: Tensors, t: number) => Tensors,
  hyper: (t: number) => H,
): { params: Float64Array[]; state: S; trajectory: Float64Array[][] } {
  let params: Float64Array[] = params0.map((p) => Float64Array.from(p));
  let state = ref.init(params);
  const trajectory: Float64Array[][] = [];
  for (let t = 1; t <= steps; t++) {
    ({ params, state } = ref.step(params, grads(params, t), state, hyper(t)));
    trajectory.push(params);
  }
  return { params, state, trajectory };
}
