import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastReport, nothingKept, page, startTestSite, stateProbeRoutes, type StateSeen, type TestSite } from './helpers/pages.js';
import { startShotfleet, type RunningProcess } from './helpers/processes.js';
import { TimeoutError } from 'puppeteer-core';
import { createLogger } from '../src/log/logger.js';
import type { PagePool } from '../src/render-pool/page-pool.js';
import type { PageSlot } from '../src/render-pool/page-slot.js';
import { createSessionStore } from '../src/sessions/session-store.js';
import { metricValues, ok, shoot, sleep, waitFor, type Answer } from './helpers/node-client.js';

/** Everything /write leaves behind, as a later /read in the same session should see it. */
const kept: StateSeen = {
  cookie: expect.stringMatching(/js_cookie=written/),
  local: 'written',
  session: expect.anything(),
  indexedDb: ['probe-db'],
  cacheStorage: ['probe-cache'],
  serviceWorkers: 1,
  swProbe: 'worker',
  windowName: expect.any(String),
};

async function sessionsActive(base: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return metricValues(text, 'shotfleet_sessions_active')[''];
}

function probe(node: RunningProcess, site: TestSite, path: '/write' | '/read', session?: string): Promise<Answer> {
  return shoot(
    node.url,
    { url: `${site.url}${path}`, waitForSelector: '#done', viewport: { width: 200, height: 100 } },
    { cookie: session ? `shot_session=${session}` : undefined },
  );
}

