// What `grng compile` writes and a generated module loads: an optimizer's init and step programs
// as plans (WGSL, bindings, buffer layout), for one parameter layout, with what is needed to bind
// them — the order of the runtime numbers, the step patterns of `every`, the limits compiled for.
// Plain JSON; constants travel as number arrays.
import { GrngError } from '../core/errors.js';
import type { DType } from '../core/ir/index.js';
import type { Slot } from '../compiler/memory/layout.js';
import type { ProgramPlan } from '../compiler/program-plan.js';
import type { Tree } from '../core/tree.js';

export const MANIFEST_FORMAT = 'grng-aot/2';

/** A leaf of a layout: its shape and dtype. */
export interface LeafSpec {
  readonly shape: readonly number[];
  readonly dtype: DType;
}

/** Device limits a plan was compiled within; a device must offer at least these. */
export interface PlanLimits {
  readonly maxStorageBuffersPerShaderStage: number;
  readonly maxComputeInvocationsPerWorkgroup: number;
  readonly maxComputeWorkgroupSizeX: number;
  readonly maxStorageBufferBindingSize: number;
}

/** The step program for the steps t where exactly `periods` are due ((t − 1) mod p = 0). */
export interface StepPattern {
  readonly periods: readonly number[];
  readonly plan: ProgramPlan;
}

export interface OptimizerManifest {
  readonly format: typeof MANIFEST_FORMAT;
  /**
   * 'optimizer': the update from given gradients; 'train-step': forward, backward and update of a
   * model.
   */
  readonly kind: 'optimizer' | 'train-step';
  /** For train steps: the model, one batch's x and y, and the metrics each step returns. */
  readonly model?: string;
  readonly batch?: { readonly x: LeafSpec; readonly y: LeafSpec };
  readonly metrics?: readonly string[];
  readonly optimizer: string;
  /** Every hyperparameter as compiled (booleans, strings and static numbers are fixed). */
  readonly hyper: Readonly<Record<string, number | boolean | string>>;
  /** Numeric hyperparameters passed at run time, in the order the step reads them. */
  readonly numeric: readonly string[];
  /** Hyperparameters that shape the program: changing one needs a new `grng compile`. */
  readonly fixed: readonly string[];
  /** Trees whose leaves are leaf indices (the flattening order), and their leaves. */
  readonly params: { readonly skeleton: Tree<number>; readonly leaves: readonly LeafSpec[] };
  readonly state: { readonly skeleton: Tree<number>; readonly leaves: readonly LeafSpec[] };
  /** Periods used with `every` (none for most optimizers). */
  readonly periods: readonly number[];
  readonly init: ProgramPlan;
  readonly steps: readonly StepPattern[];
  readonly limits: PlanLimits;
  /** Where it came from (file, export name), for messages. */
  readonly source: string;
}

/** The manifest as JSON text (Float64Array constants become arrays). */
export function manifestToJson(manifest: OptimizerManifest): string {
  // Anything else would be written as "{}" (or undefined), for manifestFromJson to refuse later.
  if (
    typeof manifest !== 'object' ||
    manifest === null ||
    (manifest as { format?: unknown }).format !== MANIFEST_FORMAT
  )
    throw new GrngError(
      'aot',
      `manifestToJson takes a manifest made by grng compile (format ${MANIFEST_FORMAT}), got ` +
        `${manifest === null ? 'null' : typeof manifest === 'object' ? `format ${String((manifest as { format?: unknown }).format)}` : typeof manifest}`,
    );
  return JSON.stringify(manifest, (_, value: unknown) =>
    value instanceof Float64Array ? Array.from(value) : value,
  );
}

/**
 * A manifest from JSON text or a parsed object, with constants restored to Float64Array; checked
 * for format.
 */
export function manifestFromJson(json: string | object): OptimizerManifest {
  const raw = (typeof json === 'string' ? JSON.parse(json) : json) as OptimizerManifest;
  if (raw === null || typeof raw !== 'object' || raw.format !== MANIFEST_FORMAT) {
    throw new GrngError(
      'aot',
      `not a grng compile manifest (format ` +
        `${String((raw as { format?: unknown } | null)?.format)}; expected ` +
        `${MANIFEST_FORMAT}): recompile with this grng version`,
    );
  }
  const restore = (plan: ProgramPlan): ProgramPlan => ({
    ...plan,
    slots: plan.slots.map((slot): Slot =>
      slot.kind === 'constants'
        ? { ...slot, data: Float64Array.from(slot.data as unknown as number[]) }
        : slot,
    ),
  });
  return {
    ...raw,
    init: restore(raw.init),
    steps: raw.steps.map((s) => ({ ...s, plan: restore(s.plan) })),
  };
}

/** The periods of `periods` due at step t (1-based), as StepPattern.periods lists them. */
export function dueAt(periods: readonly number[], t: number): number[] {
  return periods.filter((p) => (t - 1) % p === 0).sort((a, b) => a - b);
}
