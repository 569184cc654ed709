import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';
import puppeteer, { type Browser, type BrowserContext } from 'puppeteer-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../src/log/logger.js';
import { policyBrowserArgs, sandboxArgs } from '../src/policy/browser-args.js';
import { startPolicyProxy, type PolicyProxy } from '../src/policy/proxy.js';
import { createUrlPolicy } from '../src/policy/url-policy.js';
import { chromeArgs } from '../src/render-pool/launch.js';
import { tableResolver } from './helpers/fake-dns.js';

/**
 * Real Chromium whose incognito context goes through the policy proxy. Every server the page could reach is the
 * test's own on loopback, and counts what arrives: a forbidden request that got through would show up there.
 * `good.test` is allowed by name and resolves (through the injected resolver) to 127.0.0.1, so 127.0.0.1 written
 * any other way is forbidden.
 */

const hits: string[] = [];
const v6Hits: string[] = [];
const upgrades: string[] = [];
let allowedSinkConnections = 0;
let forbiddenSinkConnections = 0;

let origin: http.Server;
let origin6: http.Server | undefined;
let stun: dgram.Socket;
let stunPackets = 0;
let allowedSink: net.Server;
let forbiddenSink: net.Server;
let port = 0;
let port6 = 0;
let allowedSinkPort = 0;
let forbiddenSinkPort = 0;

let flips = 0;
const table: Record<string, () => string[]> = {
  'good.test': () => ['127.0.0.1'],
  'evil.test': () => ['127.0.0.1'],
  'flip.test': () => (flips++ === 0 ? ['93.184.215.14'] : ['127.0.0.1']),
};
const resolver = tableResolver(table);
const policy = createUrlPolicy({ allowPrivate: false, allowHosts: ['good.test'], denyHosts: [] }, resolver);

let proxy: PolicyProxy;
let browser: Browser;
let context: BrowserContext;

function forbiddenMarkup(): string {
  const f = (host: string, name: string, p = port) => `http://${host}:${p}/forbidden/${name}`;
  return `
    <img src="${f('127.0.0.1', 'literal.png')}">
    <img src="${f('2130706433', 'decimal.png')}">
    <img src="${f('0177.0.0.1', 'octal.png')}">
    <img src="${f('0x7f.1', 'hex.png')}">
    <img src="${f('[::ffff:127.0.0.1]', 'mapped.png')}">
    <img src="${f('[::1]', 'v6.png', port6)}">
    <img src="${f('localhost', 'localhost.png')}">
    <img src="${f('sub.localhost', 'sub-localhost.png')}">
    <img src="${f('0.0.0.0', 'zero.png')}">
    <img src="${f('evil.test', 'dns.png')}">
    <iframe src="${f('127.0.0.1', 'frame.html')}"></iframe>
    <link rel="stylesheet" href="${f('127.0.0.1', 'style.css')}">
    <script>
      fetch('${f('127.0.0.1', 'fetch')}').catch(() => {});
      fetch('https://127.0.0.1:${forbiddenSinkPort}/').catch(() => {});
      fetch('https://evil.test:${forbiddenSinkPort}/').catch(() => {});
      try { new WebSocket('ws://127.0.0.1:${port}/forbidden/ws'); } catch {}
    </script>`;
}

function allowedMarkup(): string {
  return `
    <img src="http://good.test:${port}/allowed/img.png">
    <script>
      fetch('https://good.test:${allowedSinkPort}/').catch(() => {});
      try { new WebSocket('ws://good.test:${port}/allowed/ws'); } catch {}
    </script>`;
}

