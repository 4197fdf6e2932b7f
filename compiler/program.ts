import { topoSort, type Node } from './ir/node.js';
import { isExternal, partition, type KernelPlan } from './kernels/partition.js';
import { kernelSource, type KernelSource } from './wgsl/kernel.js';

/** The device limits compilation must respect (a subset of GPUSupportedLimits). */
export interface KernelLimits {
  readonly maxStorageBuffersPerShaderStage: number;
  readonly maxComputeInvocationsPerWorkgroup: number;
  readonly maxComputeWorkgroupSizeX: number;
}

export interface CompileOptions {
  readonly limits: KernelLimits;
  /** Fuse elementwise and movement ops into their consumers (default true). */
  readonly fuse?: boolean;
}

/** A compiled graph: kernels in execution order, each writing its roots' buffers. */
export interface Program {
  readonly kernels: readonly { readonly plan: KernelPlan; readonly source: KernelSource }[];
  /** Buffer-backed leaves the program reads: named inputs and data constants. */
  readonly externals: readonly Node[];
  readonly outputs: readonly Node[];
}

const WORKGROUP_SIZE = 64;

export function compileProgram(outputs: readonly Node[], options: CompileOptions): Program {
  const { limits } = options;
  const plans = partition(outputs, { fuse: options.fuse ?? true, maxInputs: limits.maxStorageBuffersPerShaderStage - 1 });
  const workgroupSize = Math.min(WORKGROUP_SIZE, limits.maxComputeInvocationsPerWorkgroup, limits.maxComputeWorkgroupSizeX);
  return {
    kernels: plans.map((plan) => ({ plan, source: kernelSource(plan, workgroupSize) })),
    externals: topoSort(outputs).filter(isExternal),
    outputs,
  };
}

/** A readable account of what was built: kernels, what each reads and writes, and the WGSL. */
export function explainProgram(program: Program, withSource = false): string {
  const lines = [`${program.kernels.length} kernel(s), ${program.externals.length} external buffer(s)`];
  program.kernels.forEach(({ plan, source }, i) => {
    const reads = plan.inputs.map((n) => `${n.op}#${n.id}`).join(', ') || 'nothing';
    const writes = plan.roots.map((r) => `${r.op}#${r.id} ${r.dtype}[${r.shape.join(', ')}]`).join(', ');
    lines.push(`kernel ${i}: ${writes} ← ${reads} (${source.invocations} invocations)`);
    if (withSource) lines.push(source.code);
  });
  return lines.join('\n');
}
