import { createWaitQueue } from './wait-queue.js';

/**
 * One holder at a time: the others wait in arrival order (wait-queue.ts). A waiter whose signal aborts leaves its
 * place and rejects with the signal's reason; the turn then passes over it to the one behind.
 */
export interface Turns {
  /** Resolves with the function that ends this turn (calling it again does nothing). */
  take(signal: AbortSignal): Promise<() => void>;
}

export function createTurns(): Turns {
  const waiting = createWaitQueue();
  let held = false;
  const begin = () => {
    held = true;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      held = false;
      waiting.wakeNext();
    };
  };
  return {
    take(signal) {
      if (signal.aborted) return Promise.reject(signal.reason);
      return held ? waiting.wait(signal, begin) : Promise.resolve(begin());
    },
  };
}
