import { shapeSize, topoSort, type DType, type Node } from '../core/ir/index.js';
import { fmtShape, GrngError } from '../core/errors.js';
import {
  packInOrder,
  packLengths,
  offsetCells,
  paddedLength,
  scalarCells,
  storageOf,
  type InputLayout,
  type Region,
  type StorageType,
} from '../compiler/memory/layout.js';
import { planOf, type ProgramPlan } from '../compiler/program-plan.js';
import { bindingElements } from '../compiler/memory/buffer-split.js';
import type { DispatchSource } from '../compiler/wgsl/kernel.js';
import { compileProgram, explainProgram, type Program } from '../compiler/program.js';
import { scalarCellsOf, type ScalarCells } from './host-scalars.js';
import { BufferPool, DEFAULT_POOL_BYTES } from './buffer-pool.js';
import { LruCache } from './lru-cache.js';
import {
  consumedError,
  type ArrayData,
  type Device,
  type DeviceArray,
  type ExecuteOptions,
} from './device.js';
import { Allocation, GpuArray } from './gpu-array.js';
import { GATE_WGSL, GATE_WORKGROUP, planGates, type GatePlan } from './gpu/gates.js';

export { GpuArray } from './gpu-array.js';

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
  /**
   * Overrides CompileOptions.maxMergedInvocations (default: CPU_ADAPTER_MERGED_INVOCATIONS on CPU
   * adapters, else unlimited).
   */
  readonly maxMergedInvocations?: number;
}

/**
 * CPU adapters (llvmpipe, SwiftShader) run a segmented kernel's branches masked: measured on
 * llvmpipe, AdamW over 269k parameters in 8 segments of one dispatch took 2.1× one segment,
 * and 8 dispatches 1.4×. A dispatch costs about as much as ~6,000 vec4 AdamW invocations there,
 * so plans share a dispatch only while they cover at most 4,096 invocations together.
 */
export const CPU_ADAPTER_MERGED_INVOCATIONS = 4096;
const CPU_ADAPTER = /llvmpipe|lavapipe|softpipe|swiftshader/i;

// WebGPU's flag values (spec constants), so this module loads where the GPU* globals are absent.
const COPY_SRC = 0x0004;
const COPY_DST = 0x0008;
const STORAGE = 0x0080;
const UNIFORM = 0x0040;
const INDIRECT = 0x0100;
const MAP_READ = 0x0001;
const MAP_MODE_READ = 0x0001;
const USAGE = STORAGE | COPY_SRC | COPY_DST;

interface Executable {
  /** The compiled graph (absent for plans loaded from `grng compile` output). */
  readonly program?: Program;
  readonly plan: ProgramPlan;
  readonly pipelines: readonly GPUComputePipeline[];
  /** The program's data constants, uploaded once: one buffer per constants slot. */
  readonly constants: ReadonlyMap<number, GPUBuffer>;
  /** Elements of each buffer arenas share (Slot 'arena' `buffer`): the longest of its arenas. */
  readonly sharedArenaLengths: ReadonlyMap<number, number>;
  /**
   * The program's scalars uniform (refreshed from the inputs at the start of each call), if it has
   * one.
   */
  readonly scalars: GPUBuffer | undefined;
  /**
   * The kernels' offsets uniforms, uploaded once into one buffer: kernel k's at byte `at[k]`
   * (undefined for a kernel without one).
   */
  readonly offsets: { readonly buffer: GPUBuffer; readonly at: readonly (number | undefined)[] };
  readonly bindGroups: Map<string, GPUBindGroup>;
  /** The scalars uniform's cells the host fills each call (runtime/host-scalars.ts). */
  readonly scalarCells?: ScalarCells;
  /** Gated dispatches (runtime/gpu/gates.ts), when the plan has any. */
  readonly gates?: {
    readonly plan: GatePlan;
    readonly pipeline: GPUComputePipeline;
    readonly counts: GPUBuffer;
    readonly args: GPUBuffer;
    /** The groups' uniforms in one buffer, group g's at byte g·`stride`. */
    readonly params: GPUBuffer;
    readonly stride: number;
  };
}

/**
 * Bounds on what a WebGPU device keeps between calls, so a process that compiles many programs
 * (many shapes) stays within a fixed memory (docs/architecture.md, Running).
 */
export interface WebGpuMemoryOptions {
  /**
   * Compiled programs kept (default 256); past it the least recently used is dropped, its
   * buffers freed once queued work is done, and it compiles again when next called.
   */
  readonly maxExecutables?: number;
  /** Compute pipelines kept for sharing between programs by WGSL text (default 1024). */
  readonly maxPipelines?: number;
  /** Bytes of idle buffers the pool keeps for reuse (default 256 MiB; see BufferPool). */
  readonly maxPooledBytes?: number;
  /**
   * The largest buffer a kernel binds, in bytes (default: the device's
   * maxStorageBufferBindingSize, within maxBufferSize). Arrays are packed into buffers of at most
   * this size, and programs spread their results and intermediates over as many as they need.
   * A smaller value plans as an adapter with the default 128 MiB would (at least 64: an array
   * past it is bound as windows, which start on the adapter's minStorageBufferOffsetAlignment).
   */
  readonly maxBindingBytes?: number;
  /**
   * The longest array, in bytes (default: the device's maxBufferSize; at least 1024). An array
   * past it is refused with a GrngError before anything is allocated.
   */
  readonly maxBufferBytes?: number;
}

export const DEFAULT_MAX_EXECUTABLES = 256;
export const DEFAULT_MAX_PIPELINES = 1024;

