import { Validator } from '@seriousme/openapi-schema-validator';
import { describe, expect, it } from 'vitest';
import { errorStatus, shed, ShotError, type ErrorCode } from '../src/errors/shot-error.js';
import { signLink } from '../src/signing/signature.js';
import { badCaseRequest, badCases, expectCleanError, judgedPastTheHttpLayer, type BadCase } from './helpers/bad-requests.js';
import { imageResult, inProcessNode, nodeId, readyStatus, type InProcessNode } from './helpers/in-process-node.js';
import { expectPng, metricValues, type Answer } from './helpers/node-client.js';

/**
 * The node's HTTP surface, in process: the real app (routes, auth, body cap, error mapping, headers, metrics) with
 * a stub render service, so each check costs microseconds instead of a node with its browser. What needs the real
 * server or Chromium stays in the real-node tests (bad-requests, security-http, signed-links, api-description…).
 */

const token = 'render-token-123';
const metricsToken = 'metrics-token-456';
const signingKey = 'test-signing-key';
const maxBodyBytes = 256 * 1024;
const auth = { authorization: `Bearer ${token}` };
const page = 'http://127.0.0.1:9/page';

function send(node: InProcessNode, c: BadCase, headers: Record<string, string> = auth): Promise<Answer> {
  return node.request('/screenshot', badCaseRequest(c, headers));
}

