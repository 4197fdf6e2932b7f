import type { DType, Node } from '../compiler/ir/index.js';

/**
 * Where compiled programs run. The CPU interpreter is the reference; WebGPU devices
 * (Dawn in Node, navigator.gpu in browsers) implement the same interface.
 */
export interface Device {
  readonly kind: 'cpu' | 'webgpu';
  /** Human-readable description of the adapter or interpreter mode. */
  readonly description: string;
  /** Evaluates `outputs` with the named inputs bound; returns one device array per output. */
  execute(outputs: readonly Node[], inputs: ReadonlyMap<string, DeviceArray>): Promise<DeviceArray[]>;
  /** Moves host data onto the device. */
  upload(data: Float64Array, shape: readonly number[], dtype: DType): DeviceArray;
}

/** An array living on a device; `await x.read()` brings its numbers to the host. */
export interface DeviceArray {
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly device: Device;
  /** The values in row-major order (f32, i32 and bool all fit exactly in a Float64Array). */
  read(): Promise<Float64Array>;
}
