import { LRUCache } from 'lru-cache';
import type { CachedResult } from './cached-result.js';

/** Bytes an entry costs besides its image: its key, its fields, the LRU's bookkeeping. */
const entryOverheadBytes = 512;

export interface MemoryTier {
  /** The result for `key` rendered less than `maxAgeMs` ago, or null. */
  get(key: string, maxAgeMs: number): CachedResult | null;
  /** Kept for `keepMs` at most, until least recently used results make room for newer ones. */
  set(key: string, result: CachedResult, keepMs: number): void;
  /** Bytes held (images and overhead), at most the tier's size. */
  bytes(): number;
  entries(): number;
}

/** The node's own tier: results in the process's memory (so in what the memory probe reads), bounded by bytes. */
export function createMemoryTier(maxBytes: number, now: () => number = Date.now): MemoryTier {
  if (maxBytes <= 0) return { get: () => null, set: () => undefined, bytes: () => 0, entries: () => 0 };
  const results = new LRUCache<string, CachedResult>({
    maxSize: maxBytes,
    sizeCalculation: (result) => result.image.length + entryOverheadBytes,
  });
  return {
    get(key, maxAgeMs) {
      const result = results.get(key);
      return result && now() - result.renderedAt < maxAgeMs ? result : null;
    },
    set(key, result, keepMs) {
      // A result larger than the whole tier is refused by the LRU itself (and nothing else is evicted for it).
      if (keepMs > 0) results.set(key, result, { ttl: keepMs });
    },
    bytes: () => results.calculatedSize,
    entries: () => results.size,
  };
}
