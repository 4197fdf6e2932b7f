import { topoSort, type Node } from './ir/node.js';
import { isExternal, partition, type KernelPlan } from './kernels/partition.js';
import { mergeDependentReductions } from './kernels/merge-reductions.js';
import { fitsOneKernel, inPlaceCandidates, isWideReduction, kernelSource, type KernelSource } from './wgsl/kernel.js';

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
  /** Input nodes whose buffers may be overwritten (donated, as JAX's donate_argnums). */
  readonly donated?: ReadonlySet<number>;
}

/** A compiled graph: kernels in execution order, each writing its roots' buffers. */
export interface Program {
  readonly kernels: readonly {
    readonly plan: KernelPlan;
    readonly source: KernelSource;
    /** Root position → input position it overwrites in place (a donated input's buffer). */
    readonly aliases: ReadonlyMap<number, number>;
  }[];
  /** Buffer-backed leaves the program reads: named inputs and data constants. */
  readonly externals: readonly Node[];
  readonly outputs: readonly Node[];
}

const WORKGROUP_SIZE = 64;

export function compileProgram(outputs: readonly Node[], options: CompileOptions): Program {
  const { limits } = options;
  const fuse = options.fuse ?? true;
  const workgroupSize = Math.min(WORKGROUP_SIZE, limits.maxComputeInvocationsPerWorkgroup, limits.maxComputeWorkgroupSizeX);
  const partitioned = partition(outputs, { fuse, maxInputs: limits.maxStorageBuffersPerShaderStage - 1 });
  const plans = fuse
    ? mergeDependentReductions(partitioned, limits.maxStorageBuffersPerShaderStage, (p) => fitsOneKernel(p, workgroupSize), isWideReduction)
    : partitioned;
  const aliases = planInPlace(plans, options.donated ?? new Set(), new Set(outputs.map((n) => n.id)));
  return {
    kernels: plans.map((plan, k) => ({ plan, aliases: aliases[k], source: kernelSource(plan, workgroupSize, aliases[k]) })),
    externals: topoSort(outputs).filter(isExternal),
    outputs,
  };
}

/**
 * Chooses in-place updates: a root overwrites a donated input of its shape and dtype when its
 * kernel reads that input only at its own element, no later kernel reads the input, and the
 * input is not itself returned. This is how parameters and optimizer state update in place.
 */
function planInPlace(plans: readonly KernelPlan[], donated: ReadonlySet<number>, outputIds: ReadonlySet<number>): Map<number, number>[] {
  const lastRead = new Map<number, number>();
  plans.forEach((p, k) => p.inputs.forEach((n) => lastRead.set(n.id, k)));
  return plans.map((plan, k) => {
    const aliases = new Map<number, number>();
    const free = donated.size === 0 ? [] : inPlaceCandidates(plan).filter((j) => {
      const input = plan.inputs[j];
      return donated.has(input.id) && !outputIds.has(input.id) && lastRead.get(input.id) === k;
    });
    plan.roots.forEach((root, r) => {
      const j = free.findIndex((i) => {
        const input = plan.inputs[i];
        return input.dtype === root.dtype && input.shape.length === root.shape.length && input.shape.every((d, a) => d === root.shape[a]);
      });
      if (j >= 0) aliases.set(r, free.splice(j, 1)[0]);
    });
    return aliases;
  });
}

/** A readable account of what was built: kernels, what each reads and writes, and the WGSL. */
export function explainProgram(program: Program, withSource = false): string {
  const lines = [`${program.kernels.length} kernel(s), ${program.externals.length} external buffer(s)`];
  program.kernels.forEach(({ plan, source }, i) => {
    const reads = plan.inputs.map((n) => `${n.op}#${n.id}`).join(', ') || 'nothing';
    const writes = plan.roots
      .map((r, k) => `${r.op}#${r.id} ${r.dtype}[${r.shape.join(', ')}]${program.kernels[i].aliases.has(k) ? ' (in place)' : ''}`)
      .join(', ');
    lines.push(`kernel ${i}: ${writes} ← ${reads} (${source.invocations} invocations)`);
    if (withSource) lines.push(source.code);
  });
  return lines.join('\n');
}
