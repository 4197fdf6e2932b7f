// GR-Adam checked where it runs: compiled training steps on random small models (dense stacks
// with tanh/relu/gelu, an optional LoRA layer) and batches, against a float64 reference written
// from the math. The reference takes ∇L and H∇L from grng/testing's own float64 model engine
// (dual numbers), which shares no code with the DSL's autodiff.
// Run it: npx tsx examples/regularized-optimizer/check.ts [--rho-scale 1.01]   (a wrong reference)
// In your project, import from 'grng' and 'grng/testing'.
import fc from 'fast-check';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  checkTrainingOptimizer,
  type CheckTrainingOptions,
  type TrainingReferenceContext,
} from '../../testing.js';
import { grAdam } from './gr-adam.js';

type GrAdamHyper = ReturnType<typeof grAdam>['hyper'];
type GrAdamState = { readonly m: Float64Array[]; readonly v: Float64Array[] };

/** One GR-Adam step in plain loops; `rhoScale` ≠ 1 gives a deliberately wrong reference. */
export const grAdamReference =
  (rhoScale = 1) =>
  (ctx: TrainingReferenceContext<GrAdamHyper>, state: GrAdamState | undefined) => {
    const { lr, beta1, beta2, eps, weightDecay, rho } = ctx.hyper;
    const hg = ctx.hvp(ctx.grads); // H∇L at the current parameters
    const copy = (xs: Float64Array[] | undefined) =>
      ctx.params.map((p, k) => (xs === undefined ? new Float64Array(p.length) : xs[k].slice()));
    const m = copy(state?.m);
    const v = copy(state?.v);
    const params = ctx.params.map((p, k) =>
      p.map((theta, i) => {
        const g = ctx.grads[k][i] + rhoScale * rho * hg[k][i] + weightDecay * theta;
        m[k][i] = beta1 * m[k][i] + (1 - beta1) * g;
        v[k][i] = beta2 * v[k][i] + (1 - beta2) * g * g;
        const mHat = m[k][i] / (1 - beta1 ** ctx.t);
        const vHat = v[k][i] / (1 - beta2 ** ctx.t);
        return theta - (lr * mHat) / (Math.sqrt(vHat) + eps);
      }),
    );
    return { params, state: { m, v } };
  };

// ρ up to 1 so that H∇L moves the step visibly; β₁ = 0 and β₂ = 0.5 let a single step's gradient
// dominate the moments, where a wrong ρ shows most.
const settings = fc.record({
  lr: fc.constantFrom(1e-3, 1e-2, 0.1),
  beta1: fc.constantFrom(0, 0.9),
  beta2: fc.constantFrom(0.5, 0.999),
  rho: fc.constantFrom(0.1, 1),
  weightDecay: fc.constantFrom(0, 0.01),
});

/**
 * Runs the check (fast-check seed printed; a shrunk counterexample thrown on a mismatch) and
 * returns the worst relative error seen. `rhoScale` scales ρ in the reference only.
 */
export function checkGrAdam(
  options: CheckTrainingOptions<GrAdamHyper> & { readonly rhoScale?: number } = {},
) {
  const { rhoScale = 1, ...rest } = options;
  return checkTrainingOptimizer(grAdam(), grAdamReference(rhoScale), { settings, ...rest });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({ options: { 'rho-scale': { type: 'string', default: '1' } } });
  try {
    const result = await checkGrAdam({ rhoScale: Number(values['rho-scale']) });
    console.log(
      `gr-adam matches its float64 reference: ${result.runs} runs, worst error ` +
        `${result.worstError.toExponential(2)} (seed ${result.seed})`,
    );
  } catch (error) {
    // The message is the whole report (seed, shrunk problem, replay); the stack adds nothing.
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  }
}
