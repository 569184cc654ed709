import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tinyPng } from './images.js';

/**
 * A stand-in for a node's POST /screenshot, scripted by the page URL's first path segment:
 *   ok · shed-once (503 + Retry-After: 1, then ok) · shed-always · limited-once (429 rate_limited + Retry-After: 1,
 *   then ok) · reset-once (socket destroyed) ·
 *   502-once · 504-once · 502-always · bad-request (400) · torn-once (half an image, then the socket dies) ·
 *   slow (answers after 300 ms) · store (the JSON a node sends with store: true)
 * e.g. {"url":"http://page.test/shed-once/3"}. For the batch client (`shotfleet shoot`); a fleet member as
 * HAProxy and the hub see it is startFakeFleetNode in haproxy.ts.
 */
export interface ScriptedShotNode {
  url: string;
  /** Every request in arrival order. */
  requests: { pageUrl: string; body: Record<string, unknown>; authorization?: string; at: number }[];
  attempts(pageUrl: string): number;
  close(): Promise<void>;
}

const jpegBytes = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 0x4a, 0x46, 0x49, 0x46, 0, 1, 0xff, 0xd9]);

export async function startScriptedShotNode(): Promise<ScriptedShotNode> {
  const requests: ScriptedShotNode['requests'] = [];
  const attempts = (pageUrl: string) => requests.filter((r) => r.pageUrl === pageUrl).length;

  const server = http.createServer(async (req, res) => {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    const body = JSON.parse(raw) as Record<string, unknown>;
    const pageUrl = String(body.url);
    requests.push({ pageUrl, body, authorization: req.headers.authorization, at: Date.now() });
    const behaviour = new URL(pageUrl).pathname.split('/')[1];
    const first = attempts(pageUrl) === 1;
    const fail = (status: number, code: string, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify({ error: { code, message: `fake ${code}`, ...(status === 503 ? { details: { reason: 'queue_full' } } : {}) } }));
    };
    const image = () => {
      const jpeg = body.format === 'jpeg';
      res.writeHead(200, {
        'content-type': jpeg ? 'image/jpeg' : 'image/png',
        'x-shotfleet-node': 'fake-1',
        'server-timing': 'queue;dur=3, render;dur=42.5',
      });
      res.end(jpeg ? jpegBytes : tinyPng);
    };

    if (behaviour === 'shed-always' || (behaviour === 'shed-once' && first)) return fail(503, 'saturated', { 'retry-after': '1' });
    if (behaviour === 'limited-once' && first) return fail(429, 'rate_limited', { 'retry-after': '1' });
    if (behaviour === 'reset-once' && first) return req.socket.destroy();
    if (behaviour === '502-always' || (behaviour === '502-once' && first)) return fail(502, 'navigation_failed');
    if (behaviour === '504-once' && first) return fail(504, 'timeout');
    if (behaviour === 'bad-request') return fail(400, 'invalid_request');
    if (behaviour === 'torn-once' && first) {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': String(tinyPng.length) });
      res.write(tinyPng.subarray(0, 10));
      setTimeout(() => res.destroy(), 20);
      return;
    }
    if (behaviour === 'slow') await new Promise((r) => setTimeout(r, 300));
    if (behaviour === 'store') {
      res.writeHead(200, { 'content-type': 'application/json', 'server-timing': 'queue;dur=1, render;dur=2, upload;dur=3' });
      res.end(
        JSON.stringify({
          bucket: 'b',
          key: `shots/${pageUrl.split('/').pop()}.png`,
          url: `http://s3.test/b/${pageUrl.split('/').pop()}.png`,
          etag: '"e"',
          bytes: 123,
          format: 'png',
          width: 2,
          height: 2,
          timings: { queueMs: 1, renderMs: 2, uploadMs: 3 },
        }),
      );
      return;
    }
    image();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    attempts,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
