// AdaBelief in plain float64 loops, from the paper's Algorithm 2 — independent of the DSL code in
// adabelief.ts, so that checkOptimizer compares two separate readings of the same math.
export interface AdaBeliefHyper {
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
}

export interface AdaBeliefState {
  readonly m: Float64Array[];
  readonly s: Float64Array[];
}

/** One step over the parameter leaves; `state` undefined on the first step (zero moments then). */
export function adabeliefReference(
  params: readonly Float64Array[],
  grads: readonly Float64Array[],
  state: AdaBeliefState | undefined,
  h: AdaBeliefHyper,
  t: number,
): { params: Float64Array[]; state: AdaBeliefState } {
  const before = state ?? {
    m: params.map((p) => new Float64Array(p.length)),
    s: params.map((p) => new Float64Array(p.length)),
  };
  const m = before.m.map((x) => Float64Array.from(x));
  const s = before.s.map((x) => Float64Array.from(x));
  const next = params.map((p, k) =>
    p.map((theta, i) => {
      const g = grads[k][i];
      m[k][i] = h.beta1 * m[k][i] + (1 - h.beta1) * g;
      s[k][i] = h.beta2 * s[k][i] + (1 - h.beta2) * (g - m[k][i]) ** 2 + h.eps;
      const mHat = m[k][i] / (1 - h.beta1 ** t);
      const sHat = s[k][i] / (1 - h.beta2 ** t);
      return theta - h.lr * (mHat / (Math.sqrt(sHat) + h.eps) + h.weightDecay * theta);
    }),
  );
  return { params: next, state: { m, s } };
}
