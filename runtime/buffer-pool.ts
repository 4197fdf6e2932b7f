/**
 * Reuses GPU buffers by size. Creating a buffer is expensive on software adapters (~15 ms for
 * 4 MiB on llvmpipe, mostly zero-filling), and a training step makes the same sizes every time.
 * Reuse by the GPU is safe without fences: the queue runs submissions in order, so work
 * submitted after a buffer is released can only touch it after the work that used it before.
 * Writes from the host are different: `queue.writeBuffer` into a buffer that queued work still
 * reads makes some backends (Dawn on OpenGL ES) wait for that work, stalling the pipeline, so
 * buffers for uploads come only from those whose last user has finished.
 */
export class BufferPool {
  private readonly free = new Map<number, { buffer: GPUBuffer; releasedAt: number }[]>();
  /** Submissions made so far, and how many of them the GPU has finished. */
  private submitted = 0;
  private completed = 0;

  constructor(
    private readonly gpu: GPUDevice,
    private readonly usage: number,
  ) {}

  /** A buffer of at least `bytes` for the GPU to write (kernel results, scratch). */
  acquire(bytes: number): GPUBuffer {
    const size = Math.max(4, Math.ceil(bytes / 4) * 4);
    return this.free.get(size)?.pop()?.buffer ?? this.gpu.createBuffer({ size, usage: this.usage });
  }

  /** A buffer of at least `bytes` the host may write at once: no unfinished work uses it. */
  acquireForUpload(bytes: number): GPUBuffer {
    const size = Math.max(4, Math.ceil(bytes / 4) * 4);
    const list = this.free.get(size) ?? [];
    const idle = list.findIndex((f) => f.releasedAt <= this.completed);
    if (idle >= 0) return list.splice(idle, 1)[0].buffer;
    return this.gpu.createBuffer({ size, usage: this.usage });
  }

  release(buffer: GPUBuffer): void {
    const list = this.free.get(buffer.size) ?? [];
    list.push({ buffer, releasedAt: this.submitted });
    this.free.set(buffer.size, list);
  }

  /** Records a submission; buffers released before it become writable once the GPU finishes it. */
  recordSubmit(): void {
    const id = ++this.submitted;
    void this.gpu.queue.onSubmittedWorkDone().then(() => {
      this.completed = Math.max(this.completed, id);
    });
  }
}
