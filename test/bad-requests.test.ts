import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { badCaseRequest, badCases, expectCleanError, judgedPastTheHttpLayer, type BadCase } from './helpers/bad-requests.js';
import { expectPng, metricValues, request, shoot, solidPage, startSite, type Answer, type Site } from './helpers/node-client.js';
import { startShotfleet, type RunningProcess } from './helpers/processes.js';

/**
 * Bad input and auth against a real node with its browser. The HTTP layer's own checks (every generated bad body,
 * 413/415/404, each way a token or signed link is refused) run in process in test/http-app.test.ts; here are the
 * cases only the real node judges (the URL policy, the browser), the real server's 413, and one smoke of the rest.
 */

const token = 'render-token-123';
const maxBodyBytes = 256 * 1024;
const auth = { authorization: `Bearer ${token}` };

function send(base: string, c: BadCase, headers: Record<string, string> = auth): Promise<Answer> {
  return request(`${base}/screenshot`, badCaseRequest(c, headers));
}

describe('bad input and auth on a real node', () => {
  let site: Site;
  let node: RunningProcess;

  beforeAll(async () => {
    site = await startSite((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(solidPage('rgb(0,0,0)', '<p>x</p>')));
    node = await startShotfleet(
      'serve',
      { SHOTFLEET_PAGES: '1', SHOTFLEET_ALLOW_HOSTS: '127.0.0.1', SHOTFLEET_TOKEN: token, SHOTFLEET_MAX_BODY_BYTES: String(maxBodyBytes) },
      { timeoutMs: 60_000 },
    );
  });

  afterAll(async () => {
    await node?.stop();
    await site?.close();
  });

  it('the bad bodies the HTTP layer lets through get a 4xx JSON error from the node, a sample of the rest too; never a 5xx', async () => {
    const url = `${site.url}/page`;
    const cases = badCases(url, maxBodyBytes);
    const pastTheHttpLayer = cases.filter((c) => judgedPastTheHttpLayer.has(c.name));
    expect(pastTheHttpLayer).toHaveLength(judgedPastTheHttpLayer.size);
    // The first of each kind (400, 413, 415) and one in 25 of the rest, so the real server's answers are seen end to end.
    const rest = cases.filter((c) => !judgedPastTheHttpLayer.has(c.name));
    const firsts = [400, 413, 415].map((status) => rest.find((c) => c.expect === status)!);
    const sample = rest.filter((c, i) => firsts.includes(c) || i % 25 === 0);
    // One at a time: a few cases (a cookie or selector only Chromium can judge) take the node's one page.
    for (const c of [...pastTheHttpLayer, ...sample]) expectCleanError(await send(node.url, c), c.expect, c.name);
    expectCleanError(await request(`${node.url}/screenshot?${new URLSearchParams({ url: 'file:///etc/passwd' })}`, { headers: auth }), 400, 'GET file:');

    // The node is unharmed, and saw no 5xx at all.
    expectPng(await shoot(node.url, { url }, { headers: auth }));
    const metrics = (await request(`${node.url}/metrics`)).bytes.toString('utf8');
    const byCode = metricValues(metrics, 'shotfleet_requests_total', 'code');
    expect(Object.keys(byCode).filter((code) => Number(code) >= 500)).toEqual([]);
    expect(byCode['400']).toBe([...pastTheHttpLayer, ...sample].filter((c) => c.expect === 400).length + 1);
  });

  it('a body over SHOTFLEET_MAX_BODY_BYTES sent chunked (no Content-Length) gets 413', async () => {
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 0) controller.enqueue(Buffer.from('{"url":"http://127.0.0.1/","css":"'));
        if (sent >= 2 * maxBodyBytes) return controller.close();
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const res = await fetch(`${node.url}/screenshot`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body,
      duplex: 'half',
      signal: AbortSignal.timeout(30_000),
    } as RequestInit);
    const bytes = Buffer.from(await res.arrayBuffer());
    expectCleanError({ status: res.status, headers: res.headers, bytes, json: JSON.parse(bytes.toString('utf8')), ms: 0 }, 413, 'chunked over the limit');
  });

  it('SHOTFLEET_TOKEN: 401 without it; with Bearer or a token: header the node renders; /status and /livez stay open', async () => {
    const body = { url: `${site.url}/page` };
    expectCleanError(await shoot(node.url, body), 401, 'POST without token');
    expectCleanError(await request(`${node.url}/screenshot?${new URLSearchParams(body)}`), 401, 'GET without token');
    expectPng(await shoot(node.url, body, { headers: { authorization: `Bearer ${token}` } }));
    expectPng(await request(`${node.url}/screenshot?${new URLSearchParams(body)}`, { headers: { token } }));
    expect((await request(`${node.url}/status`)).status).toBe(200);
    expect((await request(`${node.url}/livez`)).status).toBe(200);
  });

  it('over a real socket a 413 says Connection: close, and the node closes the connection (after reading what the client sends, within bounds)', async () => {
    const { hostname, port } = new URL(node.url);
    const socket = net.connect({ host: hostname, port: Number(port) });
    let seen = '';
    socket.on('data', (d) => (seen += d.toString('latin1')));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    const length = 4 * maxBodyBytes;
    socket.write(
      `POST /screenshot HTTP/1.1\r\nHost: node\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`,
    );
    socket.write(Buffer.alloc(64 * 1024, 0x61));
    await closed;
    expect(seen).toMatch(/^HTTP\/1\.1 413 /);
    expect(seen).toMatch(/\r\nconnection: close\r\n/i);
    expect(seen).toContain('"payload_too_large"');
  });
});
