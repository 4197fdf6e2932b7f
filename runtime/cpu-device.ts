import { type DType, type Node } from '../core/ir/index.js';
import { fmtShape, GrngError } from '../core/errors.js';
import {
  consumedError,
  type ArrayData,
  type Device,
  type DeviceArray,
  type ExecuteOptions,
} from './device.js';
import { interpret, type Precision } from './interpreter.js';

/** A device array of the CPU interpreter: the values themselves. */
export class CpuArray implements DeviceArray {
  consumed = false;

  constructor(
    readonly device: CpuDevice,
    readonly data: Float64Array,
    readonly shape: readonly number[],
    readonly dtype: DType,
  ) {}

  read(): Promise<Float64Array> {
    if (this.consumed) return Promise.reject(consumedError());
    return Promise.resolve(Float64Array.from(this.data));
  }

  dispose(): void {
    this.consumed = true;
  }

  toString(): string {
    return `DeviceArray(cpu, ${this.dtype}${fmtShape(this.shape)})`;
  }
}

/** The reference interpreter as a device: float64 math, or float32 rounding of every f32 value. */
export class CpuDevice implements Device {
  readonly kind = 'cpu' as const;
  readonly precision: Precision;

  constructor(precision: Precision = 'f64') {
    this.precision = precision;
  }

  get description(): string {
    return (
      `CPU reference interpreter ` + `(${this.precision === 'f64' ? 'float64' : 'float32-rounded'})`
    );
  }

  upload(data: Float64Array, shape: readonly number[], dtype: DType): CpuArray {
    return new CpuArray(this, Float64Array.from(data), shape, dtype);
  }

  uploadAll(items: readonly ArrayData[]): CpuArray[] {
    return items.map((item) => this.upload(item.data, item.shape, item.dtype));
  }

  async execute(
    outputs: readonly Node[],
    inputs: ReadonlyMap<string, DeviceArray>,
    options: ExecuteOptions = {},
  ): Promise<CpuArray[]> {
    const values = new Map<string, Float64Array>();
    for (const [name, arr] of inputs) {
      if (!(arr instanceof CpuArray) || arr.device !== this) {
        throw new GrngError(
          'execute',
          `input "${name}" lives on another device (${arr.device.description}); ` +
            `read it back or run there`,
        );
      }
      if (arr.consumed) throw consumedError();
      values.set(name, arr.data);
    }
    const results = interpret(outputs, values, { precision: this.precision });
    // The interpreter never reuses memory, but donation has the same meaning on every device.
    for (const name of options.donated ?? []) (inputs.get(name) as CpuArray).consumed = true;
    return outputs.map((n, i) => new CpuArray(this, results[i], n.shape, n.dtype));
  }
}
