import { fmtShape, GrngError } from '../../core/errors.js';
import { positiveInteger } from './check.js';
import type { HostArray } from '../../core/host-array.js';
import { ge, iota, matmul, mul, reshape, softmax, transpose, where } from '../index.js';
import { isTensor, type Tensor } from '../tensor.js';
import { seededUniform, uniformInit, zerosInit } from './init.js';
import { sharedDense, type DenseParams, type Model } from './layers.js';

export type AttentionParams = {
  readonly q: DenseParams;
  readonly k: DenseParams;
  readonly v: DenseParams;
  readonly o: DenseParams;
};

/**
 * Scaled dot-product attention softmax(q kᵀ/√d_head + mask) v over [B, heads, T, d_head] operands;
 * with `causal`, position t attends to positions ≤ t only.
 */
export function scaledDotProductAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  options: { causal?: boolean } = {},
): Tensor {
  const op = 'nn.scaledDotProductAttention';
  for (const [name, t] of [
    ['q', q],
    ['k', k],
    ['v', v],
  ] as const)
    if (!isTensor(t) || t.rank !== 4)
      throw new GrngError(
        op,
        `${name} must be a Tensor [batch, heads, T, d_head], got ` +
          `${isTensor(t) ? fmtShape(t.shape) : typeof t}`,
      );
  // q [B, H, T_q, d] and k [B, H, T_k, d] share all but their positions; v [B, H, T_k, d_v].
  const [qs, ks, vs] = [q.shape, k.shape, v.shape];
  if (
    qs[0] !== ks[0] ||
    qs[1] !== ks[1] ||
    qs[3] !== ks[3] ||
    !ks.slice(0, 3).every((d, i) => d === vs[i])
  )
    throw new GrngError(
      op,
      `q [B, H, T_q, d], k [B, H, T_k, d] and v [B, H, T_k, d_v] do not fit: got q ` +
        `${fmtShape(qs)}, k ${fmtShape(ks)}, v ${fmtShape(vs)}`,
    );
  if (options.causal === true && qs[2] !== ks[2])
    throw new GrngError(
      op,
      `causal attention needs as many queries as keys, got T_q ${qs[2]} and T_k ${ks[2]}`,
    );
  const scores = mul(matmul(q, transpose(k, [0, 1, 3, 2])), 1 / Math.sqrt(q.shape[3]));
  const t = scores.shape[2];
  // −1e30, not −∞: exp underflows to 0 without an ∞ − ∞ in the softmax's shift.
  const masked = options.causal
    ? where(ge(iota([t, t], 0, 'i32'), iota([t, t], 1, 'i32')), scores, -1e30)
    : scores;
  return matmul(softmax(masked, -1), v);
}

/**
 * Multi-head self-attention on [B, T, dim] (PyTorch's nn.MultiheadAttention with batch_first,
 * the q, k, v projections kept as three dense layers): q, k, v and output projections with biases,
 * `heads` heads of dim/heads each, optionally causal. Initialised as PyTorch does it: the q, k, v
 * weights Xavier-uniform over their stacked [3·dim, dim] matrix, the output weight like a Linear,
 * biases zero. Each projection records a tap over the B·T tokens (docs/algorithms.md §10.7).
 */
export function multiHeadAttention(
  dim: number,
  heads: number,
  options: { causal?: boolean; name?: string } = {},
): Model<AttentionParams> {
  const op = 'nn.multiHeadAttention';
  positiveInteger(op, 'dim', dim);
  positiveInteger(op, 'heads', heads);
  if (dim % heads !== 0) throw new GrngError(op, `dim ${dim} must be a multiple of heads ${heads}`);
  const name = options.name ?? 'attention';
  const headDim = dim / heads;
  return {
    init(seed) {
      const next = seededUniform(seed);
      const xavier = Math.sqrt(6 / (dim + 3 * dim));
      const projection = (bound: number): Record<string, HostArray> => ({
        w: uniformInit(next, [dim, dim], bound),
        b: zerosInit([dim]),
      });
      return {
        q: projection(xavier),
        k: projection(xavier),
        v: projection(xavier),
        o: projection(1 / Math.sqrt(dim)),
      };
    },
    apply(params, x) {
      if (x.rank !== 3 || x.shape[2] !== dim)
        throw new GrngError(
          op,
          `${name} expects tokens [batch, length, ${dim}], got [${x.shape.join(', ')}]`,
        );
      const [batch, length] = x.shape;
      const project = (which: 'q' | 'k' | 'v') => {
        const p = params[which];
        const y = sharedDense(`${name}.${which}`, x, p.w, p.b, p);
        return transpose(reshape(y, [batch, length, heads, headDim]), [0, 2, 1, 3]);
      };
      const mixed = scaledDotProductAttention(project('q'), project('k'), project('v'), options);
      const merged = reshape(transpose(mixed, [0, 2, 1, 3]), [batch, length, dim]);
      return sharedDense(`${name}.o`, merged, params.o.w, params.o.b, params.o);
    },
  };
}