/** What a device holds now (WebGpuDevice.memoryStats): flat over a long run, for soak tests. */
export interface MemoryStats {
  /** Compiled programs cached (at most maxExecutables). */
  readonly executables: number;
  /** Pipelines cached for sharing (at most maxPipelines). */
  readonly pipelines: number;
  /** Bytes of idle buffers in the pool (at most maxPooledBytes once the GPU has caught up). */
  readonly pooledBytes: number;
  /**
   * Bytes of the GPU buffers the device created and has not destroyed: arrays, pooled buffers,
   * programs' constants and uniforms (not the staging buffers of a read, destroyed at once).
   */
  readonly liveBytes: number;
  /** The most `liveBytes` reached since the device opened or resetPeakBytes() (a step's peak). */
  readonly peakBytes: number;
}

/** Bytes of an offsets uniform of `count` u32s, as the kernel declares it. */
const uniformSize = (count: number) => 16 * offsetCells(count);

/** Counters a caller can read to check what the device did (tests pin them). */
export interface DeviceStats {
  /** Compute dispatches recorded. */
  dispatches: number;
  /** Command buffers submitted by execute (one per call). */
  submits: number;
  /** Compute pipelines created (identical WGSL shares one while it stays cached). */
  pipelines: number;
  /** Characters of WGSL in those pipelines: what the driver's shader compiler was given. */
  shaderChars: number;
  /**
   * FLOPs of the matmuls dispatched unconditionally, 2·m·n·k per product: a FLOP floor's
   * numerator.
   */
  matmulFlops: number;
  /** FLOPs of the matmuls in gated dispatches: what ran of them depends on the device's data. */
  gatedMatmulFlops: number;
}

/**
 * Runs compiled WGSL programs on a WebGPU device; one command buffer per call. What it caches is
 * bounded by WebGpuMemoryOptions.
 */
export class WebGpuDevice implements Device {
  readonly kind = 'webgpu' as const;
  readonly description: string;
  readonly gpu: GPUDevice;
  readonly owner: unknown;
  readonly stats: DeviceStats = {
    dispatches: 0,
    submits: 0,
    pipelines: 0,
    shaderChars: 0,
    matmulFlops: 0,
    gatedMatmulFlops: 0,
  };
  private readonly executables: LruCache<string, Executable>;
  /**
   * Pipelines by WGSL source: the same kernel in two programs compiles once. WebGPU cannot destroy
   * a pipeline; an evicted one is freed when no executable holds it.
   */
  private readonly pipelines: LruCache<string, GPUComputePipeline>;
  /** The input nodes of each output set: one per program or so, bounded like the programs. */
  private readonly inputsOf: LruCache<string, readonly Node[]>;
  private readonly pool: BufferPool;
  /** Programs compiled (see programCount). */
  private compiled = 0;
  /** Bytes of the buffers executables hold (constants, uniforms), not yet destroyed. */
  private executableBytes = 0;
  private peakBytes = 0;
  // A dropped array releases its share of its buffer; the last one returns it to the pool.
  private readonly reclaim = new FinalizationRegistry<Allocation>((allocation) =>
    allocation.release(),
  );
  /** Compile without fusion (every op its own kernel): the reference schedule for tests. */
  fuse = true;

  constructor(handle: GpuHandle, memory: WebGpuMemoryOptions = {}) {
    if (typeof handle?.device?.createBuffer !== 'function')
      throw new GrngError(
        'WebGpuDevice',
        `expects a handle { device: GPUDevice, description }, got ${describeHandle(handle)}; ` +
          `createDevice() opens one`,
      );
    this.gpu = handle.device;
    this.description = handle.description;
    this.owner = handle.owner;
    const bounds = memoryBounds(memory, 'WebGpuDevice');
    this.executables = new LruCache(bounds.maxExecutables, (exe) => this.retire(exe));
    this.inputsOf = new LruCache(bounds.maxExecutables);
    this.pipelines = new LruCache(bounds.maxPipelines);
    this.pool = new BufferPool(this.gpu, USAGE, bounds.maxPooledBytes);
    const { maxStorageBufferBindingSize, maxBufferSize } = this.gpu.limits;
    this.maxBufferBytes = Math.min(bounds.maxBufferBytes, maxBufferSize);
    this.maxBindingBytes = Math.min(
      bounds.maxBindingBytes,
      maxStorageBufferBindingSize,
      this.maxBufferBytes,
    );
    this.maxMergedInvocations =
      handle.maxMergedInvocations ??
      (CPU_ADAPTER.test(handle.description) ? CPU_ADAPTER_MERGED_INVOCATIONS : Infinity);
    void this.gpu.lost?.then((info) => {
      this.lost = info.message !== '' ? info.message : String(info.reason ?? 'unknown reason');
    });
    // WebGPU reports invalid work asynchronously; keep the first report for the next call or read.
    this.gpu.addEventListener?.('uncapturederror', (event) => {
      const { error } = event as GPUUncapturedErrorEvent;
      if (isOutOfMemory(error)) this.outOfMemory ??= this.memoryReport(error.message);
      else this.gpuError ??= error.message;
    });
  }

  private gpuError: string | undefined;
  /** What the device held and the latest program needed when the GPU ran out of memory. */
  private outOfMemory: string | undefined;
  /** Bytes the latest call allocated for its results and intermediates. */
  private lastCallBytes = 0;

  private memoryReport(reason: string): string {
    const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
    return (
      `the GPU ran out of memory (${reason.split('\n')[0]}): the latest program needed ` +
      `${mib(this.lastCallBytes)} for its results and intermediates while the device held ` +
      `${mib(this.heldBytes)} in all (memoryStats()); train a smaller ` +
      `model or batch, or drop arrays no longer needed`
    );
  }
  private lost: string | undefined;

