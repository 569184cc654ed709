import { createWaitQueue } from '../async/wait-queue.js';

export interface PoolLimits {
  /** Uploads running at once. */
  slots: number;
  /** Uploads allowed to wait for a slot, on top of those running. */
  queueMax: number;
  /** Image bytes held in memory for uploads (reserved estimates included). */
  backlogMaxBytes: number;
}

/** One image's claim on the pool, from before its render until its upload ends. */
export interface Ticket {
  /** Replaces the reserved estimate with the image's real size. */
  resize(bytes: number): void;
  /** Waits for an upload slot; rejects with the signal's reason when it aborts first. */
  acquireSlot(signal: AbortSignal): Promise<void>;
  /** Gives back the slot (if held) and the backlog bytes. Idempotent. */
  release(): void;
}

/**
 * Counts, not work: the pool admits images up front (so nothing is rendered that cannot be kept), hands out
 * upload slots in arrival order, and knows when the last claim is gone.
 */
export function createUploadPool(limits: PoolLimits) {
  let inFlight = 0;
  let backlogBytes = 0;
  let tickets = 0;
  const waiting = createWaitQueue();
  let idleWaiters: (() => void)[] = [];

  function freeSlot() {
    // The slot passes straight to the next upload, if one waits.
    if (!waiting.wakeNext()) inFlight--;
  }

  function reserve(estimatedBytes: number): Ticket | undefined {
    const bytes = Math.min(Math.max(0, Math.ceil(estimatedBytes)), limits.backlogMaxBytes);
    const roomForBytes = backlogBytes === 0 || backlogBytes + bytes <= limits.backlogMaxBytes;
    if (tickets >= limits.slots + limits.queueMax || !roomForBytes) return undefined;
    tickets++;
    backlogBytes += bytes;
    let held = bytes;
    let slot: 'none' | 'waiting' | 'held' = 'none';
    let released = false;
    return {
      resize(real) {
        if (released) return;
        backlogBytes += real - held;
        held = real;
      },
      acquireSlot(signal) {
        if (released || slot !== 'none') return Promise.reject(new Error('this reservation was already used'));
        if (signal.aborted) return Promise.reject(signal.reason);
        if (inFlight < limits.slots) {
          inFlight++;
          slot = 'held';
          return Promise.resolve();
        }
        slot = 'waiting';
        const hold = () => {
          slot = 'held';
        };
        return waiting.wait(signal, hold).catch((err: unknown) => {
          slot = 'none';
          throw err;
        });
      },
      release() {
        if (released) return;
        released = true;
        if (slot === 'held') freeSlot();
        backlogBytes -= held;
        tickets--;
        if (tickets === 0) {
          const waiters = idleWaiters;
          idleWaiters = [];
          for (const resolve of waiters) resolve();
        }
      },
    };
  }

  return {
    reserve,
    stats: () => ({ inFlight, queued: waiting.length, backlogBytes, tickets }),
    /** Resolves when no image is reserved, queued or uploading. */
    whenIdle(): Promise<void> {
      if (tickets === 0) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
  };
}
