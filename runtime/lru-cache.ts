import { GrngError } from '../core/errors.js';

/**
 * A map that holds at most `capacity` entries, dropping the least recently used one (read or
 * written) when a new key would exceed it. A Map keeps insertion order, so re-inserting a key on
 * use makes its first key the least recently used: no list of its own to keep in step.
 */
export class LruCache<K, V> {
  private readonly entries = new Map<K, V>();

  /** `onEvict` releases what an entry dropped for room holds. */
  constructor(
    readonly capacity: number,
    private readonly onEvict: (value: V, key: K) => void = () => {},
  ) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new GrngError('LruCache', `capacity must be a positive integer, got ${capacity}`);
  }

  get size(): number {
    return this.entries.size;
  }

  /** The value of `key`, now the most recently used, or undefined. */
  get(key: K): V | undefined {
    const value = this.entries.get(key);
    if (value === undefined) return undefined;
    this.entries.delete(key);
    this.entries.set(key, value);
    return value;
  }

  /** Stores `value` as the most recently used, evicting the least recently used past capacity. */
  set(key: K, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, value);
    while (this.entries.size > this.capacity) {
      const [oldKey, oldValue] = this.entries.entries().next().value as [K, V];
      this.entries.delete(oldKey);
      this.onEvict(oldValue, oldKey);
    }
  }

  keys(): IterableIterator<K> {
    return this.entries.keys();
  }

  values(): IterableIterator<V> {
    return this.entries.values();
  }
}
