import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectPng, metricValues, request, shoot, solidPage, startSite, type Answer, type Site } from './helpers/node-client.js';
import { startShotfleet, type RunningProcess } from './helpers/processes.js';

const token = 'render-token-123';
const metricsToken = 'metrics-token-456';
const maxBodyBytes = 256 * 1024;
const auth = { authorization: `Bearer ${token}` };

/** A bad request as sent: a JSON value (serialised here) or raw bytes, with the status family expected. */
interface BadCase {
  name: string;
  body: unknown;
  raw?: string | Buffer;
  contentType?: string | null;
  expect: 400 | 413 | 415;
}

const deep = (depth: number, leaf: unknown, wrap: (inner: string) => string) => {
  let text = JSON.stringify(leaf);
  for (let i = 0; i < depth; i++) text = wrap(text);
  return text;
};

/** Every field of the contract with values of the wrong type for it (a generated cross product). */
function wrongTypes(url: string): BadCase[] {
  const pool: unknown[] = [null, true, false, 0, 42, -1, 1.5, '', 'text', [], ['a'], [1, 2], {}, { a: 1 }];
  const kinds: Record<string, (v: unknown) => boolean> = {
    string: (v) => typeof v === 'string',
    int: (v) => typeof v === 'number' && Number.isInteger(v) && v >= 0,
    bool: (v) => typeof v === 'boolean',
    object: (v) => typeof v === 'object' && v !== null && !Array.isArray(v),
    array: (v) => Array.isArray(v),
  };
  const fields: Record<string, keyof typeof kinds> = {
    format: 'string', quality: 'int', viewport: 'object', device: 'string', fullPage: 'bool', clip: 'object', selector: 'string',
    omitBackground: 'bool', optimizeForSpeed: 'bool', waitUntil: 'string', waitForSelector: 'string', delay: 'int', timeout: 'int',
    headers: 'object', cookies: 'array', userAgent: 'string', colorScheme: 'string', reducedMotion: 'bool', mediaType: 'string',
    javascript: 'bool', hideSelectors: 'array', css: 'string', blockResourceTypes: 'array', store: 'bool', key: 'string',
  };
  const cases: BadCase[] = [];
  for (const [field, kind] of Object.entries(fields)) {
    for (const value of pool) {
      // Right type: only a few are still wrong (enums, ranges, contradictions) and they are covered below.
      if (kinds[kind](value)) continue;
      cases.push({ name: `${field}=${JSON.stringify(value)}`, body: { url, [field]: value }, expect: 400 });
    }
  }
  for (const value of pool.filter((v) => typeof v !== 'string')) cases.push({ name: `url=${JSON.stringify(value)}`, body: { url: value }, expect: 400 });
  for (const value of pool.filter((v) => typeof v !== 'string')) cases.push({ name: `html=${JSON.stringify(value)}`, body: { html: value }, expect: 400 });
  for (const sub of ['width', 'height', 'deviceScaleFactor', 'isMobile']) {
    for (const value of [null, '100', true, [], {}]) {
      if (sub === 'isMobile' && typeof value === 'boolean') continue;
      cases.push({ name: `viewport.${sub}=${JSON.stringify(value)}`, body: { url, viewport: { [sub]: value } }, expect: 400 });
    }
  }
  return cases;
}

