import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createAdaptiveThrottle } from '../src/shoot/adaptive-throttle.js';
import { createConcurrencyLimit } from '../src/shoot/concurrency-limit.js';
import { imageFileName, slugOfUrl } from '../src/shoot/file-name.js';
import { applyDefaults, parseInput } from '../src/shoot/input.js';
import { alreadyDone, openManifest, readManifest } from '../src/shoot/manifest.js';
import { parseShootOptions, shootUsage } from '../src/cli/shoot-options.js';
import { createOptionsSchema, widestLimits } from '../src/request/options.js';
import { queryParameters } from '../src/request/query-parameters.js';
import { UsageError } from '../src/shoot/shoot.js';
import { backoffDelay, parseRetryAfter, retryAfterDelay } from '../src/shoot/retry-policy.js';
import { parseServerTiming } from '../src/shoot/server-timing.js';
import { createProgress } from '../src/shoot/progress.js';
import { formatSummary } from '../src/shoot/summary.js';

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'shoot-unit-'));
afterAll(() => fs.rm(tmp, { recursive: true, force: true }));

describe('input', () => {
  it('reads URLs and JSON lines, skips comments and blanks, reports bad lines by number', () => {
    const text = [
      '\uFEFFhttps://example.com/a', // 1
      '# a comment', // 2
      '', // 3
      '  http://example.org/b  ', // 4
      '{"url":"https://example.net/c","format":"jpeg"}', // 5
      'example.com/no-scheme', // 6
      '{"url":"ftp://example.com/x"}', // 7
      '{not json', // 8
      '{"html":"<p>hi</p>"}', // 9
      '{"url":"https://a.test","html":"<p>"}', // 10
      '[1,2]', // 11
      'file:///etc/passwd', // 12
    ].join('\r\n');
    const { items, invalid } = parseInput(text, { format: 'png' });
    expect(items.map((i) => [i.line, i.url])).toEqual([
      [1, 'https://example.com/a'],
      [4, 'http://example.org/b'],
      [5, 'https://example.net/c'],
      [9, null],
    ]);
    expect(items[2].body).toEqual({ url: 'https://example.net/c', format: 'jpeg' });
    expect(items[3].body).toEqual({ html: '<p>hi</p>', format: 'png' });
    expect(invalid.map((i) => i.line)).toEqual([6, 7, 8, 10, 11, 12]);
    expect(invalid[0].reason).toContain('https://example.com/no-scheme');
    expect(invalid[3].reason).toContain('exactly one of "url" or "html"');
  });

  it('lets a line override defaults without inheriting contradictions', () => {
    const defaults = { format: 'jpeg', quality: 80, fullPage: true, viewport: { width: 800, height: 600 } };
    expect(applyDefaults(defaults, { url: 'u', viewport: { height: 300 } }).viewport).toEqual({ width: 800, height: 300 });
    const device = applyDefaults(defaults, { url: 'u', device: 'iPhone 15' });
    expect(device.viewport).toBeUndefined();
    expect(device.device).toBe('iPhone 15');
    expect(applyDefaults(defaults, { url: 'u', format: 'png' })).not.toHaveProperty('quality');
    expect(applyDefaults(defaults, { url: 'u', selector: '#x' })).not.toHaveProperty('fullPage');
    expect(applyDefaults(defaults, { url: 'u', format: 'webp' }).quality).toBe(80);
  });
});

describe('file names', () => {
  it('are readable, carry the line number and the format', () => {
    expect(imageFileName(12, 'https://www.Example.com/Blog/Post?id=3', 'png')).toBe('12-example-com-blog-post-id-3.png');
    expect(imageFileName(3, 'http://127.0.0.1:8080/', 'jpeg')).toBe('3-127-0-0-1-8080.jpg');
    expect(imageFileName(4, null, 'webp')).toBe('4-html.webp');
    expect(slugOfUrl('https://example.com/caf%C3%A9/%E2%98%83')).toBe('example-com-cafe');
  });

  it('stay short and differ between lines even for the same URL', () => {
    const long = `https://example.com/${'segment-'.repeat(40)}`;
    expect(slugOfUrl(long).length).toBeLessThanOrEqual(80);
    expect(imageFileName(1, long, 'png')).not.toBe(imageFileName(2, long, 'png'));
  });
});

