/**
 * Reuses GPU buffers by size. Creating a buffer is expensive on software adapters (~15 ms for
 * 4 MiB on llvmpipe, mostly zero-filling), and a training step makes the same sizes every time.
 * Reuse is safe without fences: the queue runs submissions in order, so work submitted after a
 * buffer is released can only touch it after the work that used it before.
 */
export class BufferPool {
  private readonly free = new Map<number, GPUBuffer[]>();
  private readonly usage: number;

  constructor(
    private readonly gpu: GPUDevice,
    usage: number,
  ) {
    this.usage = usage;
  }

  acquire(bytes: number): GPUBuffer {
    const size = Math.max(4, Math.ceil(bytes / 4) * 4);
    return this.free.get(size)?.pop() ?? this.gpu.createBuffer({ size, usage: this.usage });
  }

  release(buffer: GPUBuffer): void {
    const list = this.free.get(buffer.size) ?? [];
    list.push(buffer);
    this.free.set(buffer.size, list);
  }
}
