import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { run as signCommand } from '../src/cli/sign-command.js';
import { ConfigError, loadConfig } from '../src/config/load.js';
import { createKeyLimits } from '../src/keys/key-limits.js';
import { createKeyRegistry } from '../src/keys/key-registry.js';
import { noKeyName } from '../src/keys/key-set.js';
import { parseKeysFile } from '../src/keys/keys-file.js';
import { signLink } from '../src/signing/signature.js';
import { inProcessNode } from './helpers/in-process-node.js';
import { expectPng, keyRequestCounts as keyRequests, metricValues } from './helpers/node-client.js';

/**
 * API keys in process: the keys file, which tokens are accepted, per-key limits (429), signed links per key and the
 * per-key metrics, through the node's real HTTP app with a stub render. Reloading on SIGHUP and fair shares on real
 * Chromium are in keys-node.test.ts.
 */

const webToken = 'web-token-0123456789';
const batchToken = 'batch-token-9876543210';
const hashedToken = 'hashed-token-abcdef';
const sha256Hex = (text: string) => createHash('sha256').update(text).digest('hex');
const page = 'http://127.0.0.1:9/page';
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

function keysFile(keys: unknown[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shotfleet-keys-'));
  const file = path.join(dir, 'keys.json');
  fs.writeFileSync(file, JSON.stringify({ keys }));
  return file;
}

const standardKeys = [
  { name: 'web', token: webToken, weight: 2 },
  { name: 'batch', token: batchToken, maxConcurrent: 1 },
  { name: 'hashed', tokenSha256: sha256Hex(hashedToken), ratePerMinute: 2 },
];

function registryOf(keys: unknown[], defaultToken?: string) {
  const file = keysFile(keys);
  const parsed = parseKeysFile(fs.readFileSync(file, 'utf8'));
  if (!parsed.ok) throw new Error(parsed.problem);
  return { file, registry: createKeyRegistry({ file, initial: parsed.keys, defaultToken }) };
}

function promtool(text: string): string {
  const run = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  if (run.error) throw new Error(`promtool could not run (${run.error.message}); install it with: apt-get install -y prometheus`);
  return `${run.stdout}${run.stderr}`;
}

describe('the keys file', () => {
  it('takes tokens in clear or as SHA-256, with optional weight and limits', () => {
    const parsed = parseKeysFile(JSON.stringify({ keys: standardKeys }));
    expect(parsed).toMatchObject({
      ok: true,
      keys: [
        { name: 'web', weight: 2 },
        { name: 'batch', weight: 1, maxConcurrent: 1 },
        { name: 'hashed', weight: 1, ratePerMinute: 2 },
      ],
    });
  });

  it.each([
    ['not JSON', '{"keys":[', /not valid JSON/],
    ['a bad name', JSON.stringify({ keys: [{ name: 'Web Team', token: 'secret-value-1' }] }), /keys\[0\]\.name: a name is 1 to 32/],
    [
      'a repeated name',
      JSON.stringify({
        keys: [
          { name: 'a', token: 'secret-value-1' },
          { name: 'a', token: 'secret-value-2' },
        ],
      }),
      /keys\[1\]\.name: "a" is used/,
    ],
    [
      'token and tokenSha256',
      JSON.stringify({ keys: [{ name: 'a', token: 'secret-value-1', tokenSha256: sha256Hex('x') }] }),
      /exactly one of token and tokenSha256/,
    ],
    ['no token', JSON.stringify({ keys: [{ name: 'a' }] }), /exactly one of token and tokenSha256/],
    ['a short digest', JSON.stringify({ keys: [{ name: 'a', tokenSha256: 'abc' }] }), /keys\[0\]\.tokenSha256: expected the 64 hex digits/],
    ['an unknown field', JSON.stringify({ keys: [{ name: 'a', token: 'secret-value-1', rate: 5 }] }), /keys\[0\]/],
    ['a zero weight', JSON.stringify({ keys: [{ name: 'a', token: 'secret-value-1', weight: 0 }] }), /keys\[0\]\.weight: must be above 0/],
  ])('refuses %s, naming the place and no token', (_name, text, problem) => {
    const parsed = parseKeysFile(text);
    expect(parsed.ok).toBe(false);
    const message = (parsed as { problem: string }).problem;
    expect(message).toMatch(problem);
    expect(message).not.toMatch(/secret-value/);
  });

  it('a bad file, or a key named default beside SHOTFLEET_TOKEN, stops the start naming SHOTFLEET_KEYS_FILE', () => {
    const base = { SHOTFLEET_CHROME_PATH: '/bin/sh' };
    const bad = keysFile([{ name: 'UPPER', token: 'secret-value-1' }]);
    expect(() => loadConfig('serve', {}, { ...base, SHOTFLEET_KEYS_FILE: bad })).toThrow(ConfigError);
    expect(() => loadConfig('serve', {}, { ...base, SHOTFLEET_KEYS_FILE: bad })).toThrow(/SHOTFLEET_KEYS_FILE \(--keys-file\): keys\[0\]\.name/);
    const clash = keysFile([{ name: 'default', token: 'secret-value-1' }]);
    expect(() => loadConfig('serve', {}, { ...base, SHOTFLEET_KEYS_FILE: clash, SHOTFLEET_TOKEN: 't' })).toThrow(/"default" is SHOTFLEET_TOKEN's key/);
    const good = keysFile(standardKeys);
    expect(loadConfig('serve', {}, { ...base, SHOTFLEET_KEYS_FILE: good }).KEYS?.map((k) => k.name)).toEqual(['web', 'batch', 'hashed']);
  });
});

describe('keys at the HTTP surface (in process)', () => {
  it("accepts each key's token (in clear, as SHA-256, SHOTFLEET_TOKEN as default) and refuses others with 401", async () => {
    const { registry } = registryOf(standardKeys, 'the-default-token');
    const node = inProcessNode({ keys: registry });
    for (const token of [webToken, batchToken, hashedToken, 'the-default-token']) expectPng(await node.shoot({ url: page }, bearer(token)));
    expect(node.renders.map((r) => r.client?.name)).toEqual(['web', 'batch', 'hashed', 'default']);
    expect(node.renders[0].client).toMatchObject({ weight: 2 });
    expect((await node.shoot({ url: page }, { token: webToken })).status).toBe(200);
    for (const headers of [{}, bearer('wrong'), bearer(sha256Hex(hashedToken)), { token: `${webToken}x` }]) {
      const answer = await node.shoot({ url: page }, headers);
      expect(answer.status).toBe(401);
      expect(answer.json?.error).toMatchObject({ code: 'unauthorized' });
    }
    expect((await node.request('/status')).status).toBe(200);
  });

  it('an open node (no token, no keys) takes requests without a key, as one implicit key', async () => {
    const node = inProcessNode();
    expectPng(await node.shoot({ url: page }));
    expect(node.renders[0].client).toBeUndefined();
    expect(keyRequests(await node.metricsText())).toEqual({ [`${noKeyName} 200`]: 1 });
  });

  it('a key over its maxConcurrent gets 429 rate_limited with Retry-After; its next request passes once one is answered', async () => {
    const { registry } = registryOf(standardKeys);
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const node = inProcessNode({
      keys: registry,
      screenshot: async (req) => {
        if (req.options.url?.endsWith('/hold')) await held;
        return (await import('./helpers/in-process-node.js')).imageResult();
      },
    });
    const first = node.shoot({ url: `${page}/hold` }, bearer(batchToken));
    await new Promise((resolve) => setImmediate(resolve));
    const refused = await node.shoot({ url: page }, bearer(batchToken));
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
    expect(refused.json?.error).toMatchObject({ code: 'rate_limited', details: { limit: 'maxConcurrent', key: 'batch' } });
    // Another key is not held by batch's limit.
    expectPng(await node.shoot({ url: page }, bearer(webToken)));
    release();
    expectPng(await first);
    expectPng(await node.shoot({ url: page }, bearer(batchToken)));
    expect(node.renders.filter((r) => r.client?.name === 'batch')).toHaveLength(2);
  });

  it('a key over its ratePerMinute gets 429 with the whole seconds until its next turn', async () => {
    const { registry } = registryOf(standardKeys);
    let now = 1_000_000;
    const node = inProcessNode({ keys: registry, now: () => now });
    expectPng(await node.shoot({ url: page }, bearer(hashedToken)));
    expectPng(await node.shoot({ url: page }, bearer(hashedToken)));
    const refused = await node.shoot({ url: page }, bearer(hashedToken));
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('30'); // 2 a minute: one every 30 s
    expect(refused.json?.error).toMatchObject({ code: 'rate_limited', details: { limit: 'ratePerMinute', key: 'hashed', retryAfterSeconds: 30 } });
    now += 10_000;
    expect((await node.shoot({ url: page }, bearer(hashedToken))).headers.get('retry-after')).toBe('20');
    now += 20_000;
    expectPng(await node.shoot({ url: page }, bearer(hashedToken)));
    expect(node.renders).toHaveLength(3);
  });

  it('signed links of a key carry kid and its token signs them; removing the key revokes them; SHOTFLEET_SIGNING_KEY links still work', async () => {
    const { file, registry } = registryOf(standardKeys);
    const node = inProcessNode({ keys: registry, signingKey: 'node-signing-key' });
    const expires = Math.floor(Date.now() / 1000) + 600;
    const link = (kid: string | undefined, key: string) => {
      const url = new URL(`http://node/screenshot?url=${encodeURIComponent(page)}&width=300`);
      if (kid) url.searchParams.set('kid', kid);
      const signed = signLink(url, key, expires);
      return `${signed.pathname}${signed.search}`;
    };
    expectPng(await node.request(link('web', webToken)));
    expect(node.renders.at(-1)?.client?.name).toBe('web');
    expectPng(await node.request(link(undefined, 'node-signing-key')));
    expect(node.renders.at(-1)?.client).toBeUndefined();
    expect((await node.request(link('web', batchToken))).status).toBe(401);
    expect((await node.request(link('nobody', webToken))).json?.error).toMatchObject({ code: 'unauthorized', message: expect.stringContaining('revoked') });
    // A key stored as a digest cannot check an HMAC: its links are refused, saying why.
    expect((await node.request(link('hashed', hashedToken))).json?.error).toMatchObject({ message: expect.stringContaining('tokenSha256') });

    fs.writeFileSync(file, JSON.stringify({ keys: standardKeys.filter((k) => k.name !== 'web') }));
    expect(registry.reload()).toEqual({ ok: true, names: ['batch', 'hashed'] });
    const revoked = await node.request(link('web', webToken));
    expect(revoked.status).toBe(401);
    expect((await node.shoot({ url: page }, bearer(webToken))).status).toBe(401);
    expectPng(await node.shoot({ url: page }, bearer(batchToken)));
  });

  it("shotfleet sign --kid NAME signs with the key's token from SHOTFLEET_SIGNING_KEY; the node serves the link as that key", async () => {
    const { registry } = registryOf(standardKeys);
    const node = inProcessNode({ keys: registry });
    const printed: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((line: string) => void printed.push(line));
    const complaints: string[] = [];
    const error = vi.spyOn(console, 'error').mockImplementation((line: string) => void complaints.push(line));
    try {
      const link = `http://node/screenshot?url=${encodeURIComponent(page)}&width=300`;
      expect(await signCommand([link, '--kid', 'web'], { SHOTFLEET_SIGNING_KEY: webToken })).toBe(0);
      expect(await signCommand([link, '--kid', 'Not A Key'], { SHOTFLEET_SIGNING_KEY: webToken })).toBe(2);
    } finally {
      log.mockRestore();
      error.mockRestore();
    }
    expect(complaints).toEqual([expect.stringContaining('--kid "Not A Key" is not a key name')]);
    const signed = new URL(printed[0]);
    expect(signed.searchParams.get('kid')).toBe('web');
    expectPng(await node.request(`${signed.pathname}${signed.search}`));
    expect(node.renders.at(-1)?.client?.name).toBe('web');
  });

  it('a reload that finds a bad file keeps the keys before it', () => {
    const { file, registry } = registryOf(standardKeys);
    fs.writeFileSync(file, '{"keys":[{"name":"web","token":"x"},{"name":"web","token":"y"}]}');
    expect(registry.reload()).toEqual({ ok: false, problem: 'keys[1].name: "web" is used by an earlier key' });
    expect(registry.current().identify(webToken)?.name).toBe('web');
    fs.rmSync(file);
    expect(registry.reload()).toMatchObject({ ok: false, problem: expect.stringContaining('ENOENT') });
    expect(registry.current().names).toEqual(['web', 'batch', 'hashed']);
  });

  it('counts requests per key and status, and pages in use per key, in metrics that pass promtool check metrics', async () => {
    const { registry } = registryOf(standardKeys);
    const node = inProcessNode({ keys: registry });
    node.metrics.bindKeyPages(() => [
      ['web', 1],
      ['batch', 0],
      [noKeyName, 0],
    ]);
    await node.shoot({ url: page }, bearer(webToken));
    await node.shoot({ url: page }, bearer(webToken));
    await node.shoot({ url: page }, bearer('wrong'));
    await node.shoot({ url: page, format: 'gif' }, bearer(batchToken));
    const text = await node.metricsText();
    expect(keyRequests(text)).toEqual({ 'web 200': 2, [`${noKeyName} 401`]: 1, 'batch 400': 1 });
    expect(metricValues(text, 'shotfleet_key_pages_in_use', 'key')).toEqual({ web: 1, batch: 0, [noKeyName]: 0 });
    expect(promtool(text)).toBe('');
  });
});

describe('key limits', () => {
  it("allow a minute's worth of ratePerMinute at once, then the rate; a release frees a maxConcurrent turn once", () => {
    let now = 0;
    const limits = createKeyLimits({ now: () => now, busyRetryAfterSeconds: () => 7 });
    const key = { name: 'k', weight: 1, ratePerMinute: 3, maxConcurrent: 2 };
    const a = limits.take(key);
    const b = limits.take(key);
    expect(limits.take(key)).toEqual({ ok: false, limit: 'maxConcurrent', retryAfterSeconds: 7 });
    if (!a.ok || !b.ok) throw new Error('expected two turns');
    a.release();
    a.release();
    const c = limits.take(key);
    expect(c.ok).toBe(true);
    if (c.ok) c.release();
    b.release();
    expect(limits.take(key)).toEqual({ ok: false, limit: 'ratePerMinute', retryAfterSeconds: 20 });
    now += 20_000;
    expect(limits.take(key).ok).toBe(true);
  });

  it('give a key allowed less than one request a minute its request once enough time has passed', () => {
    let now = 0;
    const limits = createKeyLimits({ now: () => now, busyRetryAfterSeconds: () => 7 });
    const key = { name: 'slow', weight: 1, ratePerMinute: 0.5 };
    expect(limits.take(key).ok).toBe(true);
    expect(limits.take(key)).toEqual({ ok: false, limit: 'ratePerMinute', retryAfterSeconds: 120 });
    now += 120_000;
    expect(limits.take(key).ok).toBe(true);
  });
});