describe('options', () => {
  it('builds request defaults and the endpoint from flags', () => {
    const o = parseShootOptions(
      [
        '--store',
        'urls.txt',
        '--endpoint',
        'http://127.0.0.1:3000',
        '--format',
        'jpeg',
        '--quality',
        '70',
        '--width',
        '640',
        '--full-page',
        '--timeout',
        '5000',
      ],
      {},
    )!;
    expect(o.input).toBe('urls.txt');
    expect(o.endpoint.href).toBe('http://127.0.0.1:3000/screenshot');
    expect(o.defaults).toEqual({ format: 'jpeg', quality: 70, viewport: { width: 640, height: 800 }, fullPage: true, timeout: 5000, store: true });
    expect(o.manifestFile).toBe(path.join('.', 'manifest.jsonl'));
    expect(o.requestTimeoutMs).toBeGreaterThan(5000);
    expect(parseShootOptions(['-', '--endpoint', 'http://lb/x/screenshot', '--out', 'o'], {})!.endpoint.pathname).toBe('/x/screenshot');
  });

  it('takes the token from --token or the env it is given', () => {
    expect(parseShootOptions(['f', '--endpoint', 'http://h'], { SHOTFLEET_TOKEN: 'from-env' })!.token).toBe('from-env');
    expect(parseShootOptions(['f', '--endpoint', 'http://h', '--token', 'flag'], { SHOTFLEET_TOKEN: 'env' })!.token).toBe('flag');
    expect(parseShootOptions(['f', '--endpoint', 'http://h'], {})!.token).toBeUndefined();
  });

  it('rejects usage errors with a message that says what to fix', () => {
    const bad = (argv: string[]) => () => parseShootOptions(argv, {});
    expect(bad(['f'])).toThrow(/--endpoint is required/);
    expect(bad(['--endpoint', 'http://h'])).toThrow(/input FILE/);
    expect(bad(['f', '--endpoint', 'ftp://h'])).toThrow(UsageError);
    expect(bad(['f', '--endpoint', 'http://h', '--format', 'gif'])).toThrow(/png, jpeg, webp/);
    expect(bad(['f', '--endpoint', 'http://h', '--concurrency', '0'])).toThrow(/--concurrency/);
    expect(bad(['f', '--endpoint', 'http://h', '--bogus', '1'])).toThrow(/unknown option --bogus/);
    expect(parseShootOptions(['--help'], {})).toBeUndefined();
  });
});

describe('options from the request schema', () => {
  const params = queryParameters(createOptionsSchema(widestLimits)).filter((p) => p.name !== 'url' && p.name !== 'html');
  const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

  it('offers every scalar option of POST /screenshot as a flag, in the help too', () => {
    const help = shootUsage();
    for (const p of [...params, { name: 'store' }]) expect(help).toContain(`--${kebab(p.name)}`);
    expect(params.length).toBeGreaterThan(20);
  });

  it('converts each flag as GET converts its parameter and checks it with the request schema', () => {
    const base = ['f', '--endpoint', 'http://h'];
    expect(parseShootOptions([...base, '--wait-until', 'networkidle2', '--delay', '250', '--reduced-motion'], {})!).toMatchObject({
      defaults: { waitUntil: 'networkidle2', delay: 250, reducedMotion: true },
    });
    expect(parseShootOptions([...base, '--scale', '2'], {})!).toMatchObject({ defaults: { viewport: { width: 1280, height: 800, deviceScaleFactor: 2 } } });
    expect(() => parseShootOptions([...base, '--delay', 'soon'], {})).toThrow(/--delay/);
    expect(() => parseShootOptions([...base, '--device-scale-factor', '9'], {})).toThrow(/--device-scale-factor/);
    expect(() => parseShootOptions([...base, '--device', 'iPhone 15', '--width', '500'], {})).toThrow(/device or viewport/);
  });
});

