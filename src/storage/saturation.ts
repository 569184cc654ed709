import type { StorageStats } from './types.js';

/** How full the upload side is, 0..1: the larger of the pool's share in use and the backlog's share of bytes. */
export function uploadSaturation(s: StorageStats): number {
  const pool = (s.inFlight + s.queued) / Math.max(1, s.max + s.queueMax);
  const bytes = s.backlogBytes / Math.max(1, s.backlogMaxBytes);
  return Math.min(1, Math.max(pool, bytes));
}
