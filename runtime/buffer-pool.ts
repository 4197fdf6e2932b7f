/**
 * Bytes of idle buffers a pool keeps by default: a step's scratch and results come back every
 * step, while sizes no program uses any more are destroyed once past it.
 */
export const DEFAULT_POOL_BYTES = 256 * 2 ** 20;

interface Free {
  readonly buffer: GPUBuffer;
  /** Submissions made when it was released: it is idle once the GPU has finished them. */
  readonly releasedAt: number;
}

/**
 * Reuses GPU buffers by size. Creating a buffer is expensive on software adapters (~15 ms for
 * 4 MiB on llvmpipe, mostly zero-filling), and a training step makes the same sizes every time.
 * Reuse by the GPU is safe without fences: the queue runs submissions in order, so work
 * submitted after a buffer is released can only touch it after the work that used it before.
 * Writes from the host are different: `queue.writeBuffer` into a buffer that queued work still
 * reads makes some backends (Dawn on OpenGL ES) wait for that work, stalling the pipeline, so
 * buffers for uploads come only from those whose last user has finished.
 *
 * The free lists hold at most `maxPooledBytes` once the GPU has caught up: past it, the least
 * recently released idle buffers are destroyed (never one that queued work may still use).
 */
export class BufferPool {
  private readonly free = new Map<number, Free[]>();
  /** Every free buffer, oldest release first (a Set keeps insertion order): the cap's victims. */
  private readonly order = new Set<Free>();
  /** Submissions made so far, and how many of them the GPU has finished. */
  private submitted = 0;
  private completed = 0;
  private pooled = 0;
  private live = 0;

  constructor(
    private readonly gpu: GPUDevice,
    private readonly usage: number,
    readonly maxPooledBytes = DEFAULT_POOL_BYTES,
  ) {}

  /** Bytes of the buffers in the free lists. */
  get pooledBytes(): number {
    return this.pooled;
  }

  /** Bytes of the buffers this pool created and has not destroyed (in use or free). */
  get liveBytes(): number {
    return this.live;
  }

  /** A buffer of at least `bytes` for the GPU to write (kernel results, scratch). */
  acquire(bytes: number): GPUBuffer {
    const size = sizeFor(bytes);
    const list = this.free.get(size);
    if (list !== undefined) return this.take(list[list.length - 1]);
    this.live += size;
    return this.gpu.createBuffer({ size, usage: this.usage });
  }

  /**
   * A buffer of at least `bytes`, and at most `maxBytes`, for scratch the GPU writes and reads
   * within one submission (a program's arena): the smallest free one that fits, else a new one of
   * `bytes`. Programs that alternate (a training step and its refresh step) then share one
   * buffer, the larger's, instead of the pool keeping one of each size. Callers holding several
   * at once take the largest first, so a small request does not take the buffer a larger one
   * will need.
   */
  acquireScratch(bytes: number, maxBytes: number): GPUBuffer {
    const size = sizeFor(bytes);
    let best: number | undefined;
    for (const fits of this.free.keys())
      if (fits >= size && fits <= maxBytes && (best === undefined || fits < best)) best = fits;
    if (best === undefined) return this.acquire(bytes);
    const list = this.free.get(best) as Free[];
    return this.take(list[list.length - 1]);
  }

  /** A buffer of at least `bytes` the host may write at once: no unfinished work uses it. */
  acquireForUpload(bytes: number): GPUBuffer {
    const size = sizeFor(bytes);
    const idle = this.free.get(size)?.find((f) => f.releasedAt <= this.completed);
    if (idle !== undefined) return this.take(idle);
    this.live += size;
    return this.gpu.createBuffer({ size, usage: this.usage });
  }

  release(buffer: GPUBuffer): void {
    const entry = { buffer, releasedAt: this.submitted };
    const list = this.free.get(buffer.size);
    if (list === undefined) this.free.set(buffer.size, [entry]);
    else list.push(entry);
    this.order.add(entry);
    this.pooled += buffer.size;
    this.trim();
  }

  /** Records a submission; buffers released before it become writable once the GPU finishes it. */
  recordSubmit(): void {
    const id = ++this.submitted;
    void this.gpu.queue.onSubmittedWorkDone().then(() => {
      this.completed = Math.max(this.completed, id);
      this.trim();
    });
  }

  /** Removes `entry` from the free lists and hands out its buffer. */
  private take(entry: Free): GPUBuffer {
    const list = this.free.get(entry.buffer.size) as Free[];
    list.splice(list.lastIndexOf(entry), 1);
    // An emptied list goes: a process that saw many sizes must not keep a key for each.
    if (list.length === 0) this.free.delete(entry.buffer.size);
    this.order.delete(entry);
    this.pooled -= entry.buffer.size;
    return entry.buffer;
  }

  /** Destroys the oldest idle free buffers until the free lists fit `maxPooledBytes`. */
  private trim(): void {
    for (const entry of this.order) {
      // Release order is submission order: past the first busy buffer, all are busy.
      if (this.pooled <= this.maxPooledBytes || entry.releasedAt > this.completed) return;
      this.take(entry).destroy();
      this.live -= entry.buffer.size;
    }
  }
}

/** The pooled size for `bytes`: whole 4-byte words, at least one. */
const sizeFor = (bytes: number) => Math.max(4, Math.ceil(bytes / 4) * 4);
