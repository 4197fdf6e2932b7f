import { shapeSize, type DType } from '../core/ir/index.js';
import { fmtShape } from '../core/errors.js';
import { consumedError, type DeviceArray } from './device.js';
import type { WebGpuDevice } from './webgpu-device.js';

const MAP_READ = 0x0001;
const COPY_DST = 0x0008;
const MAP_MODE_READ = 0x0001;

/**
 * A GPU buffer and the arrays that are views of it (packed parameters, a call's results). It
 * goes back to the device's pool when the last view is dropped or donated.
 */
export class Allocation {
  private views = 0;

  constructor(
    readonly buffer: GPUBuffer,
    private readonly free: (buffer: GPUBuffer) => void,
  ) {}

  retain(): void {
    this.views++;
  }

  release(): void {
    if (--this.views === 0) this.free(this.buffer);
  }
}

/** An array in a region of a GPU buffer (f32 as f32, i32 and bool as i32), at an element offset. */
export class GpuArray implements DeviceArray {
  consumed = false;

  constructor(
    readonly device: WebGpuDevice,
    readonly allocation: Allocation,
    /** Element offset of the array in its buffer (a multiple of 4: regions start on vec4s). */
    readonly offset: number,
    readonly shape: readonly number[],
    readonly dtype: DType,
    /**
     * The value, as stored (f32-rounded), of an array uploaded from a number the caller passed
     * (ArrayData.hostNumber): programs compute what depends only on such values on the host
     * (compiler/hoist-host-scalars.ts). Arrays are never written after creation (a donated one
     * is consumed), so it stays true.
     */
    readonly hostValue?: number,
  ) {}

  get buffer(): GPUBuffer {
    return this.allocation.buffer;
  }

  async read(): Promise<Float64Array> {
    if (this.consumed) throw consumedError();
    const gpu = this.device.gpu;
    const n = shapeSize(this.shape);
    const bytes = Math.max(4, n * 4);
    const staging = gpu.createBuffer({ size: bytes, usage: MAP_READ | COPY_DST });
    const encoder = gpu.createCommandEncoder();
    encoder.copyBufferToBuffer(this.buffer, this.offset * 4, staging, 0, bytes);
    gpu.queue.submit([encoder.finish()]);
    await staging.mapAsync(MAP_MODE_READ);
    const raw = staging.getMappedRange();
    const values = Float64Array.from(
      this.dtype === 'f32' ? new Float32Array(raw, 0, n) : new Int32Array(raw, 0, n),
    );
    staging.unmap();
    staging.destroy();
    this.device.checkErrors();
    return values;
  }

  dispose(): void {
    this.device.dispose(this);
  }

  toString(): string {
    return `DeviceArray(webgpu, ${this.dtype}${fmtShape(this.shape)})`;
  }
}
