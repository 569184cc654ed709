import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { page, startTestSite, type TestSite } from './helpers/pages.js';
import { startShotfleet, type RunningProcess } from './helpers/processes.js';
import { ok, shoot, type Answer } from './helpers/node-client.js';
import { waitFor } from './helpers/wait.js';

/**
 * A page naming many hosts under a slow name server must stall only itself: dns.lookup would queue every lookup on
 * libuv's 4 threads with no timeout, so the policy resolves over c-ares with a bound. Here the node's resolver points at a
 * name server of the test's own on loopback: names under slow.test are never answered, fast.test is answered
 * at once with 127.0.0.1 (where the test's site listens).
 */

interface SlowDns {
  address: string;
  /** Distinct names asked under slow.test (never answered). */
  slowNames: Set<string>;
  fastQueries: number;
  close(): Promise<void>;
}

function questionName(msg: Buffer): { name: string; end: number } {
  const labels: string[] = [];
  let i = 12;
  while (msg[i] !== 0) {
    labels.push(msg.subarray(i + 1, i + 1 + msg[i]).toString('latin1'));
    i += msg[i] + 1;
  }
  return { name: labels.join('.').toLowerCase(), end: i + 5 };
}

async function startSlowDns(): Promise<SlowDns> {
  const socket = dgram.createSocket('udp4');
  const dns: SlowDns = { address: '', slowNames: new Set(), fastQueries: 0, close: () => new Promise((r) => socket.close(() => r())) };
  socket.on('message', (msg, from) => {
    const { name, end } = questionName(msg);
    const qtype = msg.readUInt16BE(end - 4);
    if (name.endsWith('slow.test')) {
      dns.slowNames.add(name);
      return;
    }
    if (name !== 'fast.test') return;
    dns.fastQueries++;
    // NOERROR with one A record (127.0.0.1) for A, none for AAAA.
    const answers = qtype === 1 ? 1 : 0;
    const header = Buffer.alloc(12);
    msg.copy(header, 0, 0, 2);
    header.writeUInt16BE(0x8180, 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers, 6);
    const question = msg.subarray(12, end);
    const record = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
    socket.send(Buffer.concat([header, question, ...(answers ? [record] : [])]), from.port, from.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  dns.address = `127.0.0.1:${(socket.address() as AddressInfo).port}`;
  return dns;
}

describe('a slow name server named by one page', () => {
  let dns: SlowDns;
  let site: TestSite;
  let node: RunningProcess;

  beforeAll(async () => {
    dns = await startSlowDns();
    site = await startTestSite({ '/page': page(`<p>fast</p><img src="/img.png">`), '/img.png': { body: Buffer.alloc(0), type: 'image/png' } });
    node = await startShotfleet('serve', {
      SHOTFLEET_PAGES: '2',
      SHOTFLEET_ALLOW_HOSTS: 'fast.test,*.slow.test',
      SHOTFLEET_DNS_SERVERS: dns.address,
      SHOTFLEET_DNS_TIMEOUT_MS: '30000',
      SHOTFLEET_DNS_LOOKUPS_PER_PAGE: '4',
    });
  });
  afterAll(async () => {
    await node?.stop();
    await site?.close();
    await dns?.close();
  });

  it("does not hold up another render's lookups, and gets at most 4 of its own lookups outstanding", async () => {
    const port = new URL(site.url).port;
    const images = Array.from({ length: 64 }, (_, i) => `<img src="http://h${i}.slow.test:${port}/x.png">`).join('');
    const leaving = new AbortController();
    let slowDone = false;
    const slow = fetch(`${node.url}/screenshot`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ html: page(images), timeout: 60_000 }),
      signal: leaving.signal,
    })
      .then((res) => res.arrayBuffer())
      .catch(() => undefined)
      .finally(() => (slowDone = true));
    try {
      await waitFor('the slow page asking the name server', () => dns.slowNames.size >= 4, 30_000);

      const fast: Answer = await shoot(node.url, { url: `http://fast.test:${port}/page` }, { timeoutMs: 25_000 });
      ok(fast);
      expect(dns.fastQueries).toBeGreaterThan(0);
      expect(site.hits('/img.png')).toBeGreaterThan(0);
      // The slow page is still waiting for its names (30 s each) while the other render came and went.
      expect(slowDone).toBe(false);
      expect(dns.slowNames.size).toBeLessThanOrEqual(4);
    } finally {
      leaving.abort();
      await slow;
    }
  });
});

describe('a lookup that is never answered', () => {
  let dns: SlowDns;
  let node: RunningProcess;

  beforeAll(async () => {
    dns = await startSlowDns();
    node = await startShotfleet('serve', {
      SHOTFLEET_PAGES: '1',
      SHOTFLEET_DNS_SERVERS: dns.address,
      SHOTFLEET_DNS_TIMEOUT_MS: '1000',
    });
  });
  afterAll(async () => {
    await node?.stop();
    await dns?.close();
  });

  it('fails after SHOTFLEET_DNS_TIMEOUT_MS with a 502 naming the timeout, well before the render deadline', async () => {
    const shot = await shoot(node.url, { url: 'http://never.slow.test/', timeout: 60_000 }, { timeoutMs: 50_000 });
    expect(dns.slowNames.has('never.slow.test')).toBe(true);
    expect(shot.status).toBe(502);
    expect(shot.json?.error?.code).toBe('navigation_failed');
    expect(shot.json?.error?.message).toMatch(/ETIMEOUT/);
  });
});
