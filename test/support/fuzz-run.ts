// Runs one fuzz program (fuzz-programs.ts) through jit on a WebGPU device and on the float32
// interpreter, and says what happened: the two agree within the program's error bound
// (error-bounds.ts), the compiler refused it with a GrngError (acceptable), or it failed (a
// wrong answer, WGSL the device rejected, any other error).
import { array, GrngError, input, jit, type DeviceArray, type Tensor } from '../../index.js';
import type { ArrayLeaf } from '../../runtime/jit.js';
import { CpuDevice } from '../../runtime/cpu-device.js';
import type { WebGpuDevice } from '../../runtime/webgpu-device.js';
import { compileProgram } from '../../compiler/program.js';
import { boundedEval, type Bounded } from './error-bounds.js';
import type { FuzzProgram } from './fuzz-programs.js';

export type Outcome =
  | {
      readonly kind: 'agree';
      /** Elements compared, and those whose bound the analysis gave up on (∞). */
      readonly checked: number;
      readonly unchecked: number;
      /** Largest |gpu − ref| / (2·bound) over elements with a nonzero bound. */
      readonly worst: number;
      /** Most workgroups one dispatch of the program needs (past 65535: split over x and y). */
      readonly workgroups: number;
    }
  | { readonly kind: 'refused'; readonly reason: string; readonly message: string }
  | { readonly kind: 'failed'; readonly reason: string; readonly message: string };

/**
 * The kind of a GrngError, for counting refusals: the op and the message's first words with
 * numbers blanked.
 */
export function refusalKind(error: GrngError): string {
  // jit names the call's arguments, then the op that refused them: keep the op's words.
  const message = error.message.replace(/^jit: tracing the function with \(.*?\) failed — /, '');
  const words = message.replace(/\d+/g, 'N').split(/\s+/).slice(0, 12).join(' ');
  return words.length > 100 ? `${words.slice(0, 100)}…` : words;
}

/** A GrngError the device raises for work it rejected is a grng bug, not a refusal. */
const isGpuRejection = (error: GrngError) => /the GPU rejected/.test(error.message);

/** The call's arguments as the program's run spec says: numbers, host or device arrays. */
function argumentsFor(
  p: FuzzProgram,
  xs: readonly Float64Array[],
  device: WebGpuDevice | CpuDevice,
): ArrayLeaf[] {
  const items = p.inputs.map((v, i) => ({ data: xs[i], shape: v.shape, dtype: v.dtype }));
  const layout = p.run.layout;
  const onDevice = items.map((item, i) => !p.inputs[i].asNumber && layout !== 'host');
  const uploaded =
    layout === 'packed'
      ? device.uploadAll(items.filter((_, i) => onDevice[i]))
      : items.filter((_, i) => onDevice[i]).map((it) => device.upload(it.data, it.shape, it.dtype));
  let k = 0;
  return items.map((item, i): ArrayLeaf => {
    if (p.inputs[i].asNumber) return item.data[0];
    if (!onDevice[i]) return array(item.data, item.shape, item.dtype);
    return uploaded[k++] as DeviceArray;
  });
}

/** Runs `p` through jit on `device`; the outputs' values. */
async function runOn(
  p: FuzzProgram,
  xs: readonly Float64Array[],
  device: WebGpuDevice | CpuDevice,
): Promise<Float64Array[]> {
  const f = (...ts: Tensor[]) => p.outputs(ts);
  const out = (await jit(f, { device, donate: p.run.donate })(
    ...argumentsFor(p, xs, device),
  )) as DeviceArray[];
  return Promise.all(out.map((a) => a.read()));
}

/** The program on the GPU, with WebGPU's error scopes catching what the device rejected. */
export async function runOnGpu(
  p: FuzzProgram,
  xs: readonly Float64Array[],
  gpu: WebGpuDevice,
): Promise<Float64Array[] | Outcome> {
  const scopes = ['validation', 'out-of-memory', 'internal'] as const;
  scopes.forEach((s) => gpu.gpu.pushErrorScope(s));
  let result: Float64Array[] | Outcome;
  gpu.fuse = p.run.fuse;
  try {
    result = await runOn(p, xs, gpu);
  } catch (error) {
    if (error instanceof GrngError && !isGpuRejection(error))
      result = { kind: 'refused', reason: refusalKind(error), message: error.message };
    else
      result = {
        kind: 'failed',
        reason: error instanceof GrngError ? 'GPU rejected work' : 'exception',
        message: error instanceof Error ? (error.stack ?? error.message) : String(error),
      };
  } finally {
    gpu.fuse = true;
  }
  const errors = [];
  for (let i = 0; i < scopes.length; i++) errors.push(await gpu.gpu.popErrorScope());
  const rejected = errors.find((e) => e !== null);
  if (rejected !== undefined && rejected !== null)
    return { kind: 'failed', reason: 'GPU error', message: rejected.message };
  return result;
}