function badValues(url: string): BadCase[] {
  const c = (name: string, body: unknown): BadCase => ({ name, body, expect: 400 });
  const clip = { x: 0, y: 0, width: 100, height: 100 };
  return [
    // Unknown fields, at every level.
    c('unknown top-level field', { url, foo: 1 }),
    c('misspelt field', { url, fullpage: true }),
    c('snake_case field', { url, wait_until: 'load' }),
    c('__proto__ field', JSON.parse(`{"url":${JSON.stringify(url)},"__proto__":{"admin":true}}`)),
    c('constructor field', { url, constructor: { prototype: {} } }),
    c('unknown viewport field', { url, viewport: { width: 100, height: 100, depth: 3 } }),
    c('unknown clip field', { url, clip: { ...clip, z: 1 } }),
    c('unknown cookie field', { url, cookies: [{ name: 'a', value: 'b', httpOnly: true }] }),
    // Enums.
    ...['gif', 'PNG', 'jpg', 'svg', ''].map((f) => c(`format ${f}`, { url, format: f })),
    ...['networkidle', 'idle', 'LOAD', ''].map((w) => c(`waitUntil ${w}`, { url, waitUntil: w })),
    c('colorScheme blue', { url, colorScheme: 'blue' }),
    c('mediaType paper', { url, mediaType: 'paper' }),
    c('unknown device', { url, device: 'Nokia 3310 Deluxe' }),
    c('unknown resource type', { url, blockResourceTypes: ['image', 'pictures'] }),
    // Out of range.
    ...[0, -1, 4097, 1e9, 1.5].flatMap((v) => [c(`viewport.width ${v}`, { url, viewport: { width: v, height: 100 } }), c(`viewport.height ${v}`, { url, viewport: { width: 100, height: v } })]),
    ...[0, -1, 4.01, 100].map((v) => c(`deviceScaleFactor ${v}`, { url, viewport: { width: 100, height: 100, deviceScaleFactor: v } })),
    ...[0, 101, -5, 50.5].map((v) => c(`quality ${v}`, { url, format: 'jpeg', quality: v })),
    ...[-1, 10_001, 1e12, 0.5].map((v) => c(`delay ${v}`, { url, delay: v })),
    ...[0, 99, 60_001, 1e20].map((v) => c(`timeout ${v}`, { url, timeout: v })),
    ...[{ x: -1 }, { y: -5 }, { width: 0 }, { height: 4097 }, { x: 1e7 }].map((v) => c(`clip ${JSON.stringify(v)}`, { url, clip: { ...clip, ...v } })),
    c('clip missing height', { url, clip: { x: 0, y: 0, width: 10 } }),
    // Contradictions from the contract's table.
    c('url and html', { url, html: '<p>x</p>' }),
    c('neither url nor html', { format: 'png' }),
    c('empty object', {}),
    c('quality with png', { url, quality: 80 }),
    c('quality with default format', { url, format: 'png', quality: 10 }),
    c('optimizeForSpeed with jpeg', { url, format: 'jpeg', optimizeForSpeed: true }),
    c('omitBackground with jpeg', { url, format: 'jpeg', omitBackground: true }),
    c('device and viewport', { url, device: 'iPhone 15', viewport: { width: 100, height: 100 } }),
    c('clip and fullPage', { url, clip, fullPage: true }),
    c('clip and selector', { url, clip, selector: 'body' }),
    c('selector and fullPage', { url, selector: 'body', fullPage: true }),
    c('key without store', { url, key: 'a.png' }),
    c('html cookies without domain', { html: '<p>x</p>', cookies: [{ name: 'a', value: 'b' }] }),
    // URLs that are not http(s).
    ...['file:///etc/passwd', 'FILE:/etc/passwd', 'javascript:alert(1)', 'data:text/html,<p>x', 'ftp://127.0.0.1/', 'chrome://version', 'about:blank', '/relative', 'http://', 'not a url', ''].map((u) =>
      c(`url ${u || '(empty)'}`, { url: u }),
    ),
    // Values Chromium would choke on: control characters, connection headers, broken cookies.
    c('CRLF in a header value', { url, headers: { 'x-a': 'b\r\nx-injected: 1' } }),
    c('NUL in a header value', { url, headers: { 'x-a': 'b\u0000' } }),
    c('header name with a space', { url, headers: { 'x a': 'b' } }),
    ...['Host', 'Connection', 'Content-Length', 'Transfer-Encoding', 'Proxy-Authorization', 'TE'].map((h) => c(`header ${h}`, { url, headers: { [h]: 'x' } })),
    c('NUL in userAgent', { url, userAgent: 'a\u0000b' }),
    c('empty userAgent', { url, userAgent: '' }),
    c('cookie name with ;', { url, cookies: [{ name: 'a;b', value: 'c' }] }),
    c('cookie value with ;', { url, cookies: [{ name: 'a', value: 'b; Path=/' }] }),
    c('empty cookie name', { url, cookies: [{ name: '', value: 'c' }] }),
    c('cookie path not starting with /', { url, cookies: [{ name: 'a', value: 'b', path: 'nope' }] }),
    c('cookie domain ..', { url, cookies: [{ name: 'a', value: 'b', domain: '..' }] }),
    c('invalid CSS selector', { url, selector: '###' }),
    c('empty selector', { url, selector: '' }),
    // Huge values.
    c('url of 10 000 characters', { url: `${url}?${'a'.repeat(10_000)}` }),
    c('selector of 2 000 characters', { url, selector: 'p'.repeat(2000) }),
    c('101 hide selectors', { url, hideSelectors: Array.from({ length: 101 }, (_, i) => `.c${i}`) }),
    c('101 cookies', { url, cookies: Array.from({ length: 101 }, (_, i) => ({ name: `c${i}`, value: 'v' })) }),
    c('header value of 9 000 characters', { url, headers: { 'x-a': 'v'.repeat(9000) } }),
  ];
}

