// The host half of hoisted scalar work (compiler/hoist-host-scalars.ts): a plan's scalar graphs
// rebuilt once, then evaluated each call from the numbers the caller passed, with every f32
// intermediate rounded as the device rounds it (the interpreter's f32 mode).
import { GrngError } from '../core/errors.js';
import { emit } from '../core/ir/builder.js';
import type { Node } from '../core/ir/node.js';
import type { PrimitiveAttrs } from '../core/ir/primitives.js';
import type { HostScalarsPlan } from '../compiler/program-plan.js';
import { interpret } from './interpreter.js';

/**
 * This call's values of the hoisted scalars, one per 16-byte cell (the scalars uniform's first
 * cells), from the host values of the one-element inputs they read, by input name.
 */
export type HostScalars = (given: ReadonlyMap<string, number>) => Float32Array<ArrayBuffer>;

export function hostScalarsOf(plan: HostScalarsPlan | undefined): HostScalars | undefined {
  if (plan === undefined || plan.cells.length === 0) return undefined;
  const built: Node[] = [];
  for (const n of plan.nodes)
    built.push(
      emit(
        n.op,
        n.inputs.map((i) => built[i]),
        n.attrs as PrimitiveAttrs[typeof n.op],
      ),
    );
  const values = plan.cells.map((i) => built[i]);
  const names = built.flatMap((n) => (n.op === 'input' ? [(n as Node<'input'>).attrs.name] : []));
  const cells = new Float32Array(4 * values.length);
  return (given) => {
    const inputs = new Map<string, Float64Array>();
    for (const name of names) {
      const value = given.get(name);
      if (value === undefined)
        throw new GrngError(
          'execute',
          `input "${name}" must be a number passed from the host (an array uploaded from one): ` +
            `the program computes with its value on the host`,
        );
      inputs.set(name, Float64Array.of(value));
    }
    interpret(values, inputs, { precision: 'f32' }).forEach((v, i) => (cells[4 * i] = v[0]));
    return cells;
  };
}
