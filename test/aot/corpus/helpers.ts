// Parsed by test/aot/purity.test.ts, never run: a module outside grng, whose functions grng
// compile cannot check (bad-impure-call.ts and bad-definition.ts import them).
import { mul, type OptimizerDefinition, type ParamTree, type StepContext, type Tensor } from '../../../index.js';

export class Scaler {
  constructor(readonly factor: number) {}
}

export function scale(x: Tensor, factor: number): Tensor {
  return mul(x, factor);
}

export function scaleBy(factor: number): (x: Tensor) => Tensor {
  return (x) => mul(x, factor);
}

export function double(x: Tensor): Tensor {
  return mul(x, 2);
}

export function makeDefinition(): OptimizerDefinition<{ lr: number }, object> {
  return { name: 'opaque', hyper: { lr: 0.1 }, init: () => ({}), update: (ctx) => ({ params: ctx.params, state: ctx.state }) };
}

export function makeInit(): (params: ParamTree) => object {
  return () => ({});
}

export function update(ctx: StepContext<{ lr: number }, object>): { params: ParamTree; state: object } {
  return { params: ctx.params, state: ctx.state };
}
