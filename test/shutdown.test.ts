import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectPng, nodeChromiumPids, nodeStatus, request, shoot, solidPage, startSite, waitFor, type Site } from './helpers/node-client.js';
import { startShotfleet, waitForLog, type RunningProcess } from './helpers/processes.js';

describe('graceful shutdown of a real node', () => {
  let site: Site;
  const nodes: RunningProcess[] = [];

  beforeAll(async () => {
    site = await startSite((req, res) => {
      if (req.url === '/loop') return void res.writeHead(200, { 'content-type': 'text/html' }).end('<script>while (true) {}</script>');
      res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'no-store' }).end(solidPage('rgb(200,0,0)'));
    });
  });

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop(5_000)));
    await site?.close();
  });

  async function startNode(env: Record<string, string> = {}): Promise<RunningProcess> {
    const node = await startShotfleet('serve', { SHOTFLEET_PAGES: '2', SHOTFLEET_ALLOW_HOSTS: '127.0.0.1', ...env }, { timeoutMs: 60_000 });
    nodes.push(node);
    return node;
  }

  it('SIGTERM with renders in flight: they finish with 200, new work gets 503 draining, /status 503, exit 0, no Chromium left', async () => {
    const node = await startNode();
    const nodePid = node.proc.pid!;
    expectPng(await shoot(node.url, { url: `${site.url}/warm` }));
    expect((await nodeChromiumPids(nodePid)).length).toBeGreaterThan(0);

    // Long enough for the test to look at the draining node while both renders are still running.
    const inFlight = [0, 1].map((i) => shoot(node.url, { url: `${site.url}/in-flight/${i}`, delay: 6000 }));
    await waitFor('both pages busy', async () => (await nodeStatus(node.url)).body.pages.inUse === 2, 20_000, 20);
    node.proc.kill('SIGTERM');

    const status = await waitFor(
      '/status to turn 503',
      async () => {
        const s = await nodeStatus(node.url);
        return s.code === 503 ? s : undefined;
      },
      10_000,
      20,
    );
    expect(status.body.status).toBe('draining');

    const refused = await shoot(node.url, { url: `${site.url}/too-late` });
    expect(refused.status).toBe(503);
    expect(refused.json?.error?.code).toBe('draining');
    expect(refused.json?.error?.details?.reason).toBe('draining');
    expect(refused.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
    // GET is refused the same way, and liveness still answers while draining.
    expect((await request(`${node.url}/screenshot?url=${encodeURIComponent(`${site.url}/too-late`)}`)).status).toBe(503);
    expect((await request(`${node.url}/livez`)).status).toBe(200);

    for (const answer of await Promise.all(inFlight)) expectPng(answer);
    expect(await node.exited).toBe(0);
    await waitForLog(node, 'stopped', (l) => l.msg === 'stopped');
    await waitFor('no Chromium left', async () => (await nodeChromiumPids(nodePid)).length === 0, 10_000, 100);
  }, 150_000);

  it('a render that outlives SHOTFLEET_SHUTDOWN_GRACE_MS does not hold the exit: exit 0, no Chromium left', async () => {
    const node = await startNode({ SHOTFLEET_SHUTDOWN_GRACE_MS: '1500' });
    const nodePid = node.proc.pid!;
    const stuck = shoot(node.url, { url: `${site.url}/loop`, timeout: 60_000 }).catch((err: Error) => err);
    await waitFor('the stuck render to hold a page', async () => (await nodeStatus(node.url)).body.pages.inUse === 1, 20_000, 20);
    node.proc.kill('SIGTERM');

    // Bounded by the grace period plus closing the browser, not by the render's 60 s deadline.
    const exit = await Promise.race([node.exited, new Promise<'still running'>((r) => setTimeout(() => r('still running'), 30_000))]);
    expect(exit).toBe(0);
    const answer = await stuck;
    if (!(answer instanceof Error)) expect(answer.status).toBeGreaterThanOrEqual(500);
    await waitFor('no Chromium left', async () => (await nodeChromiumPids(nodePid)).length === 0, 10_000, 100);
  });

  it('the whole stop fits in SHOTFLEET_SHUTDOWN_GRACE_MS: drain, closing browsers whose pages are stuck, and exit', async () => {
    const graceMs = 5000;
    const node = await startNode({ SHOTFLEET_SHUTDOWN_GRACE_MS: String(graceMs) });
    const nodePid = node.proc.pid!;
    // A page stuck in a script that never yields: closing it is what runs past the grace.
    const stuck = shoot(node.url, { url: `${site.url}/loop`, timeout: 60_000 }).catch((err: Error) => err);
    await waitFor('the stuck render to hold a page', async () => (await nodeStatus(node.url)).body.pages.inUse === 1, 20_000, 20);
    const signalled = performance.now();
    node.proc.kill('SIGTERM');
    expect(await node.exited).toBe(0);
    const stopMs = performance.now() - signalled;
    expect(stopMs, `stopped ${Math.round(stopMs)} ms after SIGTERM`).toBeLessThanOrEqual(graceMs);
    await stuck;
    await waitFor('no Chromium left', async () => (await nodeChromiumPids(nodePid)).length === 0, 10_000, 100);
  }, 60_000);

  it('SIGINT drains the same way: exit 0, no Chromium left', async () => {
    const node = await startNode();
    const nodePid = node.proc.pid!;
    expectPng(await shoot(node.url, { url: `${site.url}/before-sigint` }));
    node.proc.kill('SIGINT');
    expect(await node.exited).toBe(0);
    await waitFor('no Chromium left', async () => (await nodeChromiumPids(nodePid)).length === 0, 10_000, 100);
  });
});