describe('bad input', () => {
  it('a few hundred generated bad bodies each get a 4xx JSON error before any render, never a 5xx or a stack trace', async () => {
    const node = inProcessNode({ token, maxBodyBytes });
    const cases = badCases(page, maxBodyBytes);
    expect(cases.length).toBeGreaterThan(300);
    const passed: string[] = [];
    for (const c of cases) {
      const rendersBefore = node.renders.length;
      const answer = await send(node, c);
      if (judgedPastTheHttpLayer.has(c.name)) {
        // The request schema lets these through; the real node refuses them further in (test/bad-requests.test.ts).
        expectPng(answer);
        passed.push(c.name);
        continue;
      }
      expectCleanError(answer, c.expect, c.name);
      expect(node.renders.length, `${c.name} reached the render`).toBe(rendersBefore);
    }
    expect(passed.sort()).toEqual([...judgedPastTheHttpLayer].sort());

    const byCode = metricValues(await node.metricsText(), 'shotfleet_requests_total', 'code');
    const count = (status: number) => cases.filter((c) => c.expect === status && !judgedPastTheHttpLayer.has(c.name)).length;
    expect(byCode).toEqual({ '200': judgedPastTheHttpLayer.size, '400': count(400), '413': count(413), '415': count(415) });
  });

  it('a body over the cap sent as a stream (no Content-Length) gets 413 and closes the connection; the cap itself is accepted', async () => {
    const node = inProcessNode({ maxBodyBytes: 1024 });
    const chunk = Buffer.alloc(256, 0x61);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 0) controller.enqueue(Buffer.from('{"url":"http://127.0.0.1/","css":"'));
        if (sent >= 8 * 1024) return controller.close();
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const over = await node.request('/screenshot', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expectCleanError(over, 413, 'streamed over the cap');
    expect(over.json?.error?.message).toContain('1024 bytes');
    expect(over.headers.get('connection')).toBe('close');
    expect(over.headers.get('x-shotfleet-node')).toBe(nodeId);

    const atCap = JSON.stringify({ url: page, css: '' }).length;
    const fits = JSON.stringify({ url: page, css: 'a'.repeat(1024 - atCap) });
    expect(fits.length).toBe(1024);
    expectPng(await node.request('/screenshot', { method: 'POST', headers: { 'content-type': 'application/json' }, body: fits }));
    expectCleanError(
      await node.request('/screenshot', { method: 'POST', headers: { 'content-type': 'application/json' }, body: `${fits} ` }),
      413,
      'one byte over',
    );
  });

  it('bad GET /screenshot queries get 400, other methods and routes a JSON 404', async () => {
    const node = inProcessNode({ token });
    const queries = [
      { url: page, bogus: '1' },
      { url: page, width: 'abc' },
      { url: page, width: '99999' },
      { url: page, fullPage: 'maybe' },
      { url: page, format: 'gif' },
      { url: page, quality: '500', format: 'jpeg' },
      { format: 'png' },
    ];
    // A URL that is not http(s) passes this layer: the real node's URL policy refuses it (test/bad-requests.test.ts).
    for (const q of queries) expectCleanError(await node.request(`/screenshot?${new URLSearchParams(q)}`, { headers: auth }), 400, `GET ${JSON.stringify(q)}`);
    for (const method of ['PUT', 'DELETE', 'PATCH']) {
      expectCleanError(await node.request('/screenshot', { method, headers: { ...auth, 'content-type': 'application/json' }, body: '{}' }), 404, method);
    }
    const unknown = await node.request('/nope', { headers: auth });
    expectCleanError(unknown, 404, 'unknown route');
    expect(unknown.json?.error?.message).toContain('/openapi.json');
    expect(node.renders).toEqual([]);
  });

  it('a node that sheds refuses before it reads the body: even one that is not JSON gets the 503; with room, the 400', async () => {
    let refusal: ShotError | null = shed('queue_full', 1.2);
    const node = inProcessNode({ refusalForAnyRequest: () => refusal });
    const notJson = () => node.request('/screenshot', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{not json' });
    for (const answer of [
      await notJson(),
      await node.request('/screenshot', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' }),
      await node.request(`/screenshot?url=${page}`),
    ]) {
      expect(answer.status).toBe(503);
      expect(answer.json?.error?.code).toBe('saturated');
      expect(answer.json?.error?.details?.reason).toBe('queue_full');
      expect(answer.headers.get('retry-after')).toBe('2');
    }
    refusal = null;
    expectCleanError(await notJson(), 400, 'not JSON, with room');
    expect(node.renders).toEqual([]);
  });
});

describe('auth', () => {
  it('SHOTFLEET_TOKEN: 401 without or with a wrong token (before the body is looked at); Bearer and token: header accepted', async () => {
    const node = inProcessNode({ token });
    const body = { url: page };
    for (const headers of [
      {},
      { authorization: 'Bearer wrong' },
      { token: 'wrong' },
      { authorization: `Basic ${Buffer.from(`x:${token}`).toString('base64')}` },
      { authorization: token },
    ]) {
      expectCleanError(await node.shoot(body, headers), 401, `headers ${JSON.stringify(headers)}`);
      // Auth comes first: a bad body without the token learns nothing about validation.
      expectCleanError(await send(node, { name: 'bad', body: { url: 1 }, expect: 400 }, headers), 401, 'bad body without token');
    }
    expectCleanError(await node.request(`/screenshot?${new URLSearchParams(body)}`), 401, 'GET without token');
    expect(node.renders).toEqual([]);
    expectPng(await node.shoot(body, { authorization: `Bearer ${token}` }));
    expectPng(await node.shoot(body, { authorization: `bearer  ${token} ` }));
    expectPng(await node.shoot(body, { token }));
    expectPng(await node.request(`/screenshot?${new URLSearchParams(body)}`, { headers: { token } }));
    expect(node.renders.map((r) => r.options.url)).toEqual([page, page, page, page]);
  });

  it('/status, /livez, /openapi.json and /docs are open; /metrics is open without SHOTFLEET_METRICS_TOKEN and needs it when set', async () => {
    const node = inProcessNode({ token });
    const guarded = inProcessNode({ token, metricsToken });
    for (const n of [node, guarded]) {
      for (const path of ['/status', '/livez', '/openapi.json', '/docs']) expect((await n.request(path)).status, path).toBe(200);
    }
    await node.shoot({ url: page }, auth);
    const open = await node.request('/metrics');
    expect(open.status).toBe(200);
    expect(open.bytes.toString('utf8')).toMatch(/^shotfleet_requests_total/m);

    for (const headers of [{}, { authorization: `Bearer ${token}` }, { authorization: 'Bearer wrong' }]) {
      expectCleanError(await guarded.request('/metrics', { headers }), 401, `/metrics with ${JSON.stringify(headers)}`);
    }
    for (const headers of [{ authorization: `Bearer ${metricsToken}` }, { token: metricsToken }]) {
      const answer = await guarded.request('/metrics', { headers });
      expect(answer.status).toBe(200);
      expect(answer.bytes.toString('utf8')).toMatch(/^shotfleet_pages_max 1$/m);
    }
    // The metrics token opens nothing else.
    expectCleanError(await guarded.shoot({ url: page }, { authorization: `Bearer ${metricsToken}` }), 401, 'screenshot with the metrics token');
    expect(guarded.renders).toEqual([]);
  });
});

describe('signed GET links', () => {
  const link = (extra = '') => `http://node/screenshot?url=${encodeURIComponent(page)}&width=300&height=200&timezone=Asia%2FTokyo${extra}`;
  const signed = (key = signingKey, expires = Math.floor(Date.now() / 1000) + 600) => signLink(new URL(link()), key, expires);
  const pathOf = (url: string | URL) => {
    const u = new URL(url);
    return `${u.pathname}${u.search}`;
  };

  it('a signed link is served without the token, with its own options; without its signature the token is needed', async () => {
    const node = inProcessNode({ token: 'node-token', signingKey });
    expectPng(await node.request(pathOf(signed())));
    expect(node.renders).toHaveLength(1);
    expect(node.renders[0].options).toMatchObject({ url: page, viewport: { width: 300, height: 200 }, timezone: 'Asia/Tokyo' });
    expect(node.renders[0].options).not.toHaveProperty('signature');
    expect(node.renders[0].options).not.toHaveProperty('expires');
    expectCleanError(await node.request(pathOf(link())), 401, 'unsigned, no token');
  });

  it('any change to a signed link, another key or an expired link is a 401 unauthorized', async () => {
    const node = inProcessNode({ token: 'node-token', signingKey });
    const url = signed();
    const tampered = [
      url.href.replace('width=300', 'width=301'),
      url.href.replace('Asia%2FTokyo', 'Europe%2FParis'),
      `${url.href}&fullPage=true`,
      url.href.replace(/signature=[0-9a-f]/, (m) => m.slice(0, -1) + (m.endsWith('0') ? '1' : '0')),
      url.href.replace(/expires=\d+/, (m) => `expires=${Number(m.slice(8)) + 1}`),
    ];
    const otherKey = signed('not-the-key').href;
    const expired = signed(signingKey, Math.floor(Date.now() / 1000) - 1).href;
    for (const bad of [...tampered, otherKey, expired]) {
      const answer = await node.request(pathOf(bad));
      expect(answer.status, bad).toBe(401);
      expect(answer.json?.error?.code).toBe('unauthorized');
      // Even with the node's token: a bad signature is refused, not ignored.
      expect((await node.request(pathOf(bad), { headers: { token: 'node-token' } })).status, bad).toBe(401);
    }
    expect(node.renders).toEqual([]);
  });

  it('without SHOTFLEET_TOKEN a good link is served and a bad one still refused; without a signing key every signed link is refused', async () => {
    const open = inProcessNode({ signingKey });
    const url = signed();
    expectPng(await open.request(pathOf(url)));
    expectCleanError(await open.request(pathOf(url.href.replace('width=300', 'width=301'))), 401, 'tampered on an open node');
    expectPng(await open.request(pathOf(link())));
    expect(open.renders).toHaveLength(2);

    const unsigning = inProcessNode();
    const refused = await unsigning.request(pathOf(url));
    expectCleanError(refused, 401, 'signed link on a node without a key');
    expect(refused.json?.error?.message).toContain('SHOTFLEET_SIGNING_KEY');
    expect(unsigning.renders).toEqual([]);
  });
});

describe('errors mapped to HTTP', () => {
  it('every code of the catalog thrown by the render is answered with its status, the JSON error shape and the node header', async () => {
    for (const [code, status] of Object.entries(errorStatus) as [ErrorCode, number][]) {
      const node = inProcessNode({
        screenshot: () => {
          throw new ShotError(code, `the ${code} message`, { field: 'x' }, { 'X-Extra': code });
        },
      });
      const answer = await node.request('/screenshot', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': `req-${code}` },
        body: JSON.stringify({ url: page }),
      });
      expect(answer.status, code).toBe(status);
      expect(answer.json, code).toEqual({ error: { code, message: `the ${code} message`, details: { field: 'x' } } });
      expect(answer.headers.get('x-extra'), code).toBe(code);
      expect(answer.headers.get('x-shotfleet-node'), code).toBe(nodeId);
      expect(answer.headers.get('x-request-id'), code).toBe(`req-${code}`);
    }
  });

  it('a shed is a 503 with Retry-After in whole seconds and its reason; a drain says so', async () => {
    for (const [reason, seconds, retryAfter] of [
      ['queue_full', 0.2, '1'],
      ['deadline', 2.5, '3'],
      ['upload_backlog', 7, '7'],
      ['memory', 1, '1'],
    ] as const) {
      const node = inProcessNode({
        screenshot: () => {
          throw shed(reason, seconds);
        },
      });
      const answer = await node.shoot({ url: page });
      expect(answer.status).toBe(503);
      expect(answer.headers.get('retry-after')).toBe(retryAfter);
      expect(answer.json?.error).toMatchObject({ code: 'saturated', details: { reason, retryAfterSeconds: Number(retryAfter) } });
    }
    const draining = inProcessNode({
      screenshot: () => {
        throw shed('draining', 1);
      },
    });
    const answer = await draining.shoot({ url: page });
    expect(answer.status).toBe(503);
    expect(answer.json?.error?.code).toBe('draining');
    expect(answer.headers.get('retry-after')).toBe('1');
  });

  it('any other error is a 500 render_failed that shows nothing of it, whatever it says (the render service types its timeouts)', async () => {
    const failing = (err: unknown) =>
      inProcessNode({
        screenshot: () => {
          throw err;
        },
      });
    const internal = await failing(new Error('ECONNREFUSED at /work/src/render/capture.ts:12 secret-token')).shoot({ url: page });
    expect(internal.status).toBe(500);
    expect(internal.json?.error?.code).toBe('render_failed');
    expect(internal.bytes.toString('utf8')).not.toMatch(/ECONNREFUSED|capture\.ts|secret-token/);
    expect(internal.headers.get('x-shotfleet-node')).toBe(nodeId);

    // A timeout reaches the HTTP layer as the ShotError the render service made of it (test/render-service.test.ts);
    // an error whose text merely says "timeout" is a 500, not a guessed 504.
    const message = 'Navigation timeout of 3000 ms exceeded';
    const answer = await failing(new Error(message)).shoot({ url: page });
    expect(answer.status).toBe(500);
    expect(answer.bytes.toString('utf8')).not.toContain(message);
  });
});

describe('a draining node', () => {
  it('closes each connection with its answer, image or error, so no idle keep-alive socket holds its exit', async () => {
    let draining = false;
    const node = inProcessNode({ draining: () => draining });
    expect((await node.shoot({ url: page })).headers.get('connection')).toBeNull();
    draining = true;
    const image = await node.shoot({ url: page });
    expect(image.status).toBe(200);
    expect(image.headers.get('connection')).toBe('close');
    const refused = await node.shoot({ url: 'file:///etc/passwd', format: 'gif' });
    expect(refused.status).toBe(400);
    expect(refused.headers.get('connection')).toBe('close');
    expect((await node.request('/status')).headers.get('connection')).toBe('close');
  });
});

describe('screenshot answers', () => {
  it('an image carries its type, no-store, Server-Timing, the node and a request id; the render is given the options, session and arrival', async () => {
    const node = inProcessNode();
    const before = Date.now();
    const answer = await node.request('/screenshot', {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8', cookie: 'other=1; shot_session=abc' },
      body: JSON.stringify({ url: page, format: 'png', viewport: { width: 320, height: 200 } }),
    });
    expectPng(answer);
    expect(answer.headers.get('content-type')).toBe('image/png');
    expect(answer.headers.get('cache-control')).toBe('no-store');
    expect(answer.headers.get('server-timing')).toBe('queue;dur=3, render;dur=42');
    expect(answer.headers.get('x-shotfleet-node')).toBe(nodeId);
    expect(answer.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    for (const header of ['x-shotfleet-truncated', 'x-shotfleet-session', 'x-shotfleet-target-status', 'x-shotfleet-best-effort'])
      expect(answer.headers.get(header), header).toBeNull();
    const [req] = node.renders;
    expect(req.options).toMatchObject({ url: page, format: 'png', viewport: { width: 320, height: 200 } });
    expect(req.sessionId).toBe('abc');
    expect(req.arrivedAt).toBeGreaterThanOrEqual(before);
    expect(req.signal).toBeInstanceOf(AbortSignal);
  });

  it('what the render learnt is in headers: truncated, session, the target status, best effort; upload time in Server-Timing', async () => {
    const node = inProcessNode({
      screenshot: () =>
        imageResult({
          truncated: true,
          session: 'reused',
          targetStatus: 404,
          bestEffort: true,
          timings: { queueMs: 1, renderMs: 2, uploadMs: 3 },
          contentType: 'image/jpeg',
        }),
    });
    const answer = await node.shoot({ url: page, format: 'jpeg' });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toBe('image/jpeg');
    expect(answer.headers.get('x-shotfleet-truncated')).toBe('true');
    expect(answer.headers.get('x-shotfleet-session')).toBe('reused');
    expect(answer.headers.get('x-shotfleet-target-status')).toBe('404');
    expect(answer.headers.get('x-shotfleet-best-effort')).toBe('true');
    expect(answer.headers.get('server-timing')).toBe('queue;dur=1, render;dur=2, upload;dur=3');
  });

  it('a stored image is answered with its JSON description and the same headers', async () => {
    const stored = {
      bucket: 'b',
      key: 'k.png',
      url: 'http://s3.test/b/k.png',
      etag: '"e"',
      bytes: 9,
      format: 'png',
      width: 2,
      height: 2,
      timings: { queueMs: 1, renderMs: 2, uploadMs: 3 },
    };
    const node = inProcessNode({
      screenshot: () => ({ kind: 'stored', body: stored, truncated: false, timings: stored.timings, session: 'new', bestEffort: false }),
    });
    const answer = await node.shoot({ url: page, store: true });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
    expect(answer.json).toEqual(stored);
    expect(answer.headers.get('x-shotfleet-session')).toBe('new');
    expect(answer.headers.get('server-timing')).toBe('queue;dur=1, render;dur=2, upload;dur=3');
  });

  it('a client request id is echoed (cut to 128 characters) on answers and errors alike', async () => {
    const node = inProcessNode();
    const long = 'r'.repeat(300);
    expect((await node.shoot({ url: page }, { 'x-request-id': long })).headers.get('x-request-id')).toBe('r'.repeat(128));
    expect((await node.shoot({ url: 1 }, { 'x-request-id': 'mine' })).headers.get('x-request-id')).toBe('mine');
    expect((await node.request('/nope', { headers: { 'x-request-id': 'mine-404' } })).headers.get('x-request-id')).toBe('mine-404');
  });

  it("GET /screenshot maps its flat query parameters to the options and leaves out the link's own", async () => {
    const node = inProcessNode();
    const query = {
      url: page,
      width: '200',
      height: '100',
      deviceScaleFactor: '2',
      fullPage: 'true',
      format: 'jpeg',
      quality: '70',
      timezone: 'Asia/Tokyo',
      failOnHttpStatus: '404,500',
      token: 'x',
    };
    expect((await node.request(`/screenshot?${new URLSearchParams(query)}`)).status).toBe(200);
    expect(node.renders[0].options).toMatchObject({
      url: page,
      viewport: { width: 200, height: 100, deviceScaleFactor: 2 },
      fullPage: true,
      format: 'jpeg',
      quality: 70,
      timezone: 'Asia/Tokyo',
      failOnHttpStatus: [404, 500],
    });
    expect(node.renders[0].options).not.toHaveProperty('token');
    // A write to S3 takes a POST.
    expectCleanError(await node.request(`/screenshot?${new URLSearchParams({ url: page, store: 'true' })}`), 400, 'GET with store');
  });
});

describe('health, metrics and the API description', () => {
  it('/status is 200 while ready and 503 while starting, draining or without a browser; /livez always says alive', async () => {
    for (const [state, code] of [
      ['ready', 200],
      ['starting', 503],
      ['draining', 503],
      ['no_browser', 503],
    ] as const) {
      const node = inProcessNode({ status: () => ({ ...readyStatus(), status: state }) });
      const answer = await node.request('/status');
      expect(answer.status, state).toBe(code);
      expect(answer.json, state).toEqual({ ...readyStatus(), status: state });
      expect(answer.headers.get('x-shotfleet-node')).toBe(nodeId);
      expect((await node.request('/livez')).json).toEqual({ status: 'alive' });
    }
  });

  it('/metrics answers in the Prometheus text format; shotfleet_requests_total counts screenshot requests only, by status', async () => {
    const node = inProcessNode({ token });
    const metrics = await node.request('/metrics');
    expect(metrics.headers.get('content-type')).toBe(node.metrics.registry.contentType);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);

    await node.shoot({ url: page }, auth);
    await node.request(`/screenshot?${new URLSearchParams({ url: page })}`, { headers: auth });
    await node.shoot({ url: 1 }, auth);
    await node.shoot({ url: page });
    await node.request('/screenshot', { method: 'POST', headers: { ...auth, 'content-type': 'text/plain' }, body: '{}' });
    await node.request('/screenshot', { method: 'PUT', headers: auth });
    for (const path of ['/status', '/livez', '/metrics', '/openapi.json', '/docs', '/nope']) await node.request(path, { headers: auth });
    expect(metricValues(await node.metricsText(), 'shotfleet_requests_total', 'code')).toEqual({ '200': 2, '400': 1, '401': 1, '404': 1, '415': 1 });
  });

  it('/openapi.json is a valid OpenAPI document; /docs is HTML with its own CSP and no sniffing, referrer or caching', async () => {
    const node = inProcessNode({ token });
    const doc = await node.request('/openapi.json');
    expect(doc.headers.get('content-type')).toMatch(/^application\/json/);
    const result = await new Validator().validate(doc.json as Record<string, unknown>);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);

    const docs = await node.request('/docs');
    expect(docs.status).toBe(200);
    expect(docs.headers.get('content-type')).toMatch(/^text\/html/);
    expect(docs.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
    expect(docs.headers.get('x-content-type-options')).toBe('nosniff');
    expect(docs.headers.get('referrer-policy')).toBe('no-referrer');
    expect(docs.headers.get('cache-control')).toBe('no-cache');
    expect(docs.bytes.toString('utf8')).toContain('id="option-url"');
    // Open as they are, the rest still needs the token.
    expectCleanError(await node.request(`/screenshot?${new URLSearchParams({ url: page })}`), 401, 'GET /screenshot without the token');
  });
});
