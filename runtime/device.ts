import { type DType, type Node } from '../core/ir/index.js';
import { GrngError } from '../core/errors.js';

/**
 * Where compiled programs run. The CPU interpreter is the reference; WebGPU devices
 * (Dawn in Node, navigator.gpu in browsers) implement the same interface.
 */
export interface Device {
  readonly kind: 'cpu' | 'webgpu';
  /** Human-readable description of the adapter or interpreter mode. */
  readonly description: string;
  /**
   * Evaluates `outputs` with the named inputs bound; returns one device array per output.
   * Donated inputs may have their memory reused for outputs (updated in place); afterwards they
   * are consumed, unless returned as an output themselves.
   */
  execute(
    outputs: readonly Node[],
    inputs: ReadonlyMap<string, DeviceArray>,
    options?: ExecuteOptions,
  ): Promise<DeviceArray[]>;
  /** Moves host data onto the device. */
  upload(data: Float64Array, shape: readonly number[], dtype: DType): DeviceArray;
  /**
   * Moves several arrays at once; WebGPU packs them into one buffer per storage type (one binding
   * for all).
   */
  uploadAll(items: readonly ArrayData[]): DeviceArray[];
  /**
   * Why the device was lost (destroyed, a driver reset, a GPU removed), or undefined while it
   * works. A lost device fails every later call; a new one must be opened (the Trainer can).
   */
  lostReason?(): string | undefined;
}

/** Host values for a device array: row-major data with its shape and dtype. */
export interface ArrayData {
  readonly data: Float64Array;
  readonly shape: readonly number[];
  readonly dtype: DType;
  /**
   * A number the caller passed (a hyperparameter, the step): programs may compute with its value
   * on the host (compiler/hoist-host-scalars.ts). Arrays of data — parameters, state, a batch —
   * are not, so a step computes the same bits whether they were uploaded or computed.
   */
  readonly hostNumber?: boolean;
}

export interface ExecuteOptions {
  /** Names of inputs whose arrays are donated to this call. */
  readonly donated?: ReadonlySet<string>;
  /**
   * The donated arguments' input nodes in argument order, read by the outputs or not: the k-th
   * result of a type is stored in the k-th such argument's region (CompileOptions.argumentOrder),
   * so parameters and state stay where the program was compiled to find them and the next call
   * reuses it instead of compiling for a shuffled layout.
   */
  readonly argumentOrder?: readonly Node[];
}

/** An array living on a device; `await x.read()` brings its numbers to the host. */
export interface DeviceArray {
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly device: Device;
  /** The values in row-major order (f32, i32 and bool all fit exactly in a Float64Array). */
  read(): Promise<Float64Array>;
  /**
   * True once the array was donated to a call or disposed: its memory may hold something else now.
   */
  readonly consumed: boolean;
  /**
   * Frees the array's memory now instead of when it is garbage-collected; reading it afterwards is
   * an error.
   */
  dispose(): void;
}

/** The error for using an array after donating it. */
export function consumedError(): GrngError {
  return new GrngError(
    'read',
    'this array was donated to a call (donate) or disposed, and its memory ' +
      "reused; use that call's result instead",
  );
}
