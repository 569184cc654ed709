import http from 'node:http';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { startMembership, type Membership } from '../src/server/membership.js';
import { freePort, sleep, waitFor } from './helpers/haproxy.js';

/** A stand-in hub that records what nodes send it. */
async function fakeHub(port: number, answer = 200) {
  const requests: { method: string; url: string; auth?: string; body: string }[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      requests.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, body });
      res.writeHead(answer, { 'Content-Type': 'application/json' });
      res.end(
        answer === 200 ? JSON.stringify({ id: 'n1', pingIntervalMs: 4000, heartbeatIntervalMs: 10000 }) : '{"error":{"code":"unauthorized","message":"no"}}',
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { log: pino({ level: 'debug' }, stream), lines };
}

describe('startMembership', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()!();
  });
  const start = (port: number, log: pino.Logger, extra: Partial<Parameters<typeof startMembership>[0]> = {}): Membership => {
    const m = startMembership({
      hubUrl: `http://127.0.0.1:${port}/`,
      token: 'tok',
      nodeId: 'n1',
      advertiseUrl: 'http://127.0.0.1:3999',
      capacity: 3,
      heartbeatIntervalMs: 200,
      log,
      ...extra,
    });
    cleanups.push(() => m.stop());
    return m;
  };

  it('registers at once with the token, then re-posts every heartbeat, and deregisters on stop', async () => {
    const port = await freePort();
    const hub = await fakeHub(port);
    cleanups.push(hub.close);
    const m = start(port, capturingLogger().log);
    await waitFor('three posts', () => hub.requests.filter((r) => r.method === 'POST').length >= 3, 5000, 10);
    const first = hub.requests[0];
    expect(first).toMatchObject({ method: 'POST', url: '/nodes', auth: 'Bearer tok' });
    expect(JSON.parse(first.body)).toEqual({ url: 'http://127.0.0.1:3999', id: 'n1', capacity: 3 });
    await m.stop();
    const last = hub.requests.at(-1)!;
    expect(last).toMatchObject({ method: 'DELETE', url: '/nodes/n1', auth: 'Bearer tok' });
    const count = hub.requests.length;
    await sleep(500);
    expect(hub.requests.length).toBe(count); // no heartbeat after stop
  });

  it('keeps retrying a hub that is down and registers once it comes up', async () => {
    const port = await freePort();
    const { log, lines } = capturingLogger();
    start(port, log, { heartbeatIntervalMs: 2000 });
    await waitFor('a failure logged', () => lines.some((l) => /could not reach the hub/.test(String(l.msg))), 5000, 10);
    const hub = await fakeHub(port);
    cleanups.push(hub.close);
    // The backoff starts at 500 ms: well before the next 2 s heartbeat the node is back in.
    await waitFor('registered after the hub came up', () => hub.requests.some((r) => r.method === 'POST'), 5000, 10);
    await waitFor('recovery logged', () => lines.some((l) => /registered with the hub again/.test(String(l.msg))), 2000, 10);
  });

  it('says what to fix when the hub refuses the token, and keeps trying', async () => {
    const port = await freePort();
    const hub = await fakeHub(port, 401);
    cleanups.push(hub.close);
    const { log, lines } = capturingLogger();
    start(port, log);
    await waitFor('two attempts', () => hub.requests.length >= 2, 5000, 10);
    expect(lines.some((l) => /SHOTFLEET_HUB_TOKEN/.test(String(l.err)))).toBe(true);
  });

  it('registers with every hub of a comma list; one that is down delays no other', async () => {
    const [upPort, downPort, secondPort] = [await freePort(), await freePort(), await freePort()];
    const up = await fakeHub(upPort);
    const second = await fakeHub(secondPort);
    cleanups.push(up.close, second.close);
    const m = startMembership({
      hubUrl: `http://127.0.0.1:${upPort}, http://127.0.0.1:${downPort}/,http://127.0.0.1:${secondPort}`,
      token: 'tok',
      nodeId: 'n1',
      advertiseUrl: 'http://127.0.0.1:3999',
      capacity: 3,
      heartbeatIntervalMs: 200,
      log: capturingLogger().log,
    });
    cleanups.push(() => m.stop());
    for (const hub of [up, second])
      await waitFor('three heartbeats at each live hub', () => hub.requests.filter((r) => r.method === 'POST').length >= 3, 5000, 10);
    for (const hub of [up, second]) expect(hub.requests[0]).toMatchObject({ method: 'POST', url: '/nodes', auth: 'Bearer tok' });
    await m.stop();
    for (const hub of [up, second]) expect(hub.requests.at(-1)).toMatchObject({ method: 'DELETE', url: '/nodes/n1', auth: 'Bearer tok' });
  });

  it('stops in bounded time and without throwing when the hub is unreachable', async () => {
    const port = await freePort();
    const m = start(port, capturingLogger().log);
    const started = Date.now();
    await expect(m.stop()).resolves.toBeUndefined();
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
