import type http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitStamp } from './helpers/exit-stamp.js';
import { expectPng, nodeChromiumPids, nodeStatus, request, shoot, solidPage, startSite, waitFor, type Site } from './helpers/node-client.js';
import { startShotfleet, waitForLog, type RunningProcess } from './helpers/processes.js';

describe('graceful shutdown of a real node', () => {
  let site: Site;
  const nodes: RunningProcess[] = [];
  /** Requests for /held.css wait here until releaseHeld(): a page that links it is still loading until then. */
  const held: http.ServerResponse[] = [];
  let released = false;
  const answerHeld = (res: http.ServerResponse) => res.writeHead(200, { 'content-type': 'text/css' }).end('p{color:rgb(1,2,3)}');
  function releaseHeld(): void {
    released = true;
    for (const res of held.splice(0)) answerHeld(res);
  }

  beforeAll(async () => {
    site = await startSite((req, res) => {
      if (req.url === '/loop') return void res.writeHead(200, { 'content-type': 'text/html' }).end('<script>while (true) {}</script>');
      if (req.url === '/held.css') return void (released ? answerHeld(res) : held.push(res));
      const stylesheet = req.url?.startsWith('/in-flight/') ? '<link rel="stylesheet" href="/held.css">' : '';
      res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'no-store' }).end(solidPage('rgb(200,0,0)', stylesheet));
    });
  });

  afterAll(async () => {
    releaseHeld();
    await Promise.all(nodes.map((n) => n.stop(5_000)));
    await site?.close();
  });

  async function startNode(env: Record<string, string>): Promise<RunningProcess> {
    const node = await startShotfleet('serve', { SHOTFLEET_ALLOW_HOSTS: '127.0.0.1', ...env }, { timeoutMs: 60_000 });
    nodes.push(node);
    return node;
  }

  it('SIGTERM with renders in flight: they finish with 200, new work gets 503 draining, /status 503, exit 0, no Chromium left', async () => {
    const node = await startNode({ SHOTFLEET_PAGES: '2' });
    const nodePid = node.proc.pid!;
    expectPng(await shoot(node.url, { url: `${site.url}/warm` }));
    expect((await nodeChromiumPids(nodePid)).length).toBeGreaterThan(0);

    // Both renders stay in flight (their pages wait for /held.css) until the test has looked at the draining node.
    const inFlight = [0, 1].map((i) => shoot(node.url, { url: `${site.url}/in-flight/${i}` }));
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
    // The renders were still running all along: the drain waited for them, and they finish now.
    expect(node.proc.exitCode).toBeNull();
    releaseHeld();

    for (const answer of await Promise.all(inFlight)) expectPng(answer);
    expect(await node.exited).toBe(0);
    await waitForLog(node, 'stopped', (l) => l.msg === 'stopped');
    await waitFor('no Chromium left', async () => (await nodeChromiumPids(nodePid)).length === 0, 10_000, 100);
  }, 150_000);

  it('a render stuck in a script does not hold the stop: drain, closing its browser and exit fit in SHOTFLEET_SHUTDOWN_GRACE_MS, exit 0, no Chromium left', async () => {
    const graceMs = 2000;
    const exit = exitStamp();
    const node = await startNode({ SHOTFLEET_PAGES: '1', SHOTFLEET_SHUTDOWN_GRACE_MS: String(graceMs), ...exit.env });
    const nodePid = node.proc.pid!;
    // A page stuck in a script that never yields, its deadline far past the grace: closing it is what runs past the grace.
    const stuck = shoot(node.url, { url: `${site.url}/loop`, timeout: 60_000 }).catch((err: Error) => err);
    await waitFor('the stuck render to hold a page', async () => (await nodeStatus(node.url)).body.pages.inUse === 1, 20_000, 20);
    const signalled = Date.now();
    node.proc.kill('SIGTERM');
    expect(await node.exited).toBe(0);
    const seenMs = Date.now() - signalled;
    // Timed to the node's own exit: the test's lag in noticing it (its event loop on a loaded machine) is not the node's.
    const stopMs = (await exit.read()) - signalled;
    await waitForLog(node, 'stopped', (l) => l.msg === 'stopped');
    const loggedAt = (msg: string) => {
      const line = node.logs.find((l) => l.msg === msg);
      return line ? `${Number(line.time) - signalled} ms` : 'never';
    };
    const steps = `draining logged at ${loggedAt('draining')}, stopped at ${loggedAt('stopped')}, the exit seen at ${seenMs} ms`;
    expect(stopMs, `exited ${stopMs} ms after SIGTERM (${steps})`).toBeLessThanOrEqual(graceMs);
    const answer = await stuck;
    if (!(answer instanceof Error)) expect(answer.status).toBeGreaterThanOrEqual(500);
    await waitFor('no Chromium left', async () => (await nodeChromiumPids(nodePid)).length === 0, 10_000, 100);
  }, 60_000);

  it('SIGINT drains the same way: exit 0, no Chromium left', async () => {
    const node = await startNode({ SHOTFLEET_PAGES: '1' });
    const nodePid = node.proc.pid!;
    expectPng(await shoot(node.url, { url: `${site.url}/before-sigint` }));
    node.proc.kill('SIGINT');
    expect(await node.exited).toBe(0);
    await waitFor('no Chromium left', async () => (await nodeChromiumPids(nodePid)).length === 0, 10_000, 100);
  });
});