function badSyntax(url: string): BadCase[] {
  const raw = (name: string, text: string | Buffer, expectStatus: 400 | 413 | 415 = 400, contentType: string | null = 'application/json'): BadCase => ({
    name,
    body: undefined,
    raw: text,
    contentType,
    expect: expectStatus,
  });
  const ok = JSON.stringify({ url });
  return [
    // Not an object.
    ...['[]', `[${ok}]`, '"text"', '42', 'true', 'null', JSON.stringify(ok)].map((t) => raw(`non-object ${t.slice(0, 20)}`, t)),
    // Not JSON.
    ...['', '{', '{"url":}', "{'url':'x'}", `${ok.slice(0, -1)},}`, `${ok} trailing`, 'NaN', 'undefined', '\u0000', `{"url":"${url}","timeout":1e400}`].map((t) =>
      raw(`broken ${JSON.stringify(t.slice(0, 24))}`, t),
    ),
    raw('invalid UTF-8', Buffer.concat([Buffer.from('{"url":"'), Buffer.from([0xff, 0xfe, 0xc0]), Buffer.from('"}')])),
    raw('binary garbage', Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 37) % 256))),
    // Deep nesting, inside a known field, an unknown one and at the top.
    raw('viewport nested 5 000 deep', `{"url":${JSON.stringify(url)},"viewport":${deep(5000, 1, (x) => `{"width":${x}}`)}}`),
    raw('unknown field nested 20 000 deep', `{"url":${JSON.stringify(url)},"x":${deep(20_000, 0, (x) => `[${x}]`)}}`),
    raw('top-level array 50 000 deep', deep(50_000, 0, (x) => `[${x}]`)),
    raw('object 20 000 deep', deep(20_000, 0, (x) => `{"a":${x}}`)),
    // Content types.
    ...[null, 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonp', 'text/json', 'application/json-patch+json', 'application/javascript'].map(
      (t) => raw(`content-type ${t ?? '(none)'}`, ok, 415, t),
    ),
    // Over SHOTFLEET_MAX_BODY_BYTES, also when the bulk is a field the schema would refuse anyway.
    raw('body over the limit', JSON.stringify({ url, css: 'a'.repeat(maxBodyBytes) }), 413),
    raw('body far over the limit', JSON.stringify({ url, html: 'x'.repeat(4 * maxBodyBytes) }), 413),
  ];
}

async function send(base: string, c: BadCase, headers: Record<string, string> = auth): Promise<Answer> {
  const contentType = c.contentType === undefined ? 'application/json' : c.contentType;
  return request(`${base}/screenshot`, {
    method: 'POST',
    headers: { ...headers, ...(contentType ? { 'content-type': contentType } : {}) },
    body: c.raw ?? JSON.stringify(c.body),
  });
}

const codeFor: Record<number, string> = { 400: 'invalid_request', 401: 'unauthorized', 404: 'not_found', 413: 'payload_too_large', 415: 'unsupported_media_type' };

/** A client-facing error: the status family asked, the contract's JSON shape, no internals. */
function expectCleanError(answer: Answer, status: number, what: string): void {
  const text = answer.bytes.toString('utf8');
  expect(answer.status, `${what}: ${text.slice(0, 300)}`).toBe(status);
  expect(answer.headers.get('content-type'), what).toMatch(/^application\/json/);
  expect(answer.json?.error?.code, what).toBe(codeFor[status]);
  expect(typeof answer.json?.error?.message, what).toBe('string');
  expect(answer.json!.error!.message.length, what).toBeGreaterThan(0);
  expect(text, `${what} leaks internals`).not.toMatch(/\n\s+at |node_modules|\/src\/|\.ts:\d|\.js:\d|stack/i);
}

