import { treeMemoryBytes } from '../../src/admission/memory-probe.js';

/** Samples a value every `intervalMs` until stopped; returns the samples. */
export function sampleEvery<T>(intervalMs: number, read: () => Promise<T>): { stop(): Promise<T[]> } {
  const samples: T[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        samples.push(await read());
      } catch {
        // a failed reading (node busy restarting) is skipped, not fatal
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return samples;
    },
  };
}

/** Memory of the node process and every Chromium process under it (private resident bytes, ≈ PSS). */
export const nodeTreeMemory = (pid: number) => () => treeMemoryBytes([pid]);

export interface StatusFigures {
  inUse: number;
  limit: number;
  queued: number;
}

/** Pool figures from the node's GET /status (answered with 200 or 503 alike). */
export const nodeStatus = (url: string) => async (): Promise<StatusFigures> => {
  const res = await fetch(`${url}/status`, { signal: AbortSignal.timeout(2000) });
  const body = (await res.json()) as { pages: { inUse: number; limit: number }; queue: { length: number } };
  return { inUse: body.pages.inUse, limit: body.pages.limit, queued: body.queue.length };
};
