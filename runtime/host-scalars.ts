// The scalars uniform's cells as the host fills them each call. First the hoisted values
// (compiler/hoist-host-scalars.ts): the plan's scalar graphs, rebuilt once, evaluated from the
// numbers the caller passed with every f32 intermediate rounded as the device rounds it (the
// interpreter's f32 mode). Then, when every one-element input the kernels read is such a number
// too (a training step's hyperparameters and step), their values: the whole uniform is then one
// upload and one copy, where copying each cell from the inputs' buffers costs a command apiece.
import { GrngError } from '../core/errors.js';
import { emit } from '../core/ir/builder.js';
import type { Node } from '../core/ir/node.js';
import type { PrimitiveAttrs } from '../core/ir/primitives.js';
import type { ProgramPlan } from '../compiler/program-plan.js';
import { interpret } from './interpreter.js';

/**
 * This call's leading cells of the scalars uniform (16 bytes each; `cells` of them filled), from
 * the host values of the inputs uploaded from numbers, by input name.
 */
export type ScalarCells = (given: ReadonlyMap<string, number>) => {
  readonly data: Uint32Array<ArrayBuffer>;
  readonly cells: number;
};

export function scalarCellsOf(plan: ProgramPlan): ScalarCells | undefined {
  const slot = plan.slots.find((s) => s.kind === 'scalars');
  if (slot === undefined || slot.kind !== 'scalars') return undefined;
  const hoisted = hoistedValues(plan);
  // The input each copied cell holds (a cell's source region is where that input lives).
  const copied = slot.sources.slice(hoisted.values.length).map((source) => {
    const input =
      'host' in source
        ? undefined
        : plan.inputs.find((i) => i.slot === source.slot && i.offset === source.offset);
    return input === undefined ? undefined : { name: input.name, dtype: input.dtype };
  });
  const data = new Uint32Array(4 * slot.sources.length);
  const floats = new Float32Array(data.buffer);
  const ints = new Int32Array(data.buffer);
  return (given) => {
    hoisted.evaluate(given).forEach((v, i) => (floats[4 * i] = v));
    let cells = hoisted.values.length;
    const values = copied.map((c) => (c === undefined ? undefined : given.get(c.name)));
    if (values.every((v) => v !== undefined)) {
      copied.forEach((c, k) => {
        const at = 4 * (cells + k);
        const v = values[k] as number;
        if (c?.dtype === 'f32') floats[at] = v;
        else ints[at] = v;
      });
      cells += copied.length;
    }
    return { data, cells };
  };
}

/** The plan's hoisted scalar graphs, rebuilt, and their evaluation from host numbers. */
function hoistedValues(plan: ProgramPlan): {
  readonly values: readonly Node[];
  readonly evaluate: (given: ReadonlyMap<string, number>) => number[];
} {
  const graphs = plan.hostScalars;
  if (graphs === undefined || graphs.cells.length === 0) return { values: [], evaluate: () => [] };
  const built: Node[] = [];
  for (const n of graphs.nodes)
    built.push(
      emit(
        n.op,
        n.inputs.map((i) => built[i]),
        n.attrs as PrimitiveAttrs[typeof n.op],
      ),
    );
  const values = graphs.cells.map((i) => built[i]);
  const names = built.flatMap((n) => (n.op === 'input' ? [(n as Node<'input'>).attrs.name] : []));
  return {
    values,
    evaluate: (given) => {
      const inputs = new Map<string, Float64Array>();
      for (const name of names) {
        const value = given.get(name);
        if (value === undefined)
          throw new GrngError(
            'execute',
            `input "${name}" must be a number passed from the host (an array uploaded from ` +
              `one): the program computes with its value on the host`,
          );
        inputs.set(name, Float64Array.of(value));
      }
      return interpret(values, inputs, { precision: 'f32' }).map((v) => v[0]);
    },
  };
}
