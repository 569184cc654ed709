export interface UploadFigures {
  inFlight: number;
  max: number;
  queued: number;
  queueMax: number;
  backlogBytes: number;
  backlogMaxBytes: number;
}

export interface SaturationInputs {
  inUse: number;
  limit: number;
  queued: number;
  queueMax: number;
  uploads?: UploadFigures;
  memoryBytes: number;
  maxMemoryBytes: number;
}

/**
 * How much of the node is in use, 0..1 — the most loaded of its three resources:
 *
 *   saturation = max(render, uploads, memory)
 *   render     = 0.75 × min(1, pagesInUse / concurrencyLimit) + 0.25 × renderQueueLength / queueMax
 *   uploads    = max(0.75 × uploadsInFlight / uploadsMax + 0.25 × uploadQueueLength / uploadQueueMax,
 *                    uploadBacklogBytes / uploadBacklogMaxBytes)
 *   memory     = (node + Chromium RSS) / SHOTFLEET_MAX_MEMORY_BYTES
 *
 * Every page busy with an empty queue reads 0.75: fully used, not yet refusing. 1 means the next request
 * of that kind is refused. (With a queue of 0 the queue term counts as full when every page is busy.)
 * The limit is the adaptive concurrency limit, so a node that learnt it can only do 2 at once is saturated
 * at 2 busy pages even with 4 in the pool.
 */
export function saturationRatio(x: SaturationInputs): number {
  const busy = Math.min(1, x.inUse / Math.max(1, x.limit));
  const queue = x.queueMax > 0 ? share(x.queued, x.queueMax) : busy >= 1 ? 1 : 0;
  const render = 0.75 * busy + 0.25 * queue;
  const u = x.uploads;
  const uploads = u
    ? Math.max(
        0.75 * share(u.inFlight, u.max) + 0.25 * (u.queueMax > 0 ? share(u.queued, u.queueMax) : share(u.inFlight, u.max) >= 1 ? 1 : 0),
        share(u.backlogBytes, u.backlogMaxBytes),
      )
    : 0;
  const memory = share(x.memoryBytes, x.maxMemoryBytes);
  return Math.min(1, Math.max(0, render, uploads, memory));
}

const share = (part: number, whole: number) => (whole > 0 ? Math.min(1, part / whole) : 0);
