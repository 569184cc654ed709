import http from 'node:http';
import type net from 'node:net';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { shoot as shootNode } from './helpers/node-client.js';
import { startShotfleet, type RunningProcess } from './helpers/processes.js';

/**
 * The URL policy end to end, through a real node. The node allows the name `localhost` (and one that never
 * resolves, for the last describe), so the test's server on 127.0.0.1 is reachable as http://localhost:PORT and
 * forbidden however else 127.0.0.1 (or anything private) is written. Every vector points at that one server, which
 * counts what reaches it under any other name.
 */

let origin: http.Server;
let port = 0;
/** Allowed by name too, and never resolves (`.invalid`): see the last describe. */
const unresolvable = 'no-such-host.invalid';
const hits: string[] = [];
let node: RunningProcess;

const blue = [0, 128, 255];
/** Keeps the page's images and frames in the top-left corner, so the bottom-right pixel shows the background. */
const small = '<style>img, iframe { width: 8px; height: 8px; border: 0 }</style>';

beforeAll(async () => {
  origin = http.createServer((req, res) => {
    hits.push(`${req.headers.host}${req.url}`);
    if (req.url === '/redirect') {
      res.writeHead(302, { location: `http://127.0.0.1:${port}/forbidden/redirect-target` });
      res.end();
      return;
    }
    if (req.url === '/with-forbidden-parts') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><body style="margin:0;background:rgb(${blue})">${small}
        <img src="http://127.0.0.1:${port}/forbidden/img.png">
        <iframe src="http://2130706433:${port}/forbidden/frame.html"></iframe>
        <script>fetch('http://[::ffff:127.0.0.1]:${port}/forbidden/fetch').catch(() => {})</script>
        <img src="http://localhost:${port}/allowed/img.png"></body>`);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!doctype html><body style="margin:0;background:rgb(${blue})"></body>`);
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  port = (origin.address() as net.AddressInfo).port;
  node = await startShotfleet('serve', {
    SHOTFLEET_PAGES: '1',
    SHOTFLEET_ALLOW_HOSTS: `localhost,${unresolvable}`,
    SHOTFLEET_DENY_HOSTS: 'denied.example',
    SHOTFLEET_TIMEOUT_MS: '20000',
  });
});

afterAll(async () => {
  await node?.stop();
  origin?.closeAllConnections();
  await new Promise((resolve) => origin?.close(resolve));
});

beforeEach(() => {
  hits.length = 0;
});

/** POST /screenshot to the node, at 200×100 unless the body says otherwise. */
function shoot(body: Record<string, unknown>) {
  return shootNode(node.url, { viewport: { width: 200, height: 100 }, ...body }, { timeoutMs: 60_000 });
}

function pixel(png: Buffer, x: number, y: number): number[] {
  const image = PNG.sync.read(png);
  const i = (image.width * y + x) * 4;
  return [image.data[i], image.data[i + 1], image.data[i + 2]];
}

const strangers = () => hits.filter((h) => !h.startsWith(`localhost:${port}/`) || h.includes('/forbidden/'));

describe('URL policy through a real node', () => {
  it('ALLOW_HOSTS lets the named host through: the page renders', async () => {
    const { status, bytes } = await shoot({ url: `http://localhost:${port}/page` });
    expect(status).toBe(200);
    expect(pixel(bytes, 100, 50)).toEqual(blue);
    expect(hits[0]).toBe(`localhost:${port}/page`);
    expect(strangers()).toEqual([]);
  });

  it.each([
    (p: number) => `http://127.0.0.1:${p}/`,
    (p: number) => `http://2130706433:${p}/`,
    (p: number) => `http://0177.0.0.1:${p}/`,
    (p: number) => `http://0x7f.1:${p}/`,
    (p: number) => `http://127.1:${p}/`,
    (p: number) => `http://[::ffff:127.0.0.1]:${p}/`,
    (p: number) => `http://[::ffff:7f00:1]:${p}/`,
    (p: number) => `http://[::1]:${p}/`,
    (p: number) => `http://0.0.0.0:${p}/`,
    (p: number) => `http://[::]:${p}/`,
    (p: number) => `http://sub.localhost:${p}/`,
    (p: number) => `HTTP://127.0.0.1:${p}/`,
    () => 'http://169.254.169.254/latest/meta-data/',
    () => 'http://[fd00:ec2::254]/',
    () => 'http://[fe80::1]/',
    () => 'http://10.0.0.1/',
    () => 'http://172.16.0.1/',
    () => 'http://192.168.0.1/',
    () => 'http://100.64.0.1/',
    () => 'http://224.0.0.1/',
    () => 'http://denied.example/',
  ])('403 url_forbidden for %s, and nothing reaches the server', async (url) => {
    const { status, json } = await shoot({ url: url(port) });
    expect(status).toBe(403);
    expect(json?.error?.code).toBe('url_forbidden');
    expect(strangers()).toEqual([]);
  });

  it.each(['file:///etc/passwd', 'FILE:///etc/passwd', 'javascript:alert(1)', 'data:text/html,<p>x</p>', 'ftp://localhost/', 'localhost/page'])(
    '400 invalid_request naming the field for %s',
    async (url) => {
      const { status, json } = await shoot({ url });
      expect(status).toBe(400);
      expect(json?.error?.code).toBe('invalid_request');
      expect(JSON.stringify(json?.error?.details)).toContain('url');
    },
  );

  it('400 for a file: URL through GET /screenshot too', async () => {
    const res = await fetch(`${node.url}/screenshot?url=${encodeURIComponent('file:///etc/passwd')}`);
    expect(res.status).toBe(400);
    expect((await res.json()).error.code).toBe('invalid_request');
  });

  it('403 for a redirect from the allowed host to a forbidden one', async () => {
    const { status, json } = await shoot({ url: `http://localhost:${port}/redirect` });
    expect(status).toBe(403);
    expect(json?.error?.code).toBe('url_forbidden');
    expect(hits.filter((h) => !h.endsWith('/favicon.ico'))).toEqual([`localhost:${port}/redirect`]);
  });

  it('renders a page while refusing its forbidden sub-resources (img, iframe, fetch)', async () => {
    const { status, bytes } = await shoot({ url: `http://localhost:${port}/with-forbidden-parts`, waitUntil: 'networkidle0' });
    expect(status).toBe(200);
    expect(pixel(bytes, 199, 99)).toEqual(blue);
    expect(hits).toContain(`localhost:${port}/allowed/img.png`);
    expect(strangers()).toEqual([]);
  });

  it('applies to html input: its forbidden sub-resources are not fetched, allowed ones are', async () => {
    const html = `<body style="margin:0;background:rgb(${blue})">${small}
      <img src="http://127.0.0.1:${port}/forbidden/html-img.png">
      <img src="http://localhost:${port}/allowed/html-img.png"></body>`;
    // 'load' waits for images, the only sub-resources here.
    const { status, bytes } = await shoot({ html });
    expect(status).toBe(200);
    expect(pixel(bytes, 199, 99)).toEqual(blue);
    expect(hits).toContain(`localhost:${port}/allowed/html-img.png`);
    expect(strangers()).toEqual([]);
  });
});

/**
 * A host the operator allows by name skips the address checks, but it must still resolve: a name that does not
 * is the client's 502 navigation_failed, never a 200 picture of the policy proxy's own error text — for the page
 * itself, over http and https, and for a redirect to it.
 */
describe('a host allowed by SHOTFLEET_ALLOW_HOSTS that does not resolve', () => {
  let redirecting: http.Server;
  let redirectingPort = 0;

  beforeAll(async () => {
    redirecting = http.createServer((_req, res) => {
      res.writeHead(302, { location: `http://${unresolvable}/after-redirect` }).end();
    });
    await new Promise<void>((resolve) => redirecting.listen(0, '127.0.0.1', resolve));
    redirectingPort = (redirecting.address() as net.AddressInfo).port;
  });

  afterAll(async () => {
    redirecting?.closeAllConnections();
    await new Promise((resolve) => redirecting?.close(resolve));
  });

  it.each([`http://${unresolvable}/`, `https://${unresolvable}/`])('%s is 502 navigation_failed saying the name does not resolve', async (url) => {
    const { status, json } = await shootNode(node.url, { url, viewport: { width: 200, height: 100 } }, { timeoutMs: 60_000 });
    expect(status).toBe(502);
    expect(json?.error?.code).toBe('navigation_failed');
    expect(json?.error?.message).toContain(`"${unresolvable}" does not resolve`);
  });

  it('a redirect to it is 502 navigation_failed saying the name does not resolve', async () => {
    const { status, json } = await shootNode(
      node.url,
      { url: `http://localhost:${redirectingPort}/start`, viewport: { width: 200, height: 100 } },
      { timeoutMs: 60_000 },
    );
    expect(status).toBe(502);
    expect(json?.error?.code).toBe('navigation_failed');
    expect(json?.error?.message).toContain(`"${unresolvable}" does not resolve`);
  });
});