  lostReason(): string | undefined {
    return this.lost;
  }
  /** See GpuHandle.maxMergedInvocations. */
  private readonly maxMergedInvocations: number;
  /** See WebGpuMemoryOptions.maxBindingBytes: what plans and packs respect. */
  readonly maxBindingBytes: number;
  /**
   * See WebGpuMemoryOptions.maxBufferBytes: the longest array. One past maxBindingBytes has a
   * buffer of its own, which kernels bind as windows (compiler/wgsl/windowed-bindings.ts).
   */
  readonly maxBufferBytes: number;

  /**
   * Throws what the GPU reported about earlier work (once), so a failure never passes as results.
   */
  checkErrors(): void {
    if (this.lost !== undefined)
      throw new GrngError('execute', `the WebGPU device was lost: ${this.lost}`);
    if (this.outOfMemory !== undefined) {
      const message = this.outOfMemory;
      this.outOfMemory = undefined;
      throw new GrngError('execute', message);
    }
    const message = this.gpuError;
    if (message === undefined) return;
    this.gpuError = undefined;
    throw new GrngError(
      'execute',
      `the GPU rejected earlier work (a grng bug; please report it): ${message.split('\n')[0]}`,
    );
  }

  /**
   * Marks `array` consumed and releases its share of its buffer (the last share returns the buffer
   * to the pool).
   */
  dispose(array: GpuArray): void {
    if (array.consumed) return;
    array.consumed = true;
    this.reclaim.unregister(array);
    array.allocation.release();
  }

  /**
   * A new view of `allocation` handed to the caller: it holds the buffer until dropped or donated.
   */
  private view(
    allocation: Allocation,
    offset: number,
    shape: readonly number[],
    dtype: DType,
    hostValue?: number,
  ): GpuArray {
    const array = new GpuArray(this, allocation, offset, shape, dtype, hostValue);
    allocation.retain();
    this.reclaim.register(array, allocation, array);
    return array;
  }

  /**
   * A buffer for `elements` values, for the GPU to write (`forUpload`: for the host to write now).
   */
  private allocate(elements: number, forUpload = false): Allocation {
    const bytes = 4 * paddedLength(elements);
    return new Allocation(
      forUpload ? this.pool.acquireForUpload(bytes) : this.pool.acquire(bytes),
      (buffer) => this.pool.release(buffer),
    );
  }

  upload(data: Float64Array, shape: readonly number[], dtype: DType): GpuArray {
    return this.uploadAll([{ data, shape, dtype }])[0];
  }

  /**
   * Uploads several arrays packed into one buffer per storage type (f32, or i32 for i32 and
   * bool): programs bind the buffer once however many arrays it holds, which is what lets one
   * dispatch update every parameter of a model.
   */
  uploadAll(items: readonly ArrayData[], maxPackBytes = Infinity): GpuArray[] {
    for (const item of items) {
      if (4 * paddedLength(item.data.length) > this.maxBufferBytes)
        throw new GrngError(
          'upload',
          `an array of ${fmtShape(item.shape)} needs ${4 * paddedLength(item.data.length)} bytes, ` +
            `over the largest buffer this device allows (${this.maxBufferBytes} bytes, its ` +
            `maxBufferSize): split it into smaller arrays`,
        );
      if (item.data.length !== shapeSize(item.shape)) {
        throw new GrngError(
          'upload',
          `${item.data.length} values do not fill shape ${fmtShape(item.shape)} ` +
            `(${shapeSize(item.shape)} elements)`,
        );
      }
    }
    const out = new Array<GpuArray>(items.length);
    // A buffer is bound whole, so a pack stays within the binding size: a new buffer starts when
    // one is full (an array longer than a binding gets one of its own, bound as windows).
    const maxElements = bindingElements(Math.min(this.maxBindingBytes, maxPackBytes));
    const packs: { item: ArrayData; i: number }[][] = [];
    for (const storage of ['f32', 'i32'] as const) {
      const here = items.flatMap((item, i) =>
        storageOf(item.dtype) === storage ? [{ item, i }] : [],
      );
      const packOf = packInOrder(
        here.map(({ item }) => item.data.length),
        maxElements,
      );
      const base = packs.length;
      here.forEach((entry, k) => (packs[base + packOf[k]] ??= []).push(entry));
    }
    for (const group of packs) {
      const { offsets, length } = packLengths(group.map(({ item }) => item.data.length));
      const allocation = this.allocate(length, true);
      const packed =
        storageOf(group[0].item.dtype) === 'f32'
          ? new Float32Array(length)
          : new Int32Array(length);
      group.forEach(({ item, i }, k) => {
        packed.set(item.data, offsets[k]);
        const stored = item.hostNumber === true ? packed[offsets[k]] : undefined;
        out[i] = this.view(allocation, offsets[k], item.shape, item.dtype, stored);
      });
      this.gpu.queue.writeBuffer(allocation.buffer, 0, packed);
    }
    this.notePeak();
    return out;
  }

  /**
   * The dispatches, their buffers and (with `withSource`) WGSL that `outputs` compile to, inputs in
   * buffers of their own.
   */
  explain(outputs: readonly Node[], withSource = false): string {
    return explainProgram(
      this.executable(outputs, new Set(), undefined).program as Program,
      withSource,
    );
  }

  /**
   * How many programs this device has compiled: a program evicted from the cache and called again
   * compiles, and counts, again.
   */
  get programCount(): number {
    return this.compiled;
  }

  /** What the device holds now (see MemoryStats). */
  memoryStats(): MemoryStats {
    return {
      executables: this.executables.size,
      pipelines: this.pipelines.size,
      pooledBytes: this.pool.pooledBytes,
      liveBytes: this.heldBytes,
      peakBytes: Math.max(this.peakBytes, this.heldBytes),
    };
  }

  /** Bytes of the buffers the device holds now (memoryStats().liveBytes). */
  private get heldBytes(): number {
    return this.pool.liveBytes + this.executableBytes;
  }

