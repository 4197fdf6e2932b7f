// Dispatches that run only when a condition computed on the device holds (DispatchSource.gate):
// each is recorded as an indirect dispatch, and a one-workgroup gate kernel writes its workgroup
// counts just before — its real counts when the condition holds, zeros (no work) otherwise. No
// value travels to the host, and a call is still one command buffer.
import type { DispatchGate, DispatchSource } from '../../compiler/wgsl/kernel.js';

/**
 * Copies `count` u32 workgroup counts from `counts` into `args` from word `first` on, or zeros
 * when the i32 at `condition[at]` (a bool: 0 or 1) is not `when`.
 */
export const GATE_WGSL = `@group(0) @binding(0) var<storage, read> condition: array<i32>;
@group(0) @binding(1) var<storage, read> counts: array<u32>;
@group(0) @binding(2) var<storage, read_write> args: array<u32>;
@group(0) @binding(3) var<uniform> gate: vec4<u32>; // at, first, count, when

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x >= gate.z) { return; }
  let open = u32(condition[gate.x] != 0i) == gate.w;
  args[gate.y + gid.x] = select(0u, counts[gate.y + gid.x], open);
}
`;

export const GATE_WORKGROUP = 64;

/** One condition's gated dispatches: the gate kernel runs just before the first of them. */
export interface GateGroup {
  readonly gate: DispatchGate;
  /** The gate kernel's uniform: condition offset, first word, words, `when` as 0/1. */
  readonly params: readonly [number, number, number, number];
}

export interface GatePlan {
  readonly groups: readonly GateGroup[];
  /** Workgroup counts (x, y, 1) of every gated dispatch, in kernel order: the args' source. */
  readonly counts: Uint32Array<ArrayBuffer>;
  /** Kernel index → byte offset of its (x, y, z) in the args buffer (gated kernels only). */
  readonly argsAt: ReadonlyMap<number, number>;
  /** Kernel index → the group whose gate kernel runs just before it. */
  readonly gateBefore: ReadonlyMap<number, number>;
}

/**
 * Groups a plan's gated kernels by condition; `size` gives a kernel's (x, y) workgroup counts.
 * Every kernel of a group runs after its condition is stored (the compiler only gates on
 * conditions computed by an earlier dispatch), and nothing in between writes the condition, so one
 * gate kernel before the first of them serves the group.
 */
export function planGates(
  kernels: readonly DispatchSource[],
  size: (source: DispatchSource) => readonly [number, number],
): GatePlan {
  const groups: GateGroup[] = [];
  const byCondition = new Map<string, { first: number; indices: number[] }>();
  kernels.forEach((source, k) => {
    if (source.gate === undefined || source.invocations === 0) return;
    const key = `${source.gate.condition}:${source.gate.when}`;
    const group = byCondition.get(key);
    if (group === undefined) byCondition.set(key, { first: k, indices: [k] });
    else group.indices.push(k);
  });
  const words: number[] = [];
  const argsAt = new Map<number, number>();
  const gateBefore = new Map<number, number>();
  for (const { first, indices } of byCondition.values()) {
    const gate = kernels[first].gate as DispatchGate;
    const start = words.length;
    for (const k of indices) {
      argsAt.set(k, 4 * words.length);
      words.push(...size(kernels[k]), 1);
    }
    gateBefore.set(first, groups.length);
    groups.push({ gate, params: [gate.offset, start, words.length - start, gate.when ? 1 : 0] });
  }
  return { groups, counts: Uint32Array.from(words), argsAt, gateBefore };
}