describe('retry timing', () => {
  it('reads Retry-After as seconds or a date', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter(new Date(10_000 + 5000).toUTCString(), 10_000)).toBe(5000);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
  });

  it('waits at least Retry-After, plus bounded jitter, up to the cap', () => {
    const policy = { maxRetryAfterMs: 10_000 };
    expect(retryAfterDelay(2000, policy, () => 0)).toBe(2000);
    expect(retryAfterDelay(2000, policy, () => 0.999)).toBeGreaterThan(2000);
    expect(retryAfterDelay(2000, policy, () => 0.999)).toBeLessThanOrEqual(3000);
    expect(retryAfterDelay(3_600_000, policy, () => 0)).toBe(10_000);
  });

  it('backs off exponentially with equal jitter, capped', () => {
    const policy = { backoffBaseMs: 100, backoffCapMs: 1000 };
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(n, policy, () => 1))).toEqual([100, 200, 400, 800, 1000]);
    expect(backoffDelay(3, policy, () => 0)).toBe(200);
  });

  it('reads Server-Timing', () => {
    expect(parseServerTiming('queue;dur=3, render;dur=42.5, upload;desc="x";dur=7, other;dur=1')).toEqual({ queueMs: 3, renderMs: 42.5, uploadMs: 7 });
    expect(parseServerTiming(null)).toEqual({});
  });
});

describe('adaptive throttle', () => {
  it('never holds back while the fleet accepts, and holds back (requests − 2·accepts)/(requests + 1) when it does not', () => {
    let t = 1_000_000;
    let roll = 0.5;
    const throttle = createAdaptiveThrottle({ now: () => t, random: () => roll });
    for (let i = 0; i < 50; i++) {
      expect(throttle.tryAcquire()).toBe(true);
      throttle.record(true);
    }
    expect(throttle.rejectProbability()).toBe(0);
    for (let i = 0; i < 150; i++) throttle.record(false);
    expect(throttle.fleetAccepting()).toBe(true);
    // 200 requests, 50 accepts: (200 − 100) / 201
    expect(throttle.rejectProbability()).toBeCloseTo(100 / 201, 6);
    roll = 0.6;
    expect(throttle.tryAcquire()).toBe(true);
    roll = 0.4;
    expect(throttle.tryAcquire()).toBe(false);
    // a held-back item asks again later: its rejection is not counted as another request
    expect(throttle.rejectProbability()).toBeCloseTo(100 / 201, 6);
    expect(throttle.fleetAccepting()).toBe(true);
    t += 121_000;
    expect(throttle.rejectProbability()).toBe(0);
    expect(throttle.fleetAccepting()).toBe(false);
  });

  it('holds nothing back on too little evidence', () => {
    const throttle = createAdaptiveThrottle({ random: () => 0 });
    for (let i = 0; i < 9; i++) throttle.record(false);
    expect(throttle.tryAcquire()).toBe(true);
    throttle.record(false);
    expect(throttle.rejectProbability()).toBeCloseTo(10 / 11, 6);
    expect(throttle.tryAcquire()).toBe(false);
  });

  it('does not count requests still in flight', () => {
    const throttle = createAdaptiveThrottle({ random: () => 0 });
    for (let i = 0; i < 10; i++) expect(throttle.tryAcquire()).toBe(true);
    expect(throttle.rejectProbability()).toBe(0);
  });
});

describe('concurrency limit', () => {
  it('shrinks on 503s, never below one, and grows back on successes up to the maximum', async () => {
    const limit = createConcurrencyLimit(8);
    const signal = new AbortController().signal;
    for (let i = 0; i < 40; i++) limit.shed();
    expect(limit.limit).toBe(1);
    expect(await limit.acquire(signal)).toBe(true);
    let second = false;
    const pending = limit.acquire(signal).then((ok) => (second = ok));
    await new Promise((r) => setTimeout(r, 10));
    expect(second).toBe(false);
    limit.release();
    await pending;
    expect(second).toBe(true);
    limit.release();
    for (let i = 0; i < 200; i++) limit.succeeded();
    expect(limit.limit).toBe(8);
  });

  it('gives up waiting when the batch is interrupted', async () => {
    const limit = createConcurrencyLimit(1);
    const controller = new AbortController();
    expect(await limit.acquire(controller.signal)).toBe(true);
    const waiting = limit.acquire(controller.signal);
    controller.abort();
    expect(await waiting).toBe(false);
  });
});