  /** Starts memoryStats().peakBytes over from what the device holds now. */
  resetPeakBytes(): void {
    this.peakBytes = this.heldBytes;
  }

  /** Records the bytes held now toward peakBytes (called wherever buffers were just acquired). */
  private notePeak(): void {
    this.peakBytes = Math.max(this.peakBytes, this.heldBytes);
  }

  /** Number of compute dispatches `outputs` compile to (inputs in buffers of their own). */
  kernelCount(outputs: readonly Node[]): number {
    return this.executable(outputs, new Set(), undefined).plan.kernels.length;
  }

  async execute(
    outputs: readonly Node[],
    inputs: ReadonlyMap<string, DeviceArray>,
    options: ExecuteOptions = {},
  ): Promise<GpuArray[]> {
    this.checkErrors();
    const donated = options.donated ?? new Set<string>();
    const given = this.bindInputs(outputs, inputs);
    const exe = this.executable(
      outputs,
      donated,
      given.layout,
      options.argumentOrder,
      given.hostInputs,
    );
    const out = this.run(exe, given.buffers, given.hostValues);
    // Donated arrays are consumed: their regions may hold results now.
    for (const name of donated) this.dispose(inputs.get(name) as GpuArray);
    return out;
  }

  /**
   * Runs a plan compiled ahead of time (`grng compile`): every input the plan reads is bound by
   * name and must sit where the plan expects it (the same packing: buffer order and offsets).
   */
  async executePlan(
    plan: ProgramPlan,
    inputs: ReadonlyMap<string, GpuArray>,
    donated: ReadonlySet<string> = new Set(),
  ): Promise<GpuArray[]> {
    this.checkErrors();
    const buffers: Allocation[] = [];
    for (const expected of plan.inputs) {
      const arr = inputs.get(expected.name);
      if (arr === undefined)
        throw new GrngError(
          'executePlan',
          `missing input "${expected.name}" ${expected.dtype}${fmtShape(expected.shape)}`,
        );
      if (!(arr instanceof GpuArray) || arr.device !== this)
        throw new GrngError('executePlan', `input "${expected.name}" lives on another device`);
      if (arr.consumed) throw consumedError();
      if (
        arr.dtype !== expected.dtype ||
        arr.shape.length !== expected.shape.length ||
        arr.shape.some((d, i) => d !== expected.shape[i])
      ) {
        throw new GrngError(
          'executePlan',
          `input "${expected.name}" must be ` +
            `${expected.dtype}${fmtShape(expected.shape)}, got ` +
            `${arr.dtype}${fmtShape(arr.shape)}`,
        );
      }
      let slot = buffers.indexOf(arr.allocation);
      if (slot < 0) slot = buffers.push(arr.allocation) - 1;
      if (slot !== expected.slot || arr.offset !== expected.offset) {
        throw new GrngError(
          'executePlan',
          `input "${expected.name}" must be at offset ${expected.offset} of ` +
            `input buffer ${expected.slot}, but is at ${arr.offset} of buffer ` +
            `${slot}: upload the arrays packed as the plan was compiled`,
        );
      }
    }
    // Loaded plans share the programs' cache (and its bound), under a key of their identity.
    let key = this.planKeys.get(plan);
    if (key === undefined) this.planKeys.set(plan, (key = `plan#${this.nextPlanKey++}`));
    let exe = this.executables.get(key);
    if (exe === undefined) {
      exe = this.prepare(plan);
      this.executables.set(key, exe);
    }
    const out = this.run(exe, buffers, hostValuesOf(inputs));
    for (const name of donated) this.dispose(inputs.get(name) as GpuArray);
    return out;
  }

  /**
   * Copies `from`'s values into `to`'s region (same shape and dtype), queued after earlier work.
   */
  copyInto(from: GpuArray, to: GpuArray): void {
    if (from.consumed || to.consumed) throw consumedError();
    if (
      from.dtype !== to.dtype ||
      from.shape.length !== to.shape.length ||
      from.shape.some((d, i) => d !== to.shape[i])
    ) {
      throw new GrngError(
        'copyInto',
        `cannot copy ${from.dtype}${fmtShape(from.shape)} into ${to.dtype}${fmtShape(to.shape)}`,
      );
    }
    const encoder = this.gpu.createCommandEncoder();
    encoder.copyBufferToBuffer(
      from.buffer,
      from.offset * 4,
      to.buffer,
      to.offset * 4,
      4 * paddedLength(shapeSize(from.shape)),
    );
    this.gpu.queue.submit([encoder.finish()]);
    this.pool.recordSubmit();
    this.stats.submits++;
  }

  /** Cache keys of loaded plans, by identity. */
  private readonly planKeys = new WeakMap<ProgramPlan, string>();
  private nextPlanKey = 0;

