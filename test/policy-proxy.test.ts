import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../src/log/logger.js';
import { startPolicyProxy, type PolicyProxy } from '../src/policy/proxy.js';
import { createUrlPolicy } from '../src/policy/url-policy.js';
import { tableResolver } from './helpers/fake-dns.js';

/**
 * The proxy against a real origin server on 127.0.0.1. Names resolve through an injected table, so a request that
 * works for `good.test` proves the proxy connected to the address it checked (the system resolver knows no such name).
 */

let origin: http.Server;
let port = 0;
const hits: string[] = [];
let connections = 0;
let abortedUpstream = 0;

let flips = 0;
const table: Record<string, () => string[]> = {
  'good.test': () => ['127.0.0.1'],
  'evil.test': () => ['127.0.0.1'],
  'half.test': () => ['93.184.215.14', '127.0.0.1'],
  // DNS rebinding: public for the page check, loopback when the connection is made.
  'flip.test': () => (flips++ === 0 ? ['93.184.215.14'] : ['127.0.0.1']),
};
const resolver = tableResolver(table);
const policy = createUrlPolicy({ allowPrivate: false, allowHosts: ['good.test'], denyHosts: [] }, resolver);
let proxy: PolicyProxy;
let proxyPort = 0;

beforeAll(async () => {
  origin = http.createServer((req, res) => {
    hits.push(`${req.headers.host}${req.url}`);
    if (req.url === '/echo') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'set-cookie': ['a=1', 'b=2'] });
      req.pipe(res);
      return;
    }
    if (req.url === '/slow') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first chunk\n');
      res.on('close', () => {
        if (!res.writableFinished) abortedUpstream++;
      });
      return; // never ends unless the connection closes
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'x-origin': 'yes' });
    res.end(`hello from ${req.headers.host}${req.url}`);
  });
  origin.on('connection', () => connections++);
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  port = (origin.address() as net.AddressInfo).port;
  proxy = await startPolicyProxy(policy, createLogger('silent'));
  proxyPort = Number(new URL(proxy.proxyServer).port);
});

afterAll(async () => {
  await proxy?.close();
  origin?.closeAllConnections();
  await new Promise((resolve) => origin?.close(resolve));
});

beforeEach(() => {
  hits.length = 0;
  proxy.takeRefusals();
});

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function viaProxy(url: string, opts: { method?: string; body?: string; agent?: http.Agent } = {}): Promise<Answer> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: proxyPort, method: opts.method ?? 'GET', path: url, headers: { host: target.host }, agent: opts.agent },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Sends CONNECT and resolves with the proxy's status line and the socket (open only on 200). */
function connect(authority: string): Promise<{ head: string; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(proxyPort, '127.0.0.1');
    socket.on('error', reject);
    socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
    let head = '';
    const onData = (d: Buffer) => {
      head += d.toString('latin1');
      if (head.includes('\r\n\r\n')) {
        socket.off('data', onData);
        resolve({ head, socket });
      }
    };
    socket.on('data', onData);
    socket.on('end', () => resolve({ head, socket }));
  });
}

function readUntilClosed(socket: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    socket.on('data', (d) => (text += d.toString('latin1')));
    socket.on('close', () => resolve(text));
  });
}