beforeAll(async () => {
  const handler = (record: string[]) => (req: http.IncomingMessage, res: http.ServerResponse) => {
    record.push(`${req.headers.host}${req.url}`);
    if (req.url === '/page.html') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><body>${forbiddenMarkup()}${allowedMarkup()}</body>`);
    } else if (req.url === '/redirect') {
      res.writeHead(302, { location: `http://127.0.0.1:${port}/forbidden/redirect-target` });
      res.end();
    } else if (req.url === '/ok') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>ok</title>');
    } else {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('served');
    }
  };
  origin = http.createServer(handler(hits));
  origin.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
    upgrades.push(`${req.headers.host}${req.url}`);
    socket.destroy();
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  port = (origin.address() as net.AddressInfo).port;

  // [::1] gets a listener of its own so that a leak to IPv6 loopback would be counted too.
  origin6 = http.createServer(handler(v6Hits));
  await new Promise<void>((resolve, reject) => origin6!.once('error', reject).listen(0, '::1', resolve));
  port6 = (origin6.address() as net.AddressInfo).port;

  allowedSink = net.createServer((s) => {
    allowedSinkConnections++;
    s.destroy();
  });
  forbiddenSink = net.createServer((s) => {
    forbiddenSinkConnections++;
    s.destroy();
  });
  await new Promise<void>((resolve) => allowedSink.listen(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => forbiddenSink.listen(0, '127.0.0.1', resolve));
  allowedSinkPort = (allowedSink.address() as net.AddressInfo).port;
  forbiddenSinkPort = (forbiddenSink.address() as net.AddressInfo).port;

  stun = dgram.createSocket('udp4');
  stun.on('message', () => stunPackets++);
  await new Promise<void>((resolve) => stun.bind(0, '127.0.0.1', resolve));

  proxy = await startPolicyProxy(policy, createLogger('silent'));
  browser = await puppeteer.launch({
    executablePath: '/usr/lib/chromium/chromium',
    headless: true,
    pipe: true,
    // The tests run as root, where Chromium's sandbox cannot run (the node decides this in sandbox.ts).
    args: [...chromeArgs, ...sandboxArgs(false), ...policyBrowserArgs],
  });
  context = await browser.createBrowserContext({ proxyServer: proxy.proxyServer, proxyBypassList: ['<-loopback>'] });
});

