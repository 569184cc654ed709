import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  alive,
  browserPids,
  crashpadPids,
  expectPng,
  metricValues,
  nodeChromiumPids,
  nodeStatus,
  request,
  shoot,
  solidPage,
  startSite,
  waitFor,
  type Answer,
  type Site,
} from './helpers/node-client.js';
import { startShotfleet, type RunningProcess } from './helpers/processes.js';

/** Codes a client may see when the browser dies under its request: clear, retryable, never a hang. */
const clearFailures = new Set(['render_failed', 'saturated', 'timeout']);

/** Pixels do not matter here, only that a capture came back: small renders keep the node's work low. */
const viewport = { width: 64, height: 48 };

function expectAnswered(answer: Answer): void {
  if (answer.status === 200) {
    expectPng(answer);
    return;
  }
  expect(answer.json?.error?.message, `status ${answer.status}: ${answer.bytes.toString('utf8').slice(0, 300)}`).toBeTruthy();
  expect(clearFailures.has(answer.json!.error!.code), `unexpected code ${answer.json?.error?.code}`).toBe(true);
  expect(answer.bytes.toString('utf8')).not.toMatch(/\n\s+at |node_modules|\.ts:\d/);
}

async function metrics(base: string): Promise<string> {
  return (await request(`${base}/metrics`)).bytes.toString('utf8');
}

async function oneBrowserPid(nodePid: number): Promise<number> {
  return waitFor('exactly one browser process', async () => {
    const pids = await browserPids(nodePid);
    return pids.length === 1 ? pids[0] : undefined;
  });
}

describe('browser lifecycle on a real node', () => {
  let site: Site;
  const nodes: RunningProcess[] = [];
  const homes: string[] = [];

  beforeAll(async () => {
    site = await startSite((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'no-store' }).end(solidPage('rgb(0,0,200)', `<p>${req.url}</p>`));
    });
  });

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await Promise.all(homes.map((h) => rm(h, { recursive: true, force: true })));
    await site?.close();
  });

  async function startNode(env: Record<string, string>): Promise<RunningProcess> {
    const node = await startShotfleet('serve', { SHOTFLEET_ALLOW_HOSTS: '127.0.0.1', ...env }, { timeoutMs: 60_000 });
    nodes.push(node);
    return node;
  }

  /**
   * One node for both kills, in this order: its browser is killed under load (the node must recover), then the node
   * itself (everything it started, the replacement browser too, must go with it).
   */
  describe('a 2-page node whose Chromium is SIGKILLed, then the node itself', () => {
    let node: RunningProcess;
    let nodePid: number;
    /** Chromium gets only an allow-listed environment; HOME is in it, so a HOME of the test's own marks its processes. */
    let marker: string;

    beforeAll(async () => {
      const home = await mkdtemp(path.join(os.tmpdir(), `shotfleet-home-${randomUUID()}-`));
      homes.push(home);
      marker = `HOME=${home}`;
      node = await startNode({ SHOTFLEET_PAGES: '2', HOME: home });
      nodePid = node.proc.pid!;
    });

    it('SIGKILL of Chromium under load: every request answers, the node serves again, the crash is counted', async () => {
      expectPng(await shoot(node.url, { url: `${site.url}/warm`, viewport }));
      const victim = await oneBrowserPid(nodePid);
      const handlersBefore = (await crashpadPids(marker)).length;

      // 2 rendering (held by a delay) + 4 queued: everything a 2-page node takes at once. The longest
      // deadline leaves room for a relaunch on a loaded machine; the client's own bound is longer still.
      const inFlight = Array.from({ length: 6 }, (_, i) =>
        shoot(node.url, { url: `${site.url}/load/${i}`, viewport, delay: 1500, timeout: 60_000 }, { timeoutMs: 90_000 }),
      );
      await waitFor('both pages busy', async () => (await nodeStatus(node.url)).body.pages.inUse === 2, 20_000, 20);
      process.kill(victim, 'SIGKILL');

      const answers = await Promise.all(inFlight);
      answers.forEach(expectAnswered);
      // Screenshots are idempotent: the node retries a render whose browser died, so most still succeed.
      expect(answers.filter((a) => a.status === 200).length).toBeGreaterThanOrEqual(3);

      await waitFor('a render to succeed again', async () => (await shoot(node.url, { url: `${site.url}/after`, viewport })).status === 200, 30_000, 200);
      expect((await nodeStatus(node.url)).code).toBe(200);
      const replacement = await oneBrowserPid(nodePid);
      expect(replacement).not.toBe(victim);
      expect(await alive(victim)).toBe(false);
      expect(metricValues(await metrics(node.url), 'shotfleet_browser_restarts_total', 'reason').crash).toBe(1);
      // The dead browser's crash handlers go with it; only the replacement's remain.
      await waitFor("the dead browser's crashpad handlers to exit", async () => (await crashpadPids(marker)).length <= handlersBefore, 15_000, 250);
    });

    it('SIGKILL of the node itself: its Chromium processes and their crash handlers exit on their own', async () => {
      expectPng(await shoot(node.url, { url: `${site.url}/before-kill`, viewport }));
      expect((await nodeChromiumPids(nodePid)).length).toBeGreaterThan(0);
      expect((await crashpadPids(marker)).length).toBeGreaterThan(0);

      node.proc.kill('SIGKILL');
      await node.exited;
      await waitFor('no Chromium left after the node died', async () => (await nodeChromiumPids(nodePid)).length === 0, 15_000, 200);
      await waitFor('no crashpad handler left after the node died', async () => (await crashpadPids(marker)).length === 0, 15_000, 200);
    });
  });

  it('SHOTFLEET_RECYCLE_AFTER=3: browsers are replaced (new pid) with no failed request, the old ones exit', async () => {
    const node = await startNode({ SHOTFLEET_PAGES: '2', SHOTFLEET_RECYCLE_AFTER: '3' });
    const nodePid = node.proc.pid!;
    const seen = new Set<number>([await oneBrowserPid(nodePid)]);
    const first = [...seen][0];

    for (let round = 0; round < 5; round++) {
      const pair = await Promise.all([0, 1].map((i) => shoot(node.url, { url: `${site.url}/recycle/${round}/${i}`, viewport })));
      for (const answer of pair) expectPng(answer);
      for (const pid of await browserPids(nodePid)) seen.add(pid);
    }
    expect(seen.size).toBeGreaterThanOrEqual(2);
    // With no more traffic, retired browsers still close (their idle pages are not left to keep them
    // alive): one browser at rest, and not the first.
    await waitFor('the first browser to exit', async () => !(await alive(first)), 20_000, 200);
    await waitFor('a single browser at rest', async () => (await browserPids(nodePid)).length === 1, 20_000, 200);
    const restarts = metricValues(await metrics(node.url), 'shotfleet_browser_restarts_total', 'reason');
    // At least one; how many depends on how fast replacements launch while renders continue on the old one.
    expect(restarts.recycle).toBeGreaterThanOrEqual(1);
    expect(restarts.crash ?? 0).toBe(0);
    expect((await nodeStatus(node.url)).body.status).toBe('ready');
  });
});