describe('plain HTTP through the proxy', () => {
  it('forwards an allowed host to the address it checked, headers and status intact', async () => {
    const answer = await viaProxy(`http://good.test:${port}/page?q=1`);
    expect(answer.status).toBe(200);
    expect(answer.body).toBe(`hello from good.test:${port}/page?q=1`);
    expect(answer.headers['x-origin']).toBe('yes');
    expect(answer.headers['x-shotfleet-refused']).toBeUndefined();
    expect(proxy.takeRefusals()).toEqual([]);
  });

  it('streams request and response bodies, keeping repeated headers', async () => {
    const body = 'x'.repeat(300_000);
    const answer = await viaProxy(`http://good.test:${port}/echo`, { method: 'POST', body });
    expect(answer.status).toBe(200);
    expect(answer.body.length).toBe(body.length);
    expect(answer.headers['set-cookie']).toEqual(['a=1', 'b=2']);
  });

  it.each([
    ['a loopback literal', (p: number) => `http://127.0.0.1:${p}/`, '127.0.0.1'],
    ['a decimal IPv4', (p: number) => `http://2130706433:${p}/`, '127.0.0.1'],
    ['an IPv4-mapped IPv6', (p: number) => `http://[::ffff:127.0.0.1]:${p}/`, '[::ffff:7f00:1]'],
    ['localhost', (p: number) => `http://localhost:${p}/`, 'localhost'],
    ['a name resolving to loopback', (p: number) => `http://evil.test:${p}/`, 'evil.test'],
    ['a name with one loopback address among public ones', (p: number) => `http://half.test:${p}/`, 'half.test'],
  ])('refuses %s with 403 and the refusal header, without touching the origin', async (_what, url, host) => {
    const answer = await viaProxy(url(port));
    expect(answer.status).toBe(403);
    expect(answer.headers['x-shotfleet-refused']).toBe('1');
    expect(hits).toEqual([]);
    expect(proxy.takeRefusals()).toEqual([host]);
    expect(proxy.takeRefusals()).toEqual([]);
  });

  it('resolves again itself: a name that rebinds to loopback after the page check is refused at connect time', async () => {
    await expect(policy.checkPageUrl(`http://flip.test:${port}/`, 'url')).resolves.toBeInstanceOf(URL);
    const answer = await viaProxy(`http://flip.test:${port}/`);
    expect(answer.status).toBe(403);
    expect(hits).toEqual([]);
    expect(proxy.takeRefusals()).toEqual(['flip.test']);
  });

  it('answers 502, not a refusal, when a name does not resolve or the origin is down', async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const deadPort = (closed.address() as net.AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));

    expect((await viaProxy(`http://nowhere.test:${port}/`)).status).toBe(502);
    expect((await viaProxy(`http://good.test:${deadPort}/`)).status).toBe(502);
    expect(proxy.takeRefusals()).toEqual([]);
  });

  it('keeps upstream connections alive between requests', async () => {
    const before = connections;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 3; i++) expect((await viaProxy(`http://good.test:${port}/k${i}`, { agent })).status).toBe(200);
    } finally {
      agent.destroy();
    }
    // One new connection at most (an earlier test may have left one in the pool), never one per request.
    expect(connections - before).toBeLessThanOrEqual(1);
  });

  it('tears the upstream request down when the client goes away mid-response', async () => {
    const before = abortedUpstream;
    await new Promise<void>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: proxyPort, path: `http://good.test:${port}/slow`, headers: { host: `good.test:${port}` } }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => undefined);
      req.setTimeout(10_000, () => reject(new Error('no first chunk')));
      req.end();
    });
    for (let i = 0; i < 100 && abortedUpstream === before; i++) await new Promise((r) => setTimeout(r, 50));
    expect(abortedUpstream).toBe(before + 1);
  });

  it('answers 400 to a request that is not addressed to a proxy', async () => {
    const answer = await new Promise<number>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: proxyPort, path: '/' }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        })
        .on('error', reject);
    });
    expect(answer).toBe(400);
  });
});

describe('CONNECT tunnels (https, WebSockets)', () => {
  it('opens a tunnel to an allowed host and carries bytes both ways', async () => {
    const { head, socket } = await connect(`good.test:${port}`);
    expect(head.startsWith('HTTP/1.1 200')).toBe(true);
    const reply = readUntilClosed(socket);
    socket.write(`GET /tunnelled HTTP/1.1\r\nHost: good.test:${port}\r\nConnection: close\r\n\r\n`);
    expect(await reply).toContain(`hello from good.test:${port}/tunnelled`);
  });

  it.each([`127.0.0.1`, `2130706433`, `[::ffff:127.0.0.1]`, `evil.test`, `localhost`])('refuses %s with 403 and opens no tunnel', async (host) => {
    const before = connections;
    const { head, socket } = await connect(`${host}:${port}`);
    expect(head.startsWith('HTTP/1.1 403')).toBe(true);
    expect(head).toContain('X-Shotfleet-Refused: 1');
    await new Promise<void>((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));
    expect(connections).toBe(before);
    expect(proxy.takeRefusals()).toHaveLength(1);
  });

  it('answers 400 to a malformed CONNECT target', async () => {
    const { head, socket } = await connect('good.test');
    socket.destroy();
    expect(head.startsWith('HTTP/1.1 400')).toBe(true);
  });
});

describe('close', () => {
  it('ends open tunnels and stops listening', async () => {
    const own = await startPolicyProxy(policy, createLogger('silent'));
    const ownPort = Number(new URL(own.proxyServer).port);
    const socket = net.connect(ownPort, '127.0.0.1');
    socket.write(`CONNECT good.test:${port} HTTP/1.1\r\nHost: good.test:${port}\r\n\r\n`);
    await new Promise((resolve) => socket.once('data', resolve));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    await own.close();
    await closed;
    const refused = await new Promise<string>((resolve) => {
      net
        .connect(ownPort, '127.0.0.1')
        .on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? ''))
        .on('connect', () => resolve('connected'));
    });
    expect(refused).toBe('ECONNREFUSED');
  });
});