describe('bad input and auth on a real node', () => {
  let site: Site;
  let node: RunningProcess;
  let guarded: RunningProcess;

  beforeAll(async () => {
    site = await startSite((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(solidPage('rgb(0,0,0)', '<p>x</p>')));
    [node, guarded] = await Promise.all([
      startShotfleet(
        'serve',
        { SHOTFLEET_PAGES: '1', SHOTFLEET_ALLOW_HOSTS: '127.0.0.1', SHOTFLEET_TOKEN: token, SHOTFLEET_MAX_BODY_BYTES: String(maxBodyBytes) },
        { timeoutMs: 60_000 },
      ),
      startShotfleet('serve', { SHOTFLEET_PAGES: '1', SHOTFLEET_ALLOW_HOSTS: '127.0.0.1', SHOTFLEET_TOKEN: token, SHOTFLEET_METRICS_TOKEN: metricsToken }, { timeoutMs: 60_000 }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([node?.stop(), guarded?.stop()]);
    await site?.close();
  });

  it('a few hundred generated bad bodies each get a 4xx JSON error, never a 5xx or a stack trace', async () => {
    const url = `${site.url}/page`;
    const cases = [...wrongTypes(url), ...badValues(url), ...badSyntax(url)];
    expect(cases.length).toBeGreaterThan(300);
    // One at a time: a few cases (a cookie or selector only Chromium can judge) take the node's one page.
    for (const c of cases) expectCleanError(await send(node.url, c), c.expect, c.name);

    // The node is unharmed, and saw no 5xx at all.
    expectPng(await shoot(node.url, { url }, { headers: auth }));
    const metrics = (await request(`${node.url}/metrics`)).bytes.toString('utf8');
    const byCode = metricValues(metrics, 'shotfleet_requests_total', 'code');
    expect(Object.keys(byCode).filter((code) => Number(code) >= 500)).toEqual([]);
    expect(byCode['400']).toBe(cases.filter((c) => c.expect === 400).length);
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

  it('bad GET /screenshot queries get 400, other methods and routes a JSON 4xx', async () => {
    const page = `${site.url}/page`;
    const queries = [
      { url: page, bogus: '1' },
      { url: page, width: 'abc' },
      { url: page, width: '99999' },
      { url: page, fullPage: 'maybe' },
      { url: page, format: 'gif' },
      { url: page, quality: '500', format: 'jpeg' },
      { url: 'file:///etc/passwd' },
      { format: 'png' },
    ];
    for (const q of queries) {
      expectCleanError(await request(`${node.url}/screenshot?${new URLSearchParams(q)}`, { headers: auth }), 400, `GET ${JSON.stringify(q)}`);
    }
    for (const method of ['PUT', 'DELETE', 'PATCH']) {
      expectCleanError(await request(`${node.url}/screenshot`, { method, headers: { ...auth, 'content-type': 'application/json' }, body: '{}' }), 404, method);
    }
    expectCleanError(await request(`${node.url}/nope`, { headers: auth }), 404, 'unknown route');
  });

  it('SHOTFLEET_TOKEN: 401 without or with a wrong token (before the body is looked at); Bearer and token: header accepted', async () => {
    const body = { url: `${site.url}/page` };
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { token: 'wrong' }, { authorization: `Basic ${Buffer.from(`x:${token}`).toString('base64')}` }, { authorization: token }]) {
      expectCleanError(await shoot(node.url, body, { headers }), 401, `headers ${JSON.stringify(headers)}`);
      // Auth comes first: a bad body without the token learns nothing about validation.
      expectCleanError(await send(node.url, { name: 'bad', body: { url: 1 }, expect: 400 }, headers), 401, 'bad body without token');
    }
    expectCleanError(await request(`${node.url}/screenshot?${new URLSearchParams(body)}`), 401, 'GET without token');
    expectPng(await shoot(node.url, body, { headers: { authorization: `Bearer ${token}` } }));
    expectPng(await shoot(node.url, body, { headers: { token } }));
    expectPng(await request(`${node.url}/screenshot?${new URLSearchParams(body)}`, { headers: { token } }));
  });

  it('/status and /livez are open; /metrics is open without SHOTFLEET_METRICS_TOKEN and needs it when set', async () => {
    for (const base of [node.url, guarded.url]) {
      expect((await request(`${base}/status`)).status).toBe(200);
      expect((await request(`${base}/livez`)).status).toBe(200);
    }
    const open = await request(`${node.url}/metrics`);
    expect(open.status).toBe(200);
    expect(open.bytes.toString('utf8')).toMatch(/^shotfleet_requests_total/m);

    for (const headers of [{}, { authorization: `Bearer ${token}` }, { authorization: 'Bearer wrong' }]) {
      expectCleanError(await request(`${guarded.url}/metrics`, { headers }), 401, `/metrics with ${JSON.stringify(headers)}`);
    }
    for (const headers of [{ authorization: `Bearer ${metricsToken}` }, { token: metricsToken }]) {
      const answer = await request(`${guarded.url}/metrics`, { headers });
      expect(answer.status).toBe(200);
      expect(answer.bytes.toString('utf8')).toMatch(/^shotfleet_pages_max 1$/m);
    }
    // The metrics token opens nothing else.
    expectCleanError(await shoot(guarded.url, { url: `${site.url}/page` }, { headers: { authorization: `Bearer ${metricsToken}` } }), 401, 'screenshot with the metrics token');
  });
});