describe('sessions: state kept per cookie, separate between ids, LRU eviction (3 pages, 2 sessions)', () => {
  let site: TestSite;
  let node: RunningProcess;

  beforeAll(async () => {
    site = await startTestSite({
      ...stateProbeRoutes(),
      // Tells the test it started, then holds its render for a while (the request asks for a delay).
      '/busy': page('<p>busy</p><script>fetch("/busy-started")</script>'),
      '/busy-started': { body: 'ok', type: 'text/plain' },
    });
    node = await startShotfleet('serve', {
      // One page more than sessions, so a third session's request gets past admission while both are busy.
      SHOTFLEET_PAGES: '3',
      SHOTFLEET_ADAPTIVE_CONCURRENCY: 'false',
      SHOTFLEET_MAX_SESSIONS: '2',
      SHOTFLEET_ALLOW_HOSTS: '127.0.0.1',
    });
  });

  afterAll(async () => {
    await node?.stop();
    await site?.close();
  });

  it('the same cookie keeps cookies and storage across requests: new, then reused', async () => {
    const first = await probe(node, site, '/write', 'alpha');
    ok(first);
    expect(first.headers.get('x-shotfleet-session')).toBe('new');

    const second = await probe(node, site, '/read', 'alpha');
    ok(second);
    expect(second.headers.get('x-shotfleet-session')).toBe('reused');
    expect(lastReport(site, 'read')).toEqual(kept);
    expect(site.requests('/read').at(-1)!.headers.cookie).toContain('server_cookie=written');
    expect(await sessionsActive(node.url)).toBe(1);
  });

  it('another id sees none of it, and the first session still has its state afterwards', async () => {
    const other = await probe(node, site, '/read', 'beta');
    ok(other);
    expect(other.headers.get('x-shotfleet-session')).toBe('new');
    expect(lastReport(site, 'read')).toEqual(nothingKept);

    ok(await probe(node, site, '/read', 'alpha'));
    expect(lastReport(site, 'read')).toEqual(kept);
    expect(await sessionsActive(node.url)).toBe(2);
  });

  it("a request without the cookie sees no session's state and gets no session header", async () => {
    const plain = await probe(node, site, '/read');
    ok(plain);
    expect(plain.headers.get('x-shotfleet-session')).toBeNull();
    expect(lastReport(site, 'read')).toEqual(nothingKept);
  });

  it('at SHOTFLEET_MAX_SESSIONS the least recently used idle session is closed for a new one', async () => {
    // alpha was used after beta: beta is the one to go.
    const gamma = await probe(node, site, '/read', 'gamma');
    ok(gamma);
    expect(gamma.headers.get('x-shotfleet-session')).toBe('new');
    expect(await sessionsActive(node.url)).toBe(2);

    const alpha = await probe(node, site, '/read', 'alpha');
    expect(alpha.headers.get('x-shotfleet-session')).toBe('reused');
    expect(lastReport(site, 'read')).toEqual(kept);

    // beta comes back empty (and in turn evicts gamma, now the least recently used).
    const beta = await probe(node, site, '/read', 'beta');
    expect(beta.headers.get('x-shotfleet-session')).toBe('new');
    expect(lastReport(site, 'read')).toEqual(nothingKept);
    const status = await (await fetch(`${node.url}/status`)).json();
    expect(status.sessions).toBe(2);
  });

  it('when every session is busy, a new one is shed with 503 and Retry-After', async () => {
    const startedBefore = site.hits('/busy-started');
    const busy = ['alpha', 'beta'].map((id) => shoot(node.url, { url: `${site.url}/busy`, delay: 4000 }, { cookie: `shot_session=${id}` }));
    // Both renders are on their pages (bounded wait: 100 × 100 ms).
    for (let i = 0; i < 100 && site.hits('/busy-started') < startedBefore + 2; i++) await new Promise((r) => setTimeout(r, 100));
    expect(site.hits('/busy-started')).toBe(startedBefore + 2);

    const shed = await probe(node, site, '/read', 'delta');
    expect(shed.status).toBe(503);
    expect(Number(shed.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(shed.json?.error?.code).toBe('saturated');

    for (const answer of await Promise.all(busy)) ok(answer);
    // Once they are idle again, delta gets a session.
    const later = await probe(node, site, '/read', 'delta');
    ok(later);
    expect(later.headers.get('x-shotfleet-session')).toBe('new');
  });

  it('a malformed session id is a 400', async () => {
    const bad = await shoot(node.url, { html: page('x') }, { cookie: `shot_session=${'x'.repeat(200)}` });
    expect(bad.status).toBe(400);
    expect(bad.json?.error?.code).toBe('invalid_request');
  });
});

describe('sessions: idle expiry (the session store, with a stand-in page pool)', () => {
  /** A page the store can hold: only what the store itself touches. */
  /** `resets`: how each reset to about:blank ends, in turn ('ok' once they run out); `answers`: whether the page answers a probe. */
  function standInPage(reset: { resets?: ('timeout' | 'closed' | 'ok')[]; answers?: boolean } = {}): PageSlot {
    const resets = [...(reset.resets ?? [])];
    const slot = {
      broken: false,
      browser: { dead: false },
      page: {
        goto: async () => {
          const outcome = resets.shift() ?? 'ok';
          if (outcome === 'timeout') throw new TimeoutError('Navigation timeout of 10000 ms exceeded');
          if (outcome === 'closed') throw new Error('Protocol error (Page.navigate): Target closed');
          return null;
        },
      },
      answers: async () => reset.answers ?? true,
      // Scripts off: the reset goes the browser-side way, the one that can run out of time.
      emulation: { current: () => ({ javascript: false }) },
      usable: () => !slot.broken,
      markBroken() {
        slot.broken = true;
      },
    };
    return slot as unknown as PageSlot;
  }

  const signal = new AbortController().signal;

  function storeOf(openPage: () => PageSlot) {
    const closed: PageSlot[] = [];
    const pool = {
      openExtraPage: async () => openPage(),
      closeExtraPage: async (slot: PageSlot) => void closed.push(slot),
    } as unknown as PagePool;
    return { store: createSessionStore({ pool, maxSessions: 2, idleMs: 200, log: createLogger('silent'), onShed: () => undefined }), closed };
  }

  it.each([
    { case: 'a reset that runs out of time once on a page that answers', resets: ['timeout'], answers: true, kept: true },
    { case: 'a reset that runs out of time twice', resets: ['timeout', 'timeout'], answers: true, kept: false },
    { case: 'a reset that runs out of time on a page that does not answer', resets: ['timeout'], answers: false, kept: false },
    { case: 'a reset whose page target closed', resets: ['closed'], answers: true, kept: false },
  ] as const)('$case: the session is kept: $kept', async ({ resets, answers, kept }) => {
    const { store, closed } = storeOf(() => standInPage({ resets: [...resets], answers }));
    const first = await store.checkout('slow-reset', signal);
    first.release(true);
    await sleep(20); // the reset settles (a real client's next request comes after the answer)
    const next = await store.checkout('slow-reset', signal);
    expect(next.session).toBe(kept ? 'reused' : 'new');
    expect(closed).toEqual(kept ? [] : [first.slot]);
    next.release(true);
    await store.close();
  });

  it('an idle session is closed after SHOTFLEET_SESSION_IDLE_MS: its page is closed and the next request is new again', async () => {
    const { store, closed } = storeOf(() => standInPage());

    const first = await store.checkout('sleepy', signal);
    expect(first.session).toBe('new');
    first.release(true);
    const second = await store.checkout('sleepy', signal);
    expect(second.session).toBe('reused');
    expect(second.slot).toBe(first.slot);
    second.release(true);
    expect(store.active()).toBe(1);

    await waitFor('the idle session closed', async () => store.active() === 0, 5000, 20);
    expect(closed).toEqual([first.slot]);
    const again = await store.checkout('sleepy', signal);
    expect(again.session).toBe('new');
    expect(again.slot).not.toBe(first.slot);
    again.release(true);
    await store.close();
  });
});
