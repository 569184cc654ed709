import { TimeoutError } from 'puppeteer-core';
import { ShotError, shed, type ShedReason } from '../errors/shot-error.js';
import type { Logger } from '../log/logger.js';
import type { PagePool } from '../render-pool/page-pool.js';
import type { PageSlot } from '../render-pool/page-slot.js';
import { replaceFromInside } from '../render-pool/reset-slot.js';
import { createTurns, type Turns } from '../async/turns.js';

export interface SessionLease {
  slot: PageSlot;
  session: 'new' | 'reused';
  release(ok: boolean): void;
}

export interface SessionStore {
  /**
   * The session's own page (its context keeps cookies and storage), one render at a time per session. The wait for
   * the session's earlier request ends with the signal: a 503 `queue_timeout` when its deadline passed (the
   * signal's reason is a `timeout` ShotError), else with the signal's reason.
   */
  checkout(id: string, signal: AbortSignal): Promise<SessionLease>;
  active(): number;
  close(): Promise<void>;
}

interface Session {
  id: string;
  slot: PageSlot;
  /** One render at a time: the next request waits for the one holding the page to let go. */
  turns: Turns;
  busy: number;
  lastUsed: number;
  /** Not yet handed to a request: the first one is told `new`. */
  fresh: boolean;
  idleTimer?: NodeJS.Timeout;
}

export interface SessionStoreOptions {
  pool: PagePool;
  maxSessions: number;
  idleMs: number;
  log: Logger;
  /** Counts the session store's own 503s, like admission's. */
  onShed(reason: ShedReason): void;
}

const validId = /^[A-Za-z0-9._~-]{1,128}$/;

/**
 * Sticky state for clients that send the session cookie: a browser context per id, closed after
 * `idleMs` without use. At `maxSessions`, the least recently used idle session makes room; when every
 * session is busy the request is shed rather than queued behind strangers.
 */
export function createSessionStore(opts: SessionStoreOptions): SessionStore {
  const sessions = new Map<string, Session>();
  const opening = new Map<string, Promise<Session>>();

  async function end(session: Session, why: string): Promise<void> {
    if (sessions.get(session.id) !== session) return;
    sessions.delete(session.id);
    clearTimeout(session.idleTimer);
    opts.log.info({ session: session.id, why }, 'session closed');
    await opts.pool.closeExtraPage(session.slot).catch(() => undefined);
  }

  function makeRoom(): void {
    if (sessions.size + opening.size < opts.maxSessions) return;
    const idle = [...sessions.values()].filter((s) => s.busy === 0).sort((a, b) => a.lastUsed - b.lastUsed);
    if (idle.length === 0) {
      opts.onShed('queue_full');
      throw shed('queue_full', 1, `all ${opts.maxSessions} sessions are busy (SHOTFLEET_MAX_SESSIONS); retry shortly`);
    }
    void end(idle[0], 'evicted to make room');
  }

  async function open(id: string): Promise<Session> {
    makeRoom();
    let pending = opening.get(id);
    if (!pending) {
      pending = opts.pool.openExtraPage().then((slot) => {
        const session: Session = { id, slot, turns: createTurns(), busy: 0, lastUsed: Date.now(), fresh: true };
        sessions.set(id, session);
        return session;
      });
      opening.set(id, pending);
      pending.finally(() => opening.delete(id)).catch(() => undefined);
    }
    return pending;
  }

  function usable(session: Session | undefined): session is Session {
    return !!session && session.slot.usable();
  }

  return {
    async checkout(id, signal) {
      if (!validId.test(id)) {
        throw new ShotError('invalid_request', 'the session cookie must be 1–128 characters of A–Z a–z 0–9 . _ ~ -', { field: 'cookie' });
      }
      let session = sessions.get(id);
      let state: 'new' | 'reused' = 'reused';
      if (!usable(session)) {
        if (session) await end(session, 'its page died');
        session = await open(id);
      }
      if (session.fresh) {
        session.fresh = false;
        state = 'new';
      }
      const current = session;
      current.busy++;
      clearTimeout(current.idleTimer);
      const letGo = await waitForTurn(current.turns, signal, () => opts.onShed('queue_timeout')).catch((err: unknown) => {
        current.busy--;
        throw err;
      });
      return {
        slot: current.slot,
        session: state,
        release(ok) {
          current.busy--;
          current.lastUsed = Date.now();
          if (current.slot.broken || current.slot.browser.dead) {
            letGo();
            void end(current, ok ? 'its page died' : 'its render failed');
            return;
          }
          // Emulation stays as the render set it: the session's next render states its own (slot-emulation.ts).
          void resetPage(current.slot).then((failure) => {
            if (failure) current.slot.markBroken();
            letGo();
            // Evicted or shut down meanwhile: its page is closed already, and nobody is to be told.
            if (sessions.get(current.id) !== current) return;
            if (failure) {
              opts.log.warn({ session: current.id, err: failure }, "could not reset a session's page; closing the session");
              void end(current, 'its page could not be reset');
              return;
            }
            if (current.busy === 0) {
              current.idleTimer = setTimeout(() => void end(current, 'idle'), opts.idleMs);
              current.idleTimer.unref();
            }
          });
        },
      };
    },
    active: () => sessions.size,
    async close() {
      await Promise.all([...sessions.values()].map((s) => end(s, 'shutdown')));
    },
  };
}

/** The session's earlier request letting go, bounded by the client leaving and by this request's deadline. */
async function waitForTurn(turns: Turns, signal: AbortSignal, onTimeout: () => void): Promise<() => void> {
  try {
    return await turns.take(signal);
  } catch (err) {
    if (!(err instanceof ShotError && err.code === 'timeout')) throw err;
    onTimeout();
    throw shed(
      'queue_timeout',
      1,
      "this session's earlier request still holds its page and this one's deadline passed; send a session's requests one after another",
    );
  }
}

/**
 * Leaves a session's page on about:blank between its renders, so the page's scripts stop running; resolves with why
 * it could not (the page is then not to be used again), or null. Asked of the page itself (location.replace), the
 * navigation stays in its renderer process; sent by the browser (page.goto) it swaps in a fresh renderer process
 * (render-pool/reset-slot.ts), which on a loaded machine ran past 10 s after a cross-site render. The page keeps its
 * storage: it is the session's. On a loaded machine a navigation can run out of time on a page that is fine: one
 * that still answers gets one more, shorter try.
 */
async function resetPage(slot: PageSlot): Promise<string | null> {
  if (await replaceFromInside(slot, 5_000)) return null;
  const toBlank = (timeout: number) => slot.page.goto('about:blank', { waitUntil: 'load', timeout });
  try {
    await toBlank(10_000);
    return null;
  } catch (err) {
    if (!(err instanceof TimeoutError) || !(await slot.answers(1000))) return messageOf(err);
  }
  return toBlank(5_000).then(
    () => null,
    (err: unknown) => messageOf(err),
  );
}

const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));