describe('manifest', () => {
  it('keeps the last record per line and ignores a torn one', async () => {
    const file = path.join(tmp, 'torn.jsonl');
    await fs.writeFile(
      file,
      '{"line":1,"url":"u1","status":"failed"}\n{"line":2,"url":"u2","status":"ok"}\n{"line":1,"url":"u1","status":"ok"}\n{"line":3,"url":"u3","sta',
    );
    const records = await readManifest(file);
    expect([...records.keys()].sort()).toEqual([1, 2]);
    expect(records.get(1)!.status).toBe('ok');
    const writer = await openManifest(file);
    await writer.append({ line: 3, url: 'u3', status: 'ok' });
    await writer.close();
    expect((await readManifest(file)).get(3)?.status).toBe('ok');
    expect(await readManifest(path.join(tmp, 'missing.jsonl'))).toEqual(new Map());
  });

  it('counts a line as done only when it was ok for the same URL and its image is still there', async () => {
    const manifest = path.join(tmp, 'm.jsonl');
    await fs.writeFile(path.join(tmp, '1-a.png'), 'x');
    expect(await alreadyDone({ line: 1, url: 'a', status: 'ok', file: '1-a.png' }, 'a', manifest)).toBe(true);
    expect(await alreadyDone({ line: 1, url: 'a', status: 'ok', file: '1-a.png' }, 'b', manifest)).toBe(false);
    expect(await alreadyDone({ line: 1, url: 'a', status: 'ok', file: 'gone.png' }, 'a', manifest)).toBe(false);
    expect(await alreadyDone({ line: 1, url: 'a', status: 'failed' }, 'a', manifest)).toBe(false);
    expect(await alreadyDone({ line: 1, url: 'l', source: 'a', status: 'ok', key: 'k' }, 'a', manifest)).toBe(true);
    expect(await alreadyDone(undefined, 'a', manifest)).toBe(false);
  });
});

describe('feedback', () => {
  const item = (line: number) => ({ line, url: `https://e.test/${line}`, body: {} });

  it('redraws one line in place on a terminal, with counts, rate and ETA', () => {
    let out = '';
    let t = 0;
    const progress = createProgress({ write: (s: string) => (out += s), isTTY: true }, 4, { now: () => t });
    progress.waiting!(item(2), 'throttled', 100);
    t = 2000;
    progress.finished!({ line: 1, url: 'u', status: 'ok' });
    progress.note('hello');
    progress.stop();
    const last = out.split('\r\x1b[2K').at(-1)!;
    expect(last).toContain('1/4 · ok 1 · failed 0 · retrying 1 · 0.5/s · ETA 6s');
    expect(last).toMatch(/^\[#+-+\]/);
    expect(out).toContain('hello\n');
  });

  it('prints plain periodic lines and each failure elsewhere', async () => {
    let out = '';
    const progress = createProgress({ write: (s: string) => (out += s) }, 2, { intervalMs: 20 });
    progress.finished!({ line: 7, url: 'u', status: 'failed', error: { status: 400, code: 'invalid_request', message: 'bad width' } });
    for (let i = 0; i < 100 && !out.includes('shoot: 1/2'); i++) await new Promise((r) => setTimeout(r, 10));
    progress.stop();
    expect(out).toContain('line 7 failed: 400 invalid_request: bad width\n');
    expect(out).toContain('shoot: 1/2 · ok 0 · failed 1');
    expect(out).not.toContain('\x1b');
  });

  it('sums up in a table and lists failed lines', () => {
    const failures = Array.from({ length: 12 }, (_, i) => ({
      line: i + 1,
      url: null,
      status: 'failed' as const,
      error: { code: 'invalid_line', message: 'nope' },
    }));
    const text = formatSummary({
      ok: 5,
      skipped: 2,
      failed: 0,
      invalid: 12,
      unfinished: 3,
      retries: 4,
      shed: 3,
      rateLimited: 2,
      throttled: 1,
      elapsedMs: 10_000,
      manifestFile: 'm.jsonl',
      failures,
      interrupted: true,
    });
    expect(text).toMatch(/ok\s+5\n/);
    expect(text).toMatch(/already ok\s+2/);
    expect(text).toMatch(/not done\s+3\s+interrupted/);
    expect(text).toMatch(/total\s+22/);
    expect(text).toContain('retries 4 (503: 3, 429: 2)');
    expect(text).toContain('… and 2 more in the manifest');
  });
});
