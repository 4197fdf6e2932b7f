// Traces a DSL function once and evaluates it synchronously on the float64 interpreter, so
// finite-difference loops can call it thousands of times cheaply.
import { input, type Tensor } from '../../index.js';
import { interpret, type Precision } from '../../runtime/interpreter.js';

export interface ArgSpec {
  readonly shape: readonly number[];
  readonly dtype?: 'f32' | 'i32' | 'bool';
}

let traceCount = 0;

/** `f` as a function of flat Float64Arrays (one per argument) returning each output flattened. */
export function hostFunction(
  f: (...args: Tensor[]) => Tensor | readonly Tensor[],
  specs: readonly ArgSpec[],
  precision: Precision = 'f64',
): (...args: Float64Array[]) => Float64Array[] {
  const names = specs.map((_, i) => `host${traceCount}_${i}`);
  traceCount++;
  const inputs = specs.map((s, i) => input(names[i], s.shape, s.dtype ?? 'f32'));
  const out = f(...inputs);
  const outputs = (Array.isArray(out) ? out : [out]).map((t: Tensor) => t.node);
  return (...args) =>
    interpret(outputs, new Map(names.map((n, i) => [n, args[i]] as const)), { precision });
}
