import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startShotfleet, waitForLog, type RunningProcess } from './helpers/processes.js';
import { shoot } from './helpers/node-client.js';
import { waitFor } from './helpers/wait.js';

/**
 * What a hostile client or page can do to the node's HTTP server and its logs. Node's own defaults keep a half-sent
 * request's socket for 60 s (headers) or 300 s (body) with no cap on connections, and a refused sub-resource URL
 * of any length would be logged whole.
 */

/** Resolves when the server closes the socket, with everything it sent; rejects after `boundMs`. */
function closedBy(socket: net.Socket, boundMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`the node kept the socket open for ${boundMs} ms; it sent: ${JSON.stringify(seen)}`)), boundMs);
    socket.on('data', (d) => (seen += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(seen);
    });
  });
}

function connect(url: string): Promise<net.Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname, port: Number(port) }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** GET on a new connection (no pooling), so each call is one more connection to the node. */
function getFresh(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

describe('request timeouts and logged URLs', () => {
  let node: RunningProcess;

  beforeAll(async () => {
    node = await startShotfleet('serve', { SHOTFLEET_PAGES: '1', SHOTFLEET_HEADERS_TIMEOUT_MS: '1000', SHOTFLEET_REQUEST_TIMEOUT_MS: '2000' });
  });
  afterAll(async () => {
    await node?.stop();
  });

  it('a client that never finishes its headers is cut off after SHOTFLEET_HEADERS_TIMEOUT_MS (Node would wait 60 s)', async () => {
    const socket = await connect(node.url);
    socket.write('GET /livez HTTP/1.1\r\nHost: node\r\nX-Slow: ');
    const sent = await closedBy(socket, 15_000);
    expect(sent).toMatch(/^HTTP\/1\.1 408/);
  });

  it('a client that trickles its body is cut off after SHOTFLEET_REQUEST_TIMEOUT_MS (Node would wait 300 s)', async () => {
    const socket = await connect(node.url);
    socket.write('POST /screenshot HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{');
    const trickle = setInterval(() => socket.writable && socket.write(' '), 300);
    try {
      const sent = await closedBy(socket, 20_000);
      expect(sent).toMatch(/^HTTP\/1\.1 408/);
    } finally {
      clearInterval(trickle);
    }
  });

  it('a refused sub-resource URL of 300 000 characters is logged cut to 200, with its length', async () => {
    const long = `http://127.0.0.1:9/${'a'.repeat(300_000)}`;
    const shot = await shoot(node.url, { html: `<img src="${long}">` });
    expect(shot.status).toBe(200);
    await waitForLog(node, 'sub-resource refused', (l) => l.msg === 'sub-resource refused by the URL policy');
    const lines = node.logs.filter((l) => l.msg === 'sub-resource refused by the URL policy');
    for (const line of lines) {
      expect(JSON.stringify(line).length).toBeLessThan(1000);
      expect(line.urlLength).toBe(long.length);
      expect(long.startsWith(String(line.url).replace(/…$/, ''))).toBe(true);
    }
  });
});

describe('connection cap', () => {
  let node: RunningProcess;

  beforeAll(async () => {
    node = await startShotfleet('serve', { SHOTFLEET_PAGES: '1', SHOTFLEET_MAX_CONNECTIONS: '3' });
  });
  afterAll(async () => {
    await node?.stop();
  });

  it('past SHOTFLEET_MAX_CONNECTIONS a new connection is closed at once; a freed one lets the next in', async () => {
    expect(await getFresh(`${node.url}/livez`)).toBe(200);
    const held = await Promise.all([connect(node.url), connect(node.url), connect(node.url)]);
    try {
      await expect(getFresh(`${node.url}/livez`)).rejects.toThrow(/socket hang up|ECONNRESET|EPIPE/);
      held[0].destroy();
      // The node counts the freed connection once it has seen it close.
      await waitFor('a free connection slot', async () => (await getFresh(`${node.url}/livez`).catch(() => 0)) === 200, 10_000);
    } finally {
      for (const socket of held) socket.destroy();
    }
  });
});
