import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { embeddingPage, lastReport, nothingKept, page, startTestSite, stateProbeRoutes, type TestSite } from './helpers/pages.js';
import { workerNode, type WorkerNode } from './helpers/worker-node.js';
import { ok, rendererPids, shoot } from './helpers/node-client.js';

/**
 * Session-less requests on a one-page node: every render reuses the same window and context, so
 * whatever the wipe between renders misses, the next request sees.
 */
describe('isolation between session-less requests (one page, reused)', () => {
  let site: TestSite;
  /** Another origin (and site) on 127.0.0.2, embedded by `site` as a third party. */
  let other: TestSite;
  let node: WorkerNode;

  beforeAll(async () => {
    site = await startTestSite({
      ...stateProbeRoutes(),
      '/styled': page('<p>styled</p>', '<link rel="stylesheet" href="/cacheable.css">'),
    });
    other = await startTestSite(stateProbeRoutes(), { host: '127.0.0.2' });
    site.route('/embed-write', embeddingPage(other.url, 'write'));
    site.route('/embed-read', embeddingPage(other.url, 'read'));
    node = await workerNode();
  });

  afterAll(async () => {
    await site?.close();
    await other?.close();
  });

  const render = (path: string) => shoot(node.url, { url: `${site.url}${path}`, waitForSelector: '#done', viewport: { width: 200, height: 100 } });

  it("renders of one site keep to the pages' renderer processes: a render starts none of its own", async () => {
    // Both windows (the page and the spare) have rendered the site once.
    const renderStyled = () => shoot(node.url, { url: `${site.url}/styled`, viewport: { width: 200, height: 100 } });
    for (let i = 0; i < 2; i++) ok(await renderStyled());
    const before = await rendererPids(node.proc.pid!);
    for (let i = 0; i < 4; i++) ok(await renderStyled());
    const started = (await rendererPids(node.proc.pid!)).filter((pid) => !before.includes(pid));
    expect(started, `renderers before: ${before}`).toEqual([]);
  });

  it('cookies, local and session storage, IndexedDB, Cache Storage and service workers written by one request are gone in the next', async () => {
    for (let round = 1; round <= 2; round++) {
      ok(await render('/write'));
      // The writer saw its own state: the probe can see each kind of state when it is there.
      expect(lastReport(site, 'write')).toEqual({
        cookie: expect.stringContaining('js_cookie=written'),
        local: 'written',
        session: 'written',
        indexedDb: ['probe-db'],
        cacheStorage: ['probe-cache'],
        serviceWorkers: 1,
        swProbe: 'worker',
        windowName: 'written',
      });
      expect(lastReport(site, 'write').cookie).toContain('server_cookie=written');

      const readsBefore = site.hits('/read');
      ok(await render('/read'));
      expect(lastReport(site, 'read'), `round ${round}`).toEqual(nothingKept);
      // The server saw no cookie either, and the page came from the network, not from a leftover worker.
      expect(site.hits('/read')).toBe(readsBefore + 1);
      expect(site.requests('/read').at(-1)!.headers.cookie).toBeUndefined();
    }
    // It was the wipe that did it: the page was never given up and replaced by a fresh one.
    expect(node.logs.filter((l) => String(l.msg).includes('could not wipe'))).toEqual([]);
  });

  it('state a third-party iframe wrote (partitioned under the top-level site) is gone in the next request', async () => {
    for (let round = 1; round <= 2; round++) {
      ok(await render('/embed-write'));
      const wrote = lastReport(other, 'write');
      expect(wrote.error).toBeUndefined();
      // Whatever the frame could store as a third party (the probe must have stored something to prove anything).
      expect(wrote.local).toBe('written');
      expect(wrote.indexedDb).toEqual(['probe-db']);

      ok(await render('/embed-read'));
      expect(lastReport(other, 'read'), `round ${round}`).toEqual(nothingKept);
    }
  });

  it("an html render right after a url render cannot leave state for that url's origin", async () => {
    ok(await render('/write'));
    const html = page(
      '<p>html</p>',
      `<script>try { localStorage.setItem('probe', 'from-html'); sessionStorage.setItem('probe', 'from-html') } catch {}
        addEventListener('load', () => { const d = document.createElement('div'); d.id = 'done'; document.body.appendChild(d) })</script>`,
    );
    ok(await shoot(node.url, { html, waitForSelector: '#done' }));
    ok(await render('/read'));
    expect(lastReport(site, 'read')).toEqual(nothingKept);
  });

  it('nothing a request with cookies fetched is served from the HTTP cache to a later one', async () => {
    // Two in a row: one in each of the node's two windows.
    for (let i = 0; i < 2; i++) ok(await shoot(node.url, { url: `${site.url}/styled`, cookies: [{ name: 'given', value: 'once' }] }));
    expect(site.requests('/cacheable.css').at(-1)!.headers.cookie).toBe('given=once');
    const before = site.hits('/cacheable.css');
    ok(await shoot(node.url, { url: `${site.url}/styled` }));
    expect(site.hits('/cacheable.css')).toBe(before + 1);
    expect(site.requests('/cacheable.css').at(-1)!.headers.cookie).toBeUndefined();
  });

  it('cookies given in one request are not sent with the next', async () => {
    ok(await shoot(node.url, { url: `${site.url}/sw-probe`, cookies: [{ name: 'given', value: 'once' }] }));
    expect(site.requests('/sw-probe').at(-1)!.headers.cookie).toBe('given=once');
    ok(await shoot(node.url, { url: `${site.url}/sw-probe` }));
    expect(site.requests('/sw-probe').at(-1)!.headers.cookie).toBeUndefined();
  });
});
