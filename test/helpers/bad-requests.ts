import { expect } from 'vitest';
import type { Answer } from './node-client.js';

/**
 * Generated bad requests to POST /screenshot (a few hundred), shared by the in-process test of the HTTP layer
 * (test/http-app.test.ts) and the real node's (test/bad-requests.test.ts).
 */

/** A bad request as sent: a JSON value (serialised here) or raw bytes, with the status family expected. */
export interface BadCase {
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

/** Every request field with values of the wrong type for it (a generated cross product). */
export function wrongTypes(url: string): BadCase[] {
  const pool: unknown[] = [null, true, false, 0, 42, -1, 1.5, '', 'text', [], ['a'], [1, 2], {}, { a: 1 }];
  const kinds: Record<string, (v: unknown) => boolean> = {
    string: (v) => typeof v === 'string',
    int: (v) => typeof v === 'number' && Number.isInteger(v) && v >= 0,
    bool: (v) => typeof v === 'boolean',
    object: (v) => typeof v === 'object' && v !== null && !Array.isArray(v),
    array: (v) => Array.isArray(v),
  };
  const fields: Record<string, keyof typeof kinds> = {
    format: 'string',
    quality: 'int',
    viewport: 'object',
    device: 'string',
    fullPage: 'bool',
    clip: 'object',
    selector: 'string',
    omitBackground: 'bool',
    optimizeForSpeed: 'bool',
    waitUntil: 'string',
    waitForSelector: 'string',
    delay: 'int',
    timeout: 'int',
    headers: 'object',
    cookies: 'array',
    userAgent: 'string',
    colorScheme: 'string',
    reducedMotion: 'bool',
    mediaType: 'string',
    javascript: 'bool',
    hideSelectors: 'array',
    css: 'string',
    blockResourceTypes: 'array',
    store: 'bool',
    key: 'string',
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

/** URLs that are not http(s): the schema takes them as strings, the render service's URL policy refuses them. */
const nonHttpUrls = [
  'file:///etc/passwd',
  'FILE:/etc/passwd',
  'javascript:alert(1)',
  'data:text/html,<p>x',
  'ftp://127.0.0.1/',
  'chrome://version',
  'about:blank',
  '/relative',
  'http://',
  'not a url',
  '',
];

export function badValues(url: string): BadCase[] {
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
    ...[0, -1, 4097, 1e9, 1.5].flatMap((v) => [
      c(`viewport.width ${v}`, { url, viewport: { width: v, height: 100 } }),
      c(`viewport.height ${v}`, { url, viewport: { width: 100, height: v } }),
    ]),
    ...[0, -1, 4.01, 100].map((v) => c(`deviceScaleFactor ${v}`, { url, viewport: { width: 100, height: 100, deviceScaleFactor: v } })),
    ...[0, 101, -5, 50.5].map((v) => c(`quality ${v}`, { url, format: 'jpeg', quality: v })),
    ...[-1, 10_001, 1e12, 0.5].map((v) => c(`delay ${v}`, { url, delay: v })),
    ...[0, 99, 60_001, 1e20].map((v) => c(`timeout ${v}`, { url, timeout: v })),
    ...[{ x: -1 }, { y: -5 }, { width: 0 }, { height: 4097 }, { x: 1e7 }].map((v) => c(`clip ${JSON.stringify(v)}`, { url, clip: { ...clip, ...v } })),
    c('clip missing height', { url, clip: { x: 0, y: 0, width: 10 } }),
    // Contradictions the options table names.
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
    ...nonHttpUrls.map((u) => c(`url ${u || '(empty)'}`, { url: u })),
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

export function badSyntax(url: string, maxBodyBytes: number): BadCase[] {
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
    ...['', '{', '{"url":}', "{'url':'x'}", `${ok.slice(0, -1)},}`, `${ok} trailing`, 'NaN', 'undefined', '\u0000', `{"url":"${url}","timeout":1e400}`].map(
      (t) => raw(`broken ${JSON.stringify(t.slice(0, 24))}`, t),
    ),
    raw('invalid UTF-8', Buffer.concat([Buffer.from('{"url":"'), Buffer.from([0xff, 0xfe, 0xc0]), Buffer.from('"}')])),
    raw('binary garbage', Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 37) % 256))),
    // Deep nesting, inside a known field, an unknown one and at the top.
    raw('viewport nested 5 000 deep', `{"url":${JSON.stringify(url)},"viewport":${deep(5000, 1, (x) => `{"width":${x}}`)}}`),
    raw('unknown field nested 20 000 deep', `{"url":${JSON.stringify(url)},"x":${deep(20_000, 0, (x) => `[${x}]`)}}`),
    raw(
      'top-level array 50 000 deep',
      deep(50_000, 0, (x) => `[${x}]`),
    ),
    raw(
      'object 20 000 deep',
      deep(20_000, 0, (x) => `{"a":${x}}`),
    ),
    // Content types.
    ...[
      null,
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/jsonp',
      'text/json',
      'application/json-patch+json',
      'application/javascript',
    ].map((t) => raw(`content-type ${t ?? '(none)'}`, ok, 415, t)),
    // Over SHOTFLEET_MAX_BODY_BYTES, also when the bulk is a field the schema would refuse anyway.
    raw('body over the limit', JSON.stringify({ url, css: 'a'.repeat(maxBodyBytes) }), 413),
    raw('body far over the limit', JSON.stringify({ url, html: 'x'.repeat(4 * maxBodyBytes) }), 413),
  ];
}

/**
 * Cases the HTTP layer (request schema) lets through, refused further in by the real node: a URL that is not
 * http(s) by the render service's URL policy (also one that invalid UTF-8 made unreadable), a cookie's or a
 * selector's syntax by the browser. test/http-app.test.ts checks that this list is exact.
 */
export const judgedPastTheHttpLayer = new Set([
  ...nonHttpUrls.map((u) => `url ${u || '(empty)'}`),
  'invalid UTF-8',
  'cookie path not starting with /',
  'cookie domain ..',
  'invalid CSS selector',
]);

/** The POST /screenshot request of a case, as sent: its body as given, its content type (application/json unless set). */
export function badCaseRequest(c: BadCase, headers: Record<string, string>) {
  const contentType = c.contentType === undefined ? 'application/json' : c.contentType;
  return { method: 'POST', headers: { ...headers, ...(contentType ? { 'content-type': contentType } : {}) }, body: c.raw ?? JSON.stringify(c.body) };
}

/** Every generated case for a page at `url` on a node whose body cap is `maxBodyBytes`. */
export function badCases(url: string, maxBodyBytes: number): BadCase[] {
  return [...wrongTypes(url), ...badValues(url), ...badSyntax(url, maxBodyBytes)];
}

export const codeFor: Record<number, string> = {
  400: 'invalid_request',
  401: 'unauthorized',
  404: 'not_found',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
};

/** A client-facing error: the status family asked, the documented JSON error shape, no internals. */
export function expectCleanError(answer: Answer, status: number, what: string): void {
  const text = answer.bytes.toString('utf8');
  expect(answer.status, `${what}: ${text.slice(0, 300)}`).toBe(status);
  expect(answer.headers.get('content-type'), what).toMatch(/^application\/json/);
  expect(answer.json?.error?.code, what).toBe(codeFor[status]);
  expect(typeof answer.json?.error?.message, what).toBe('string');
  expect(answer.json!.error!.message.length, what).toBeGreaterThan(0);
  expect(text, `${what} leaks internals`).not.toMatch(/\n\s+at |node_modules|\/src\/|\.ts:\d|\.js:\d|stack/i);
}
