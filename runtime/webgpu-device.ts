import { fmtShape, GrngError, shapeSize, topoSort, type DType, type Node } from '../compiler/ir/index.js';
import { compileProgram, explainProgram, type Program } from '../compiler/program.js';
import { BufferPool } from './buffer-pool.js';
import { consumedError, type Device, type DeviceArray, type ExecuteOptions } from './device.js';

/** What the WebGPU device needs from an opened adapter. */
export interface GpuHandle {
  readonly device: GPUDevice;
  /** e.g. "llvmpipe (OpenGL ES, compatibility)". */
  readonly description: string;
  /**
   * Whatever must outlive the device (Dawn's instance: if it is garbage-collected, the device
   * dies under running work and the process aborts).
   */
  readonly owner?: unknown;
}

// WebGPU's flag values (spec constants), so this module loads where the GPU* globals are absent.
const MAP_READ = 0x0001;
const COPY_SRC = 0x0004;
const COPY_DST = 0x0008;
const STORAGE = 0x0080;
const MAP_MODE_READ = 0x0001;
const USAGE = STORAGE | COPY_SRC | COPY_DST;
const bytesOf = (elements: number) => Math.max(4, elements * 4);

/** An array in a GPU buffer (f32 as f32, i32 and bool as i32). */
export class GpuArray implements DeviceArray {
  consumed = false;

  constructor(
    readonly device: WebGpuDevice,
    readonly buffer: GPUBuffer,
    readonly shape: readonly number[],
    readonly dtype: DType,
  ) {}

  async read(): Promise<Float64Array> {
    if (this.consumed) throw consumedError();
    const gpu = this.device.gpu;
    const n = shapeSize(this.shape);
    const staging = gpu.createBuffer({ size: bytesOf(n), usage: MAP_READ | COPY_DST });
    const encoder = gpu.createCommandEncoder();
    encoder.copyBufferToBuffer(this.buffer, 0, staging, 0, bytesOf(n));
    gpu.queue.submit([encoder.finish()]);
    await staging.mapAsync(MAP_MODE_READ);
    const raw = staging.getMappedRange();
    const values = Float64Array.from(this.dtype === 'f32' ? new Float32Array(raw, 0, n) : new Int32Array(raw, 0, n));
    staging.unmap();
    staging.destroy();
    return values;
  }

  toString(): string {
    return `DeviceArray(webgpu, ${this.dtype}${fmtShape(this.shape)})`;
  }
}

interface Executable {
  readonly program: Program;
  readonly pipelines: readonly GPUComputePipeline[];
  /** Uploaded once per executable: data constants by node id. */
  readonly constants: ReadonlyMap<number, GPUBuffer>;
}

/** Runs compiled WGSL programs on a WebGPU device; one command buffer per call. */
export class WebGpuDevice implements Device {
  readonly kind = 'webgpu' as const;
  readonly description: string;
  readonly gpu: GPUDevice;
  readonly owner: unknown;
  private readonly executables = new Map<string, Executable>();
  private readonly pool: BufferPool;
  // Arrays the user dropped give their buffers back to the pool.
  private readonly reclaim = new FinalizationRegistry<GPUBuffer>((buffer) => this.pool.release(buffer));
  /** Compile without fusion (every op its own kernel): the reference schedule for tests. */
  fuse = true;

  constructor(handle: GpuHandle) {
    this.gpu = handle.device;
    this.description = handle.description;
    this.owner = handle.owner;
    this.pool = new BufferPool(this.gpu, USAGE);
  }

  /** A device array owning `buffer`: when it is garbage-collected, the buffer returns to the pool. */
  private owned(buffer: GPUBuffer, shape: readonly number[], dtype: DType): GpuArray {
    const array = new GpuArray(this, buffer, shape, dtype);
    this.reclaim.register(array, buffer, array);
    return array;
  }

  upload(data: Float64Array, shape: readonly number[], dtype: DType): GpuArray {
    const buffer = this.pool.acquire(bytesOf(data.length));
    const typed = dtype === 'f32' ? Float32Array.from(data) : Int32Array.from(data);
    if (typed.length > 0) this.gpu.queue.writeBuffer(buffer, 0, typed);
    return this.owned(buffer, shape, dtype);
  }

  /** The kernels, their inputs and (with `withSource`) WGSL that `outputs` compile to. */
  explain(outputs: readonly Node[], withSource = false): string {
    return explainProgram(this.executable(outputs).program, withSource);
  }

  /** How many distinct programs this device has compiled (each a set of pipelines). */
  get programCount(): number {
    return this.executables.size;
  }

  /** Number of kernels (compute dispatches) `outputs` compile to. */
  kernelCount(outputs: readonly Node[]): number {
    return this.executable(outputs).program.kernels.length;
  }

