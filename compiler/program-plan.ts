// A compiled program as plain data: the slots (buffers) it binds, each dispatch's WGSL and
// bindings, the copies after the dispatches, and where every input and output lives. No graph
// nodes: a device runs a plan without the IR, so `grng compile` can save one as JSON and a
// generated module can load it without tracing anything.
import { topoSort, type DType, type Node, type Primitive } from '../core/ir/index.js';
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
  /** Values the caller computes on the host each call: the scalars uniform's first cells. */
  readonly hostScalars?: HostScalarsPlan;
}

/**
 * Hoisted scalar graphs (compiler/hoist-host-scalars.ts) as data: nodes in evaluation order, each
 * reading earlier ones by index (inputs by name, in their attrs), and the node of each cell.
 */
export interface HostScalarsPlan {
  readonly nodes: readonly {
    readonly op: Primitive;
    readonly inputs: readonly number[];
    readonly attrs: object;
  }[];
  readonly cells: readonly number[];
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
    ...(program.hostScalars.length > 0
      ? { hostScalars: hostScalarsPlan(program.hostScalars.map((h) => h.value)) }
      : {}),
  };
}

function hostScalarsPlan(values: readonly Node[]): HostScalarsPlan {
  const order = topoSort(values);
  const at = new Map(order.map((n, i) => [n.id, i] as const));
  return {
    nodes: order.map((n) => ({
      op: n.op,
      inputs: n.inputs.map((x) => at.get(x.id) as number),
      attrs: n.attrs,
    })),
    cells: values.map((v) => at.get(v.id) as number),
  };
}