afterAll(async () => {
  await browser?.close();
  await proxy?.close();
  for (const server of [origin, origin6]) {
    if (!server) continue;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  for (const server of [allowedSink, forbiddenSink]) await new Promise((resolve) => server?.close(resolve));
  stun?.close();
});

beforeEach(() => {
  hits.length = 0;
  v6Hits.length = 0;
  upgrades.length = 0;
  proxy.takeRefusals();
});

async function waitFor(condition: () => boolean, what: string) {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((r) => setTimeout(r, 50));
  if (!condition()) throw new Error(`timed out waiting for ${what}`);
}

describe('Chromium through the policy proxy', () => {
  it('fetches allowed sub-resources and none of the forbidden ones, however the host is written', async () => {
    const page = await context.newPage();
    try {
      const response = await page.goto(`http://good.test:${port}/page.html`, { waitUntil: 'networkidle0', timeout: 20_000 });
      expect(response?.status()).toBe(200);
      // The allowed requests prove the page ran to its end (they come after the forbidden ones in its markup).
      await waitFor(() => hits.includes(`good.test:${port}/allowed/img.png`), 'the allowed image');
      await waitFor(() => upgrades.includes(`good.test:${port}/allowed/ws`), 'the allowed WebSocket');
      await waitFor(() => allowedSinkConnections > 0, 'the allowed https tunnel');
    } finally {
      await page.close();
    }
    expect(hits.filter((h) => h.includes('/forbidden/'))).toEqual([]);
    expect(v6Hits).toEqual([]);
    expect(upgrades.filter((u) => u.includes('/forbidden/'))).toEqual([]);
    expect(forbiddenSinkConnections).toBe(0);

    const refused = proxy.takeRefusals();
    for (const host of ['127.0.0.1', '[::ffff:7f00:1]', '[::1]', 'localhost', 'sub.localhost', '0.0.0.0', 'evil.test']) expect(refused).toContain(host);
  });

  it('refuses a redirect from an allowed host to a forbidden one, and reports it', async () => {
    const page = await context.newPage();
    try {
      const response = await page.goto(`http://good.test:${port}/redirect`, { timeout: 20_000 });
      expect(response?.status()).toBe(403);
      expect(response?.headers()['x-shotfleet-refused']).toBe('1');
      expect(response?.url()).toBe(`http://127.0.0.1:${port}/forbidden/redirect-target`);
    } finally {
      await page.close();
    }
    expect(hits).toEqual([`good.test:${port}/redirect`]);
    expect(proxy.takeRefusals()).toEqual(['127.0.0.1']);
  });

  it('refuses at connect time a name whose resolution is private, over http and https', async () => {
    const page = await context.newPage();
    try {
      const plain = await page.goto(`http://evil.test:${port}/forbidden/page`, { timeout: 20_000 });
      expect(plain?.headers()['x-shotfleet-refused']).toBe('1');
      await expect(page.goto(`https://evil.test:${forbiddenSinkPort}/`, { timeout: 20_000 })).rejects.toThrow(/ERR_TUNNEL_CONNECTION_FAILED/);
    } finally {
      await page.close();
    }
    expect(hits).toEqual([]);
    expect(forbiddenSinkConnections).toBe(0);
    // The previous test's page, closed on 127.0.0.1's refusal page, can have one more request (seen once, late)
    // reach the proxy during this test: only this test's own host is judged here.
    expect(proxy.takeRefusals().filter((host) => host !== '127.0.0.1')).toEqual(['evil.test']);
  });

  it('refuses a name that passed the page check and rebinds to loopback before Chromium connects', async () => {
    await expect(policy.checkPageUrl(`http://flip.test:${port}/ok`, 'url')).resolves.toBeInstanceOf(URL);
    const page = await context.newPage();
    try {
      const response = await page.goto(`http://flip.test:${port}/ok`, { timeout: 20_000 });
      expect(response?.status()).toBe(403);
      expect(response?.headers()['x-shotfleet-refused']).toBe('1');
    } finally {
      await page.close();
    }
    expect(hits).toEqual([]);
    expect(proxy.takeRefusals()).toEqual(['flip.test']);
  });

  it('applies to markup set directly (the html input), iframes included', async () => {
    const page = await context.newPage();
    try {
      await page.setContent(`<!doctype html><body>${forbiddenMarkup()}${allowedMarkup()}</body>`, { waitUntil: 'networkidle0', timeout: 20_000 });
      await waitFor(() => hits.includes(`good.test:${port}/allowed/img.png`), 'the allowed image');
    } finally {
      await page.close();
    }
    expect(hits.filter((h) => h.includes('/forbidden/'))).toEqual([]);
    expect(v6Hits).toEqual([]);
    expect(proxy.takeRefusals()).toContain('127.0.0.1');
  });

  it('keeps WebRTC from sending UDP around the proxy (STUN/TURN to a loopback address)', async () => {
    const page = await context.newPage();
    try {
      await page.goto(`http://good.test:${port}/ok`, { timeout: 20_000 });
      const stunPort = stun.address().port;
      const gathered = await page.evaluate(async (p) => {
        const pc = new RTCPeerConnection({
          iceServers: [{ urls: `stun:127.0.0.1:${p}` }, { urls: `turn:127.0.0.1:${p}?transport=udp`, username: 'u', credential: 'c' }],
        });
        pc.createDataChannel('probe');
        await pc.setLocalDescription(await pc.createOffer());
        await new Promise<void>((resolve) => {
          pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve();
          setTimeout(resolve, 3000);
        });
        pc.close();
        return true;
      }, stunPort);
      expect(gathered).toBe(true);
    } finally {
      await page.close();
    }
    expect(stunPackets).toBe(0);
  });
});