  async execute(outputs: readonly Node[], inputs: ReadonlyMap<string, DeviceArray>, options: ExecuteOptions = {}): Promise<GpuArray[]> {
    const donated = options.donated ?? new Set<string>();
    const exe = this.executable(outputs, donated);
    const buffers = new Map<number, GPUBuffer>(exe.constants);
    const given = new Map<number, GpuArray>();
    for (const node of exe.program.externals) {
      if (node.op !== 'input') continue;
      const { name } = (node as Node<'input'>).attrs;
      const arr = inputs.get(name);
      if (arr === undefined) throw new GrngError('execute', `missing input "${name}" ${fmtShape(node.shape)} ${node.dtype}; bind a value for every input the outputs depend on`);
      if (!(arr instanceof GpuArray) || arr.device !== this) {
        throw new GrngError('execute', `input "${name}" lives on another device (${arr.device.description}); read it back or run there`);
      }
      if (arr.consumed) throw consumedError();
      buffers.set(node.id, arr.buffer);
      given.set(node.id, arr);
    }
    const encoder = this.gpu.createCommandEncoder();
    const pass = encoder.beginComputePass();
    const created: GPUBuffer[] = [];
    const overwritten = new Set<GPUBuffer>();
    exe.program.kernels.forEach(({ plan, source, aliases }, k) => {
      const outs = plan.roots.flatMap((root, r) => {
        const alias = aliases.get(r);
        if (alias !== undefined) {
          // In place: the root is stored into the donated input's buffer (bound read_write).
          const buffer = buffers.get(plan.inputs[alias].id) as GPUBuffer;
          overwritten.add(buffer);
          buffers.set(root.id, buffer);
          return [];
        }
        const out = this.pool.acquire(bytesOf(shapeSize(root.shape)));
        created.push(out);
        buffers.set(root.id, out);
        return [out];
      });
      if (source.invocations === 0) return;
      const entries = [...plan.inputs.map((n) => buffers.get(n.id) as GPUBuffer), ...outs].map((buffer, binding) => ({ binding, resource: { buffer } }));
      pass.setPipeline(exe.pipelines[k]);
      pass.setBindGroup(0, this.gpu.createBindGroup({ layout: exe.pipelines[k].getBindGroupLayout(0), entries }));
      const [x, y] = this.dispatchSize(Math.ceil(source.invocations / source.workgroupSize));
      pass.dispatchWorkgroups(x, y);
    });
    pass.end();
    this.gpu.queue.submit([encoder.finish()]);
    // An output that is an input is that input's array; constants stay owned by the executable.
    const results = new Map<number, GpuArray>();
    for (const node of outputs) {
      if (results.has(node.id)) continue;
      const input = given.get(node.id);
      if (input !== undefined) {
        results.set(node.id, input);
        continue;
      }
      const buffer = buffers.get(node.id) as GPUBuffer;
      const owned = created.includes(buffer) || overwritten.has(buffer);
      results.set(node.id, owned ? this.owned(buffer, node.shape, node.dtype) : new GpuArray(this, buffer, node.shape, node.dtype));
    }
    const kept = new Set([...results.values()].map((r) => r.buffer));
    // Donated arrays are consumed; their buffers now belong to a result or go back to the pool.
    for (const name of donated) {
      const arr = inputs.get(name) as GpuArray;
      if (kept.has(arr.buffer) && !overwritten.has(arr.buffer)) continue; // returned as it is
      arr.consumed = true;
      this.reclaim.unregister(arr);
      if (!kept.has(arr.buffer)) this.pool.release(arr.buffer);
    }
    // Intermediates go back to the pool at once: later submissions run after this one.
    for (const b of created) if (!kept.has(b)) this.pool.release(b);
    return outputs.map((node) => results.get(node.id) as GpuArray);
  }

  /** Splits a workgroup count over x and y so neither exceeds maxComputeWorkgroupsPerDimension. */
  private dispatchSize(groups: number): [number, number] {
    const max = this.gpu.limits.maxComputeWorkgroupsPerDimension;
    if (groups <= max) return [groups, 1];
    const y = Math.ceil(groups / max);
    if (y > max) throw new GrngError('execute', `${groups} workgroups exceed the device's ${max}×${max} dispatch limit`);
    return [Math.ceil(groups / y), y];
  }

  private executable(outputs: readonly Node[], donated: ReadonlySet<string> = new Set()): Executable {
    // Nodes are hash-consed, so the output ids identify the whole graph.
    const key = `${this.fuse ? 'f' : 'u'}:${outputs.map((n) => n.id).join(',')}:${[...donated].sort().join(',')}`;
    let exe = this.executables.get(key);
    if (exe === undefined) {
      const donatedIds = new Set(topoSort(outputs).flatMap((n) => (n.op === 'input' && donated.has((n as Node<'input'>).attrs.name) ? [n.id] : [])));
      const program = compileProgram(outputs, { limits: this.gpu.limits, fuse: this.fuse, donated: donatedIds });
      // GRNG_EXPLAIN=1 prints each new program's kernels; GRNG_EXPLAIN=wgsl adds their source.
      const explain = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env.GRNG_EXPLAIN;
      if (explain) console.error(explainProgram(program, explain === 'wgsl'));
      const pipelines = program.kernels.map(({ source }) =>
        this.gpu.createComputePipeline({ layout: 'auto', compute: { module: this.gpu.createShaderModule({ code: source.code }), entryPoint: 'main' } }),
      );
      const constants = new Map<number, GPUBuffer>();
      for (const node of program.externals) {
        if (node.op !== 'constant') continue;
        const attrs = (node as Node<'constant'>).attrs;
        if ('data' in attrs) constants.set(node.id, this.upload(attrs.data, node.shape, node.dtype).buffer);
      }
      exe = { program, pipelines, constants };
      this.executables.set(key, exe);
    }
    return exe;
  }
}
