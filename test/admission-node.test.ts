import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPng } from './helpers/images.js';
import { metricValues, shoot as shootNode } from './helpers/node-client.js';
import { askAgent } from './helpers/agent-client.js';
import { freePort, startShotfleet, type RunningProcess } from './helpers/processes.js';
import { waitFor } from './helpers/wait.js';

interface Answer {
  status: number;
  reason?: string;
  code?: string;
  retryAfter: string | null;
  png: boolean;
}

/** POST /screenshot, kept to what admission decides: the status, a shed's reason and code, Retry-After. */
async function shoot(base: string, body: Record<string, unknown>, signal?: AbortSignal): Promise<Answer> {
  const answer = await shootNode(base, body, { timeoutMs: 60_000, signal });
  const error = answer.status !== 200 ? answer.json?.error : undefined;
  return {
    status: answer.status,
    reason: error?.details?.reason as string | undefined,
    code: error?.code,
    retryAfter: answer.headers.get('retry-after'),
    png: isPng(answer.bytes),
  };
}

describe('admission on a real node (1 page, real Chromium)', () => {
  let pages: http.Server;
  let pagesUrl: string;
  let node: RunningProcess;
  let agentPort: number;
  /** Paths the node's Chromium asked the test site for. */
  const asked = new Set<string>();

  beforeAll(async () => {
    pages = http.createServer((req, res) => {
      asked.add(req.url ?? '');
      // /slow answers after 1.5 s: a render of it can never fit a 1 s timeout.
      const delay = req.url?.startsWith('/slow') ? 1500 : 0;
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/html' }).end(`<!doctype html><h1>page ${req.url}</h1><p>${'text '.repeat(200)}</p>`);
      }, delay);
    });
    await new Promise<void>((resolve) => pages.listen(0, '127.0.0.1', resolve));
    pagesUrl = `http://127.0.0.1:${(pages.address() as AddressInfo).port}`;
    agentPort = await freePort();
    node = await startShotfleet(
      'serve',
      { SHOTFLEET_PAGES: '1', SHOTFLEET_ALLOW_HOSTS: '127.0.0.1', SHOTFLEET_AGENT_PORT: String(agentPort) },
      { timeoutMs: 60_000 },
    );
  });

  afterAll(async () => {
    // This file does not check the node's exit. Once a client has left the queue (the last test), a SIGTERM'd node
    // keeps one of that client's other keep-alive connections counted as busy and waits out its HTTP close bound
    // (~25 s of the 30 s grace): it is killed after 5 s instead of the default 20.
    await node?.stop(5_000);
    pages?.closeAllConnections();
    await new Promise((r) => pages?.close(r));
  });

  it('the agent reports a free node as ready up 100%', async () => {
    expect(await askAgent(agentPort)).toBe('ready up 100%\n');
  });

  it('sheds a flood of 20 at once with 503 + Retry-After, serves every accepted one, and /metrics agrees', async () => {
    const before = await (await fetch(`${node.url}/metrics`)).text();
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => shoot(node.url, { url: `${pagesUrl}/flood/${i}`, viewport: { width: 200, height: 150 }, timeout: 30_000 })),
    );

    const accepted = answers.filter((a) => a.status !== 503);
    const shed = answers.filter((a) => a.status === 503);
    expect(shed.length).toBeGreaterThan(0);
    expect(accepted.length).toBeGreaterThan(0);
    for (const a of accepted) expect(a).toMatchObject({ status: 200, png: true });
    for (const a of shed) {
      expect(a.code).toBe('saturated');
      expect(['queue_full', 'deadline', 'queue_timeout']).toContain(a.reason);
      expect(a.retryAfter).toMatch(/^[1-9]\d*$/);
    }
    // 1 page + a queue of 2: at most 3 can be in the node at once, and 20 arrive together.
    expect(shed.filter((a) => a.reason === 'queue_full').length).toBeGreaterThan(0);

    const after = await (await fetch(`${node.url}/metrics`)).text();
    const delta = (name: string, label?: string) => {
      const b = metricValues(before, name, label);
      const a = metricValues(after, name, label);
      return Object.fromEntries(
        Object.keys(a)
          .map((k) => [k, a[k] - (b[k] ?? 0)])
          .filter(([, v]) => v !== 0),
      );
    };
    const byReason: Record<string, number> = {};
    for (const a of shed) byReason[a.reason!] = (byReason[a.reason!] ?? 0) + 1;
    expect(delta('shotfleet_shed_total', 'reason')).toEqual(byReason);
    expect(delta('shotfleet_requests_total', 'code')).toEqual({ '200': accepted.length, '503': shed.length });
    expect(delta('shotfleet_queue_wait_seconds_count')).toEqual({ '': accepted.length });
    expect(metricValues(after, 'shotfleet_render_queue_length')['']).toBe(0);
    expect(metricValues(after, 'shotfleet_pages_in_use')['']).toBe(0);
    expect(metricValues(after, 'shotfleet_concurrency_limit')['']).toBe(1);
  });

  it('refuses at once with deadline a request whose class is known to take longer than its timeout', async () => {
    // Teach the estimate for this class (jpeg 640x480) with renders of a page that takes 1.5 s to arrive.
    for (let i = 0; i < 2; i++) {
      expect(await shoot(node.url, { url: `${pagesUrl}/slow/${i}`, format: 'jpeg', viewport: { width: 640, height: 480 }, timeout: 20_000 })).toMatchObject({
        status: 200,
      });
    }
    const answer = await shoot(node.url, { url: `${pagesUrl}/slow/x`, format: 'jpeg', viewport: { width: 640, height: 480 }, timeout: 1000 });
    expect(answer).toMatchObject({ status: 503, reason: 'deadline', code: 'saturated' });
    expect(answer.retryAfter).toMatch(/^[1-9]\d*$/);
    // Another class with no slow history is still served within the same timeout budget rules.
    expect(await shoot(node.url, { url: `${pagesUrl}/fast`, timeout: 20_000 })).toMatchObject({ status: 200, png: true });
  });

  it('a full node sheds before it reads the body: even a body that is not JSON gets 503 queue_full, and 400 once there is room', async () => {
    const status = async () => (await (await fetch(`${node.url}/status`)).json()) as { queue: { length: number; max: number }; pages: { inUse: number } };
    const { queue } = await status();
    // The page and every queue place, held by renders of a page that takes 1.5 s to arrive.
    const holders = Array.from({ length: 1 + queue.max }, (_, i) => shoot(node.url, { url: `${pagesUrl}/slow/full-${i}`, timeout: 20_000 }));
    let full = false;
    for (let i = 0; i < 200 && !full; i++) {
      const s = await status();
      full = s.pages.inUse === 1 && s.queue.length === s.queue.max;
      if (!full) await new Promise((r) => setTimeout(r, 10));
    }
    expect(full).toBe(true);
    const notJson = () => fetch(`${node.url}/screenshot`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{not json' });
    const refused = await notJson();
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: { details: { reason: string } } }).error.details.reason).toBe('queue_full');
    expect(refused.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
    for (const answer of await Promise.all(holders)) expect(answer).toMatchObject({ status: 200, png: true });
    expect((await notJson()).status).toBe(400);
  });

  it('a client that leaves mid-render: its render stops, and its page is not taken for a crashed renderer', async () => {
    const logsBefore = node.logs.length;
    const leaving = new AbortController();
    const abandoned = shoot(node.url, { url: `${pagesUrl}/slow/left-mid-render`, timeout: 20_000 }, leaving.signal).catch((err: Error) => err.name);
    // Left while the page loads (the site holds it 1.5 s).
    await waitFor('the page to be asked for', () => asked.has('/slow/left-mid-render'), 10_000, 10);
    leaving.abort();
    expect(await abandoned).toBe('AbortError');
    const since = () => node.logs.slice(logsBefore);
    await waitFor('the abandoned request to end', () => since().some((l) => l.msg === 'request' && l.path === '/screenshot'), 10_000);
    const told = since().filter((l) => JSON.stringify(l).includes('crashed') || l.msg === 'the render lost its page; retrying on a fresh one');
    expect(told).toEqual([]);
  });

  it('a client that leaves the queue frees its place at once', async () => {
    const status = async () => (await (await fetch(`${node.url}/status`)).json()) as { queue: { length: number }; pages: { inUse: number } };
    // Hold the page with a slow render, then queue one and abandon it.
    const holding = shoot(node.url, { url: `${pagesUrl}/slow/hold`, timeout: 20_000 });
    const leaving = new AbortController();
    let queued = false;
    for (let i = 0; i < 100 && !queued; i++) {
      if ((await status()).pages.inUse === 1) queued = true;
      else await new Promise((r) => setTimeout(r, 20));
    }
    expect(queued).toBe(true);
    const abandoned = shoot(node.url, { url: `${pagesUrl}/slow/abandoned`, timeout: 20_000 }, leaving.signal).catch((err: Error) => err.name);
    let seen = 0;
    for (let i = 0; i < 100 && seen === 0; i++) {
      seen = (await status()).queue.length;
      if (seen === 0) await new Promise((r) => setTimeout(r, 10));
    }
    expect(seen).toBe(1);
    leaving.abort();
    expect(await abandoned).toBe('AbortError');
    let left = 1;
    for (let i = 0; i < 100 && left !== 0; i++) {
      left = (await status()).queue.length;
      if (left !== 0) await new Promise((r) => setTimeout(r, 10));
    }
    expect(left).toBe(0);
    expect(await holding).toMatchObject({ status: 200 });
  });
});