  /**
   * Records and submits one call of `exe` with the input slots in `inputBuffers`; returns views of
   * the outputs.
   */
  private run(
    exe: Executable,
    inputBuffers: readonly Allocation[],
    hostValues: ReadonlyMap<string, number> = new Map(),
  ): GpuArray[] {
    this.lastGated = exe.gates === undefined ? undefined : exe;
    if (this.retiredGated !== undefined && this.retiredGated !== this.lastGated) {
      this.retire(this.retiredGated);
      this.retiredGated = undefined;
    }
    const { slots } = exe.plan;
    const buffers: GPUBuffer[] = [];
    const results = new Map<number, Allocation>();
    const arenaOf = this.acquireArenas(exe);
    const arenas = [...new Set(arenaOf.values())];
    slots.forEach((slot, i) => {
      if (slot.kind === 'input') buffers.push(inputBuffers[slot.index].buffer);
      else if (slot.kind === 'constants') buffers.push(exe.constants.get(i) as GPUBuffer);
      else if (slot.kind === 'scalars') buffers.push(exe.scalars as GPUBuffer);
      else if (slot.kind === 'arena') buffers.push(arenaOf.get(i) as GPUBuffer);
      else {
        const allocation = this.allocate(slot.length);
        results.set(i, allocation);
        buffers.push(allocation.buffer);
      }
    });
    // This call's scalars into the uniform, by copies the queue orders after earlier calls' reads
    // (writing the uniform itself would wait for them): the cells the host fills (hoisted values,
    // and the inputs' when all are numbers) staged in an idle upload buffer, the rest copied from
    // the inputs' buffers.
    const encoder = this.gpu.createCommandEncoder();
    const staged: GPUBuffer[] = [];
    const host = exe.scalarCells?.(hostValues);
    if (host !== undefined && host.cells > 0) {
      const bytes = 16 * host.cells;
      const upload = this.pool.acquireForUpload(bytes);
      this.gpu.queue.writeBuffer(upload, 0, host.data, 0, 4 * host.cells);
      encoder.copyBufferToBuffer(upload, 0, exe.scalars as GPUBuffer, 0, bytes);
      staged.push(upload);
    }
    for (const slot of slots) {
      if (slot.kind !== 'scalars') continue;
      slot.sources.forEach((source, cell) => {
        if ('host' in source || cell < (host?.cells ?? 0)) return;
        encoder.copyBufferToBuffer(
          buffers[source.slot],
          source.offset * 4,
          exe.scalars as GPUBuffer,
          cell * 16,
          4,
        );
      });
    }
    const pass = encoder.beginComputePass();
    for (const [k, source] of exe.plan.kernels.entries()) {
      if (source.invocations === 0) continue;
      const gates = exe.gates;
      const group = gates?.plan.gateBefore.get(k);
      if (gates !== undefined && group !== undefined) this.openGate(exe, group, buffers, pass);
      pass.setPipeline(exe.pipelines[k]);
      pass.setBindGroup(
        0,
        this.bindGroup(
          exe,
          k,
          source.bindings.map((slot) => buffers[slot]),
        ),
      );
      const argsAt = gates?.plan.argsAt.get(k);
      if (gates !== undefined && argsAt !== undefined) {
        pass.dispatchWorkgroupsIndirect(gates.args, argsAt);
        this.stats.gatedMatmulFlops += source.matmulFlops;
      } else {
        pass.dispatchWorkgroups(...this.groupsOf(source));
        this.stats.matmulFlops += source.matmulFlops;
      }
      this.stats.dispatches++;
    }
    pass.end();
    for (const { from, to, length } of exe.plan.copies) {
      const [src, dst] = [buffers[from.slot], buffers[to.slot]];
      if (src !== dst)
        encoder.copyBufferToBuffer(src, from.offset * 4, dst, to.offset * 4, length * 4);
      else {
        // WebGPU refuses a copy within one buffer: go through a scratch buffer.
        const scratch = this.pool.acquire(length * 4);
        encoder.copyBufferToBuffer(src, from.offset * 4, scratch, 0, length * 4);
        encoder.copyBufferToBuffer(scratch, 0, dst, to.offset * 4, length * 4);
        staged.push(scratch);
      }
    }
    this.gpu.queue.submit([encoder.finish()]);
    this.pool.recordSubmit();
    this.stats.submits++;

    // Each output is a view: of the results buffer, or of a donated input's buffer (updated in
    // place).
    const out = exe.plan.outputs.map((region) => {
      const slot = slots[region.slot];
      const allocation =
        slot.kind === 'input' ? inputBuffers[slot.index] : (results.get(region.slot) as Allocation);
      return this.view(allocation, region.offset, region.shape, region.dtype);
    });
    this.notePeak();
    this.lastCallBytes = [...arenas, ...results.values()].reduce(
      (n, b) => n + ('size' in b ? b.size : b.buffer.size),
      0,
    );
    // Arenas go back to the pool at once: later submissions run after this one.
    for (const b of [...arenas, ...staged]) this.pool.release(b);
    return out;
  }

  /**
   * The scratch buffer of each arena slot of `exe` (slots sharing a buffer number share one), taken
   * from the pool largest first (see BufferPool.acquireScratch).
   */
  private acquireArenas(exe: Executable): Map<number, GPUBuffer> {
    const wanted = new Map<string, { bytes: number; slots: number[] }>();
    exe.plan.slots.forEach((slot, i) => {
      if (slot.kind !== 'arena') return;
      const key = slot.buffer === undefined ? `slot ${i}` : `buffer ${slot.buffer}`;
      const length =
        slot.buffer === undefined
          ? slot.length
          : (exe.sharedArenaLengths.get(slot.buffer) as number);
      const entry = wanted.get(key) ?? { bytes: 4 * length, slots: [] };
      entry.slots.push(i);
      wanted.set(key, entry);
    });
    const out = new Map<number, GPUBuffer>();
    for (const { bytes, slots } of [...wanted.values()].sort((a, b) => b.bytes - a.bytes)) {
      // A buffer bound whole must fit one binding; one bound as windows, only the device.
      const fits = bytes > this.maxBindingBytes ? this.maxBufferBytes : this.maxBindingBytes;
      const buffer = this.pool.acquireScratch(bytes, fits);
      for (const i of slots) out.set(i, buffer);
    }
    return out;
  }