/** Most workgroups a dispatch of the program's plan needs (donating as the run did). */
function workgroupsOf(p: FuzzProgram, gpu: WebGpuDevice): number {
  const ts = p.inputs.map((v, i) => input(`wg${i}`, v.shape, v.dtype));
  const program = compileProgram(
    p.outputs(ts).map((t) => t.node),
    {
      limits: gpu.gpu.limits,
      fuse: p.run.fuse,
      donated: new Set(p.run.donate.map((i) => ts[i].node.id)),
    },
  );
  return Math.max(
    0,
    ...program.kernels.map((k) => Math.ceil(k.source.invocations / k.source.workgroupSize)),
  );
}

/** Runs `p` on the GPU and the float32 interpreter and classifies the outcome. */
export async function runProgram(p: FuzzProgram, gpu: WebGpuDevice): Promise<Outcome> {
  const xs = p.inputValues();
  const got = await runOnGpu(p, xs, gpu);
  if (!Array.isArray(got)) return got;
  const want = await runOn(p, xs, new CpuDevice('f32'));
  const ts = p.inputs.map((v, i) => input(`fz${i}`, v.shape, v.dtype));
  const bounded = boundedEval(
    p.outputs(ts).map((t) => t.node),
    new Map(ts.map((_, i) => [`fz${i}`, xs[i]] as const)),
  );
  const verdict = compareBounded(got, want, bounded);
  if (verdict.failure !== undefined)
    return { kind: 'failed', reason: verdict.failure.reason, message: verdict.failure.message };
  return {
    kind: 'agree',
    checked: verdict.checked,
    unchecked: verdict.unchecked,
    worst: verdict.worst,
    workgroups: workgroupsOf(p, gpu),
  };
}

/** Both non-finite and equal (NaN equals NaN), or equal numbers (−0 equals +0). */
const same = (a: number, b: number) => a === b || (Number.isNaN(a) && Number.isNaN(b));

/**
 * The comparison: within the bound E the float32 interpreter (a check of the analysis itself)
 * and within 2E the GPU, since each errs by at most E from the float64 value. Elements whose
 * bound is ∞ are not compared; non-finite references with a finite bound must match exactly.
 */
export function compareBounded(
  got: readonly Float64Array[],
  want: readonly Float64Array[],
  bounded: readonly Bounded[],
): {
  checked: number;
  unchecked: number;
  worst: number;
  failure?: { reason: string; message: string };
} {
  let [checked, unchecked, worst] = [0, 0, 0];
  // Relative slack for the float64 reference's own rounding (≈ 2^-52 per operation).
  const slack = 1 + 2 ** -20;
  for (let k = 0; k < want.length; k++) {
    const { value, bound } = bounded[k];
    if (got[k].length !== want[k].length || value.length !== want[k].length)
      return {
        checked,
        unchecked,
        worst,
        failure: {
          reason: 'wrong answer',
          message: `output ${k}: ${got[k].length} elements from the GPU, ${want[k].length} expected`,
        },
      };
    for (let i = 0; i < value.length; i++) {
      const [g, r, v, e] = [got[k][i], want[k][i], value[i], bound[i]];
      if (!Number.isFinite(e)) {
        unchecked++;
        continue;
      }
      checked++;
      const where = `output ${k}[${i}]: gpu ${g}, float32 interpreter ${r}, float64 ${v}, bound ${e}`;
      const finite = Number.isFinite(r) && Number.isFinite(v);
      if (!finite ? !same(r, v) : Math.abs(r - v) > e * slack)
        return {
          checked,
          unchecked,
          worst,
          failure: { reason: 'error bound violated by the interpreter', message: where },
        };
      if (!finite ? !same(g, r) : !(Math.abs(g - r) <= 2 * e * slack))
        return { checked, unchecked, worst, failure: { reason: 'wrong answer', message: where } };
      if (e > 0) worst = Math.max(worst, Math.abs(g - r) / (2 * e));
    }
  }
  return { checked, unchecked, worst };
}
