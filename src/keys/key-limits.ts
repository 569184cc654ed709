import type { ClientKey } from './key-set.js';

export type KeyTurn = { ok: true; release(): void } | { ok: false; limit: 'maxConcurrent' | 'ratePerMinute'; retryAfterSeconds: number };

export interface KeyLimits {
  /**
   * A request of this key arrives: allowed (call release once it is answered) or refused, naming the limit and when
   * a retry can pass. Limits are read from the key each time, so a reload's new limits apply at once.
   */
  take(client: ClientKey): KeyTurn;
}

interface KeyState {
  inFlight: number;
  /** Token bucket of ratePerMinute: holds at most a minute's worth, refills continuously. */
  tokens: number;
  refilledAt: number;
}

/**
 * Per-key maxConcurrent (requests in flight on this node, waiting or rendering) and ratePerMinute (a token bucket
 * that allows a minute's worth at once, then the rate). Each node counts only what it sees (README: fleet).
 */
export function createKeyLimits(deps: { now(): number; busyRetryAfterSeconds(): number }): KeyLimits {
  const states = new Map<string, KeyState>();
  const stateOf = (name: string) => {
    let state = states.get(name);
    if (!state) {
      state = { inFlight: 0, tokens: Number.POSITIVE_INFINITY, refilledAt: deps.now() };
      states.set(name, state);
    }
    return state;
  };

  function refill(state: KeyState, ratePerMinute: number): void {
    const now = deps.now();
    // The bucket holds at least one token: a key allowed fewer than one request a minute (a fleet-wide rate divided
    // among more nodes) still gets its request once enough time has passed, instead of never.
    state.tokens = Math.min(Math.max(1, ratePerMinute), state.tokens + ((now - state.refilledAt) * ratePerMinute) / 60_000);
    state.refilledAt = now;
  }

  return {
    take(client) {
      const state = stateOf(client.name);
      if (client.maxConcurrent !== undefined && state.inFlight >= client.maxConcurrent) {
        return { ok: false, limit: 'maxConcurrent', retryAfterSeconds: deps.busyRetryAfterSeconds() };
      }
      if (client.ratePerMinute !== undefined) {
        refill(state, client.ratePerMinute);
        if (state.tokens < 1) {
          // Rounded to the millisecond first: the bucket's fractions must not turn 20 s into 21.
          const msUntilToken = Math.round(((1 - state.tokens) * 60_000) / client.ratePerMinute);
          return { ok: false, limit: 'ratePerMinute', retryAfterSeconds: Math.max(1, Math.ceil(msUntilToken / 1000)) };
        }
        state.tokens -= 1;
      }
      state.inFlight++;
      let released = false;
      return {
        ok: true,
        release() {
          if (released) return;
          released = true;
          state.inFlight--;
        },
      };
    },
  };
}
