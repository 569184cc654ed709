/** Whom a waiting render belongs to: its key's name and weight (a key with weight 2 gets twice the pages). */
export interface QueueClient {
  name: string;
  weight: number;
}

/**
 * The renders waiting for a page, grouped by key. Within a key, first come first served; across keys, the next
 * free page goes to the key with the fewest pages in use for its weight (ties: the longest waiter). With one key it
 * is a plain FIFO. A waiter whose signal aborts leaves at once and rejects with the signal's reason; one that is
 * woken runs its `grant` synchronously, so the waker sees the page taken before it wakes the next.
 */
export interface FairQueue {
  readonly length: number;
  wait<T>(client: QueueClient, signal: AbortSignal, grant: () => T): Promise<T>;
  /** Wakes the next waiter by fair share, given each key's pages in use now; false when nobody waits. */
  wakeNext(pagesInUse: (name: string) => number): boolean;
  /**
   * True when, the queue being full, a newcomer of `name` is the one to shed: its key already holds the most of the
   * queue (or as much as any other key). Otherwise another key holds more, and its newest waiter goes instead.
   */
  newcomerIsShed(name: string): boolean;
  /** Sheds the newest waiter of the key holding the most of the queue, rejecting it with `reason`; false when empty. */
  shedNewestOfLargest(reason: unknown): boolean;
  /** Waiters served before a newcomer of `client` under fair shares (an estimate for the deadline check). */
  aheadOf(client: QueueClient): number;
}

interface Waiter {
  seq: number;
  wake(): void;
  leave(reason: unknown): void;
}

interface KeyLine {
  weight: number;
  /** When its latest waiter joined: breaks ties between keys holding as much of the queue. */
  lastJoined: number;
  /** A Set keeps arrival order and deletes a leaver in O(1). */
  waiters: Set<Waiter>;
}

export function createFairQueue(): FairQueue {
  const lines = new Map<string, KeyLine>();
  let length = 0;
  let seq = 0;

  const head = (line: KeyLine) => line.waiters.values().next().value as Waiter;
  const newest = (line: KeyLine) => [...line.waiters].at(-1) as Waiter;

  function remove(name: string, line: KeyLine, waiter: Waiter): void {
    line.waiters.delete(waiter);
    length--;
    if (line.waiters.size === 0) lines.delete(name);
  }

  /** The key with the most waiters; ties go to the one whose latest waiter came last. */
  function largest(): [string, KeyLine] | undefined {
    let best: [string, KeyLine] | undefined;
    for (const entry of lines) {
      const [, line] = entry;
      if (!best || line.waiters.size > best[1].waiters.size || (line.waiters.size === best[1].waiters.size && line.lastJoined > best[1].lastJoined)) {
        best = entry;
      }
    }
    return best;
  }

  return {
    get length() {
      return length;
    },

    wait(client, signal, grant) {
      if (signal.aborted) return Promise.reject(signal.reason);
      return new Promise((resolve, reject) => {
        let line = lines.get(client.name);
        if (!line) {
          line = { weight: client.weight, lastJoined: 0, waiters: new Set() };
          lines.set(client.name, line);
        }
        // The newest waiter's weight counts: a reload that changed the key's weight applies from its next request.
        line.weight = client.weight;
        const onAbort = () => waiter.leave(signal.reason);
        const waiter: Waiter = {
          seq: seq++,
          wake() {
            signal.removeEventListener('abort', onAbort);
            try {
              resolve(grant());
            } catch (err) {
              reject(err);
            }
          },
          leave(reason) {
            signal.removeEventListener('abort', onAbort);
            const current = lines.get(client.name);
            if (current?.waiters.has(waiter)) remove(client.name, current, waiter);
            reject(reason);
          },
        };
        line.waiters.add(waiter);
        line.lastJoined = waiter.seq;
        length++;
        signal.addEventListener('abort', onAbort, { once: true });
      });
    },

    wakeNext(pagesInUse) {
      let chosen: [string, KeyLine] | undefined;
      let chosenShare = Number.POSITIVE_INFINITY;
      for (const entry of lines) {
        const [name, line] = entry;
        const share = pagesInUse(name) / line.weight;
        if (share < chosenShare || (share === chosenShare && chosen && head(line).seq < head(chosen[1]).seq)) {
          chosen = entry;
          chosenShare = share;
        }
      }
      if (!chosen) return false;
      const waiter = head(chosen[1]);
      remove(chosen[0], chosen[1], waiter);
      waiter.wake();
      return true;
    },

    newcomerIsShed(name) {
      const own = lines.get(name)?.waiters.size ?? 0;
      return own >= (largest()?.[1].waiters.size ?? 0);
    },

    shedNewestOfLargest(reason) {
      const found = largest();
      if (!found) return false;
      newest(found[1]).leave(reason);
      return true;
    },

    aheadOf(client) {
      const own = lines.get(client.name)?.waiters.size ?? 0;
      let ahead = own;
      for (const [name, line] of lines) {
        if (name !== client.name) ahead += Math.min(line.waiters.size, Math.ceil(((own + 1) * line.weight) / client.weight));
      }
      return ahead;
    },
  };
}