  /**
   * Checks the arrays bound to the inputs `outputs` read and finds their layout: the distinct
   * buffers among them (input slots, in first-use order) and each array's offset.
   */
  private bindInputs(outputs: readonly Node[], inputs: ReadonlyMap<string, DeviceArray>) {
    const buffers: Allocation[] = [];
    const slots: StorageType[] = [];
    const regions = new Map<number, Region>();
    // One-element inputs uploaded from host numbers: their values, by input name.
    const hostInputs = new Set<number>();
    const hostValues = new Map<string, number>();
    for (const node of this.inputNodes(outputs)) {
      const { name } = (node as Node<'input'>).attrs;
      const arr = inputs.get(name);
      if (arr === undefined)
        throw new GrngError(
          'execute',
          `missing input "${name}" ${fmtShape(node.shape)} ${node.dtype}; bind a ` +
            `value for every input the outputs depend on`,
        );
      if (!(arr instanceof GpuArray) || arr.device !== this) {
        throw new GrngError(
          'execute',
          `input "${name}" lives on another device (${arr.device.description}); ` +
            `read it back or run there`,
        );
      }
      if (arr.consumed) throw consumedError();
      if (
        arr.dtype !== node.dtype ||
        arr.shape.length !== node.shape.length ||
        arr.shape.some((d, i) => d !== node.shape[i])
      ) {
        throw new GrngError(
          'execute',
          `input "${name}" must be ${node.dtype}${fmtShape(node.shape)}, got ` +
            `${arr.dtype}${fmtShape(arr.shape)}`,
        );
      }
      let slot = buffers.indexOf(arr.allocation);
      if (slot < 0) {
        slot = buffers.push(arr.allocation) - 1;
        slots.push(storageOf(arr.dtype));
      }
      regions.set(node.id, { slot, offset: arr.offset });
      if (arr.hostValue !== undefined) {
        hostInputs.add(node.id);
        hostValues.set(name, arr.hostValue);
      }
    }
    const layout: InputLayout = { slots, regions };
    return { buffers, layout, hostInputs, hostValues };
  }

  private inputNodes(outputs: readonly Node[]): readonly Node[] {
    const key = outputs.map((n) => n.id).join(',');
    let nodes = this.inputsOf.get(key);
    if (nodes === undefined) {
      nodes = topoSort(outputs).filter((n) => n.op === 'input');
      this.inputsOf.set(key, nodes);
    }
    return nodes;
  }

  private readonly bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 0;

  private bufferId(buffer: GPUBuffer): number {
    let n = this.bufferIds.get(buffer);
    if (n === undefined) this.bufferIds.set(buffer, (n = this.nextBufferId++));
    return n;
  }

  /**
   * The bind group of dispatch k over `bound`, cached: a training step binds the same buffers
   * every call (parameters and state in place, pooled arena and uploads), so this is a lookup.
   */
  private bindGroup(exe: Executable, k: number, bound: readonly GPUBuffer[]): GPUBindGroup {
    const key = `${k}:${bound.map((b) => this.bufferId(b)).join(',')}`;
    let group = exe.bindGroups.get(key);
    if (group === undefined) {
      const { windows } = exe.plan.kernels[k];
      const entries: GPUBindGroupEntry[] = bound.map((buffer, binding) => ({
        binding,
        resource: windowOf(buffer, windows?.of[binding] ?? -1, windows?.elements ?? 0),
      }));
      const offsetsAt = exe.offsets.at[k];
      if (offsetsAt !== undefined)
        entries.push({
          binding: bound.length,
          resource: {
            buffer: exe.offsets.buffer,
            offset: offsetsAt,
            size: uniformSize(exe.plan.kernels[k].offsets.length),
          },
        });
      group = this.gpu.createBindGroup({ layout: exe.pipelines[k].getBindGroupLayout(0), entries });
      // A bounded cache: results buffers change from call to call, and old groups hold their
      // buffers.
      if (exe.bindGroups.size >= 64) exe.bindGroups.clear();
      exe.bindGroups.set(key, group);
    }
    return group;
  }

  /** The latest call's executable, when it had gated dispatches. */
  private lastGated: Executable | undefined;
  /** lastGated once evicted: gatedWork may still read its buffers, so they wait for a call. */
  private retiredGated: Executable | undefined;

  /**
   * What the gated dispatches of the most recent call did (for profiling: one read back, after the
   * call's work): how many there were, how many ran, and the matmul FLOPs of those that ran.
   */
  async gatedWork(): Promise<{ dispatches: number; ran: number; matmulFlops: number }> {
    const exe = this.lastGated;
    if (exe?.gates === undefined) return { dispatches: 0, ran: 0, matmulFlops: 0 };
    const { args, plan } = exe.gates;
    const staging = this.gpu.createBuffer({ size: args.size, usage: MAP_READ | COPY_DST });
    const encoder = this.gpu.createCommandEncoder();
    encoder.copyBufferToBuffer(args, 0, staging, 0, args.size);
    this.gpu.queue.submit([encoder.finish()]);
    await staging.mapAsync(MAP_MODE_READ);
    const words = new Uint32Array(staging.getMappedRange().slice(0));
    staging.destroy();
    let [ran, matmulFlops] = [0, 0];
    for (const [k, at] of plan.argsAt) {
      if (words[at / 4] * words[at / 4 + 1] * words[at / 4 + 2] === 0) continue;
      ran++;
      matmulFlops += exe.plan.kernels[k].matmulFlops;
    }
    return { dispatches: plan.argsAt.size, ran, matmulFlops };
  }

