// A compiled program as plain data: the slots (buffers) it binds, each dispatch's WGSL and
// bindings, the copies after the dispatches, and where every input and output lives. No graph
// nodes: a device runs a plan without the IR, so `grng compile` can save one as JSON and a
// generated module can load it without tracing anything.
import type { DType, Node } from '../core/ir/index.js';
import type { Region, Slot } from './memory/layout.js';
import type { Program } from './program.js';
import type { DispatchSource } from './wgsl/kernel.js';

/** An array's place in a plan's buffers, with its type. */
export interface PlacedArray extends Region {
  readonly shape: readonly number[];
  readonly dtype: DType;
}

export interface ProgramPlan {
  readonly slots: readonly Slot[];
  readonly kernels: readonly DispatchSource[];
  /** Copies into the results after the dispatches (in elements). */
  readonly copies: readonly {
    readonly from: Region;
    readonly to: Region;
    readonly length: number;
  }[];
  /**
   * The inputs the program reads, by name: each in an input slot at an offset (part of the plan's
   * identity).
   */
  readonly inputs: readonly (PlacedArray & { readonly name: string })[];
  readonly outputs: readonly PlacedArray[];
}

/** The plan of `program`, whose graph reads `inputs` (input nodes). */
export function planOf(program: Program, inputs: readonly Node[]): ProgramPlan {
  const { memory } = program;
  return {
    slots: memory.slots,
    kernels: program.kernels.map((k) => k.source),
    copies: memory.copies,
    inputs: inputs.map((node) => {
      const region = memory.regions.get(node.id);
      if (region === undefined)
        throw new Error(`internal: input ${(node as Node<'input'>).attrs.name} has no region`);
      return {
        ...region,
        shape: node.shape,
        dtype: node.dtype,
        name: (node as Node<'input'>).attrs.name,
      };
    }),
    outputs: program.outputs.map((node, i) => ({
      ...memory.outputs[i],
      shape: node.shape,
      dtype: node.dtype,
    })),
  };
}