  /**
   * Records group `g`'s gate kernel in `pass`: it sets the workgroup counts of the group's
   * dispatches from their condition, which lives in `buffers`.
   */
  private openGate(
    exe: Executable,
    g: number,
    buffers: readonly GPUBuffer[],
    pass: GPUComputePassEncoder,
  ): void {
    const gates = exe.gates as NonNullable<Executable['gates']>;
    const { gate, params } = gates.plan.groups[g];
    const condition = buffers[gate.slot];
    const key = `gate${g}:${this.bufferId(condition)}`;
    let group = exe.bindGroups.get(key);
    if (group === undefined) {
      group = this.gpu.createBindGroup({
        layout: gates.pipeline.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: condition } },
          { binding: 1, resource: { buffer: gates.counts } },
          { binding: 2, resource: { buffer: gates.args } },
          { binding: 3, resource: { buffer: gates.params, offset: g * gates.stride, size: 16 } },
        ],
      });
      if (exe.bindGroups.size >= 64) exe.bindGroups.clear();
      exe.bindGroups.set(key, group);
    }
    pass.setPipeline(gates.pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(Math.ceil(params[2] / GATE_WORKGROUP));
    this.stats.dispatches++;
  }

  /** A dispatch's workgroup counts (x, y). */
  private groupsOf(source: DispatchSource): [number, number] {
    return this.dispatchSize(Math.ceil(source.invocations / source.workgroupSize));
  }

  /** Splits a workgroup count over x and y so neither exceeds maxComputeWorkgroupsPerDimension. */
  private dispatchSize(groups: number): [number, number] {
    const max = this.gpu.limits.maxComputeWorkgroupsPerDimension;
    if (groups <= max) return [groups, 1];
    const y = Math.ceil(groups / max);
    if (y > max)
      throw new GrngError(
        'execute',
        `${groups} workgroups exceed the device's ${max}×${max} dispatch limit`,
      );
    return [Math.ceil(groups / y), y];
  }

  private executable(
    outputs: readonly Node[],
    donated: ReadonlySet<string>,
    layout: InputLayout | undefined,
    argumentOrder?: readonly Node[],
    hostInputs: ReadonlySet<number> = new Set(),
  ): Executable {
    // Nodes are hash-consed, so the output ids identify the whole graph; where the inputs live is
    // part of the plan (its dispatches' offsets), and which inputs are host numbers decides what
    // the host computes.
    const where =
      layout === undefined
        ? 'separate'
        : [...layout.regions.values()].map((r) => `${r.slot}+${r.offset}`).join(',');
    const order = argumentOrder === undefined ? '' : argumentOrder.map((n) => n.id).join(',');
    const host = [...hostInputs].sort((a, b) => a - b).join(',');
    const key = `${this.fuse ? 'f' : 'u'}:${outputs.map((n) => n.id).join(',')}:${[...donated].sort().join(',')}:${where}:${order}:${host}`;
    let exe = this.executables.get(key);
    if (exe === undefined) {
      // In the order the caller donated them: outputs pair with donated inputs in order.
      const byName = new Map(
        this.inputNodes(outputs).map((n) => [(n as Node<'input'>).attrs.name, n.id] as const),
      );
      const donatedIds = new Set(
        [...donated].flatMap((name) => (byName.has(name) ? [byName.get(name) as number] : [])),
      );
      const { limits } = this.gpu;
      const program = compileProgram(outputs, {
        limits: {
          maxStorageBuffersPerShaderStage: limits.maxStorageBuffersPerShaderStage,
          maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
          maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
          maxStorageBufferBindingSize: this.maxBindingBytes,
          maxBufferSize: this.maxBufferBytes,
          minStorageBufferOffsetAlignment: limits.minStorageBufferOffsetAlignment,
        },
        fuse: this.fuse,
        donated: donatedIds,
        inputs: layout,
        argumentOrder,
        maxMergedInvocations: this.maxMergedInvocations,
        hostInputs,
      });
      // GRNG_EXPLAIN=1 prints each new program's dispatches and buffers; GRNG_EXPLAIN=wgsl adds
      // their source.
      const explain = (globalThis as { process?: { env: Record<string, string | undefined> } })
        .process?.env.GRNG_EXPLAIN;
      if (explain) console.error(explainProgram(program, explain === 'wgsl'));
      exe = { program, ...this.prepare(planOf(program, this.inputNodes(outputs))) };
      this.executables.set(key, exe);
      this.compiled++;
    }
    return exe;
  }

  /**
   * Frees what an evicted executable holds. Queued work may still use its buffers (destroying a
   * buffer a submission still reads is not allowed), so they are destroyed once the work submitted
   * so far is done; nothing submitted later can use them, since the executable is gone.
   */
  private retire(exe: Executable): void {
    if (exe === this.lastGated) {
      this.retiredGated = exe;
      return;
    }
    exe.bindGroups.clear();
    const { gates } = exe;
    const buffers = [
      ...exe.constants.values(),
      exe.offsets.buffer,
      ...(exe.scalars === undefined ? [] : [exe.scalars]),
      ...(gates === undefined ? [] : [gates.counts, gates.args, gates.params]),
    ];
    void this.gpu.queue.onSubmittedWorkDone().then(() => {
      for (const buffer of buffers) {
        this.executableBytes -= buffer.size;
        buffer.destroy();
      }
    });
  }

  /** A buffer an executable owns, counted in memoryStats until retire destroys it. */
  private createBuffer(descriptor: GPUBufferDescriptor): GPUBuffer {
    this.executableBytes += descriptor.size;
    this.notePeak();
    return this.gpu.createBuffer(descriptor);
  }

  /** Pipelines, the constants uploaded once and the scalars uniform of a plan. */
  private prepare(plan: ProgramPlan): Executable {
    const pipelines = plan.kernels.map((source) => this.pipeline(source.code));
    const constants = new Map<number, GPUBuffer>();
    plan.slots.forEach((slot, i) => {
      if (slot.kind !== 'constants') return;
      const buffer = this.createBuffer({ size: 4 * slot.data.length, usage: USAGE });
      this.gpu.queue.writeBuffer(
        buffer,
        0,
        slot.storage === 'f32' ? Float32Array.from(slot.data) : Int32Array.from(slot.data),
      );
      constants.set(i, buffer);
    });
    const sharedArenaLengths = new Map<number, number>();
    for (const slot of plan.slots) {
      if (slot.kind !== 'arena' || slot.buffer === undefined) continue;
      const longest = Math.max(sharedArenaLengths.get(slot.buffer) ?? 0, slot.length);
      sharedArenaLengths.set(slot.buffer, longest);
    }
    const cells = plan.slots.reduce(
      (n, slot) => (slot.kind === 'scalars' ? n + slot.sources.length : n),
      0,
    );
    const scalars =
      cells > 0
        ? this.createBuffer({ size: 16 * scalarCells(cells), usage: UNIFORM | COPY_DST })
        : undefined;
    return {
      plan,
      pipelines,
      constants,
      sharedArenaLengths,
      scalars,
      offsets: this.offsets(plan),
      bindGroups: new Map(),
      gates: this.gates(plan),
      scalarCells: scalarCellsOf(plan),
    };
  }

  /** The buffers gated dispatches need, or undefined when a plan has none. */
  private gates(plan: ProgramPlan): Executable['gates'] {
    const gatePlan = planGates(plan.kernels, (source) => this.groupsOf(source));
    if (gatePlan.groups.length === 0) return undefined;
    const stride = Math.max(16, this.gpu.limits.minUniformBufferOffsetAlignment);
    const counts = this.createBuffer({ size: 4 * gatePlan.counts.length, usage: USAGE });
    this.gpu.queue.writeBuffer(counts, 0, gatePlan.counts);
    const args = this.createBuffer({
      size: 4 * gatePlan.counts.length,
      usage: STORAGE | INDIRECT | COPY_SRC,
    });
    const params = this.createBuffer({
      size: stride * gatePlan.groups.length,
      usage: UNIFORM | COPY_DST,
    });
    const data = new Uint32Array(params.size / 4);
    gatePlan.groups.forEach((g, i) => data.set(g.params, (i * stride) / 4));
    this.gpu.queue.writeBuffer(params, 0, data);
    return { plan: gatePlan, pipeline: this.pipeline(GATE_WGSL), counts, args, params, stride };
  }

  /** The kernels' offsets uniforms in one buffer, each at an offset the device can bind. */
  private offsets(plan: ProgramPlan): Executable['offsets'] {
    const align = this.gpu.limits.minUniformBufferOffsetAlignment;
    let size = 0;
    const at = plan.kernels.map(({ offsets }) => {
      if (offsets.length === 0) return undefined;
      const start = Math.ceil(size / align) * align;
      size = start + uniformSize(offsets.length);
      return start;
    });
    const buffer = this.createBuffer({ size: Math.max(size, 16), usage: UNIFORM | COPY_DST });
    const data = new Uint32Array(buffer.size / 4);
    plan.kernels.forEach(({ offsets }, k) => data.set(offsets, (at[k] ?? 0) / 4));
    this.gpu.queue.writeBuffer(buffer, 0, data);
    return { buffer, at };
  }

  private pipeline(code: string): GPUComputePipeline {
    let p = this.pipelines.get(code);
    if (p === undefined) {
      p = this.gpu.createComputePipeline({
        layout: 'auto',
        compute: { module: this.gpu.createShaderModule({ code }), entryPoint: 'main' },
      });
      this.pipelines.set(code, p);
      this.stats.pipelines++;
      this.stats.shaderChars += code.length;
    }
    return p;
  }
}

/** The bounds `memory` asks for, defaults filled in; a GrngError for a bound that is no count. */
export function memoryBounds(
  memory: WebGpuMemoryOptions,
  op = 'createDevice',
): Required<WebGpuMemoryOptions> {
  const bound = (name: keyof WebGpuMemoryOptions, fallback: number, min: number) => {
    const value = memory[name] ?? fallback;
    if ((!Number.isInteger(value) && value !== fallback) || value < min)
      throw new GrngError(op, `${name} must be an integer ≥ ${min}, got ${value}`);
    return value;
  };
  return {
    maxExecutables: bound('maxExecutables', DEFAULT_MAX_EXECUTABLES, 1),
    maxPipelines: bound('maxPipelines', DEFAULT_MAX_PIPELINES, 1),
    maxPooledBytes: bound('maxPooledBytes', DEFAULT_POOL_BYTES, 0),
    maxBindingBytes: bound('maxBindingBytes', Infinity, 64),
    maxBufferBytes: bound('maxBufferBytes', Infinity, 1024),
  };
}

/**
 * What a binding of `buffer` covers: the whole buffer (`window` -1), or window `window` of a buffer
 * longer than one binding, `elements` long or to the buffer's end.
 */
function windowOf(buffer: GPUBuffer, window: number, elements: number): GPUBufferBinding {
  if (window < 0) return { buffer };
  const offset = 4 * window * elements;
  return { buffer, offset, size: Math.min(4 * elements, buffer.size - offset) };
}

/** The host values of the one-element arrays among `inputs` uploaded from numbers, by name. */
function hostValuesOf(inputs: ReadonlyMap<string, GpuArray>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [name, arr] of inputs) if (arr.hostValue !== undefined) out.set(name, arr.hostValue);
  return out;
}

/** A GPUOutOfMemoryError (a global in browsers and, once Dawn is loaded, in Node). */
function isOutOfMemory(error: GPUError): boolean {
  const type = (globalThis as { GPUOutOfMemoryError?: abstract new (...args: never[]) => GPUError })
    .GPUOutOfMemoryError;
  return type !== undefined && error instanceof type;
}

function describeHandle(handle: unknown): string {
  if (typeof handle !== 'object' || handle === null) return String(handle);
  return 'device' in handle ? 'a device without createBuffer' : 'an object without a device';
}
