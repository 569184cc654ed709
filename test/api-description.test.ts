import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import Ajv2020 from 'ajv/dist/2020.js';
import puppeteer, { type Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docsPage } from '../src/api/docs-page.js';
import { openApiDocument } from '../src/api/openapi.js';
import { defaultLimits, readmeWithGeneratedTables } from '../src/api/readme-options.js';
import { requestSurface } from '../src/api/request-schema.js';
import { errorStatus, type ErrorCode } from '../src/errors/shot-error.js';
import { nodeStates } from '../src/api/node-states.js';
import { createOptionsSchema } from '../src/request/options.js';
import { queryParameters } from '../src/request/query-parameters.js';
import { sandboxArgs } from '../src/policy/index.js';
import { chromeArgs } from '../src/render-pool/launch.js';
import { decodePng, near, type Rgba } from './helpers/images.js';
import { startTestSite, type TestSite } from './helpers/pages.js';
import { repoRoot, startShotfleet, type RunningProcess } from './helpers/processes.js';
import { waitFor } from './helpers/wait.js';

const limits = defaultLimits();
const input = { limits, version: '0.0.0-test', sessionCookie: 'shot_session', nodeStates };
type Doc = ReturnType<typeof openApiDocument>;
type Operation = { responses: Record<string, { content?: Record<string, { examples?: Record<string, unknown> }> }>; parameters?: { name: string }[] };

function operations(doc: Doc): Operation[] {
  return Object.values(doc.paths as Record<string, Record<string, unknown>>).flatMap((item) =>
    ['get', 'post', 'delete', 'put'].filter((m) => item[m]).map((m) => item[m] as Operation),
  );
}

async function validateOpenApi(doc: unknown) {
  return new Validator().validate(structuredClone(doc) as Record<string, unknown>);
}

describe('GET /openapi.json, generated', () => {
  const doc = openApiDocument(input);

  it('validates as OpenAPI 3.1 (and the validator does reject a broken one)', async () => {
    const result = await validateOpenApi(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(doc.openapi).toBe('3.1.0');
    const broken = structuredClone(doc) as Record<string, unknown>;
    delete broken.info;
    expect((await validateOpenApi(broken)).valid).toBe(false);
  });

  it('documents every option of the request schema, each with a description and an example', () => {
    const schema = createOptionsSchema(limits);
    const body = doc.components.schemas.RenderOptions as {
      properties: Record<string, { description?: string; examples?: unknown[]; properties?: Record<string, { description?: string }> }>;
    };
    expect(Object.keys(body.properties)).toEqual(Object.keys(schema.shape));
    for (const [name, option] of Object.entries(body.properties)) {
      expect(option.description, `${name}: add .meta({ description, examples }) in src/request/options.ts`).toBeTruthy();
      expect(option.examples?.length, `${name}: add examples to its .meta`).toBeGreaterThan(0);
      for (const [inner, field] of Object.entries(option.properties ?? {})) {
        if (name === 'viewport') expect(field.description, `${name}.${inner}`).toBeTruthy();
      }
    }
    // The node's own limits are in the schema: a node with a smaller viewport cap says so.
    const small = openApiDocument({ ...input, limits: { ...limits, maxViewport: 1000 } });
    expect(JSON.stringify(small.components.schemas.RenderOptions)).toContain('"maximum":1000');
  });

  it('lists every error code of the catalog under its HTTP status', () => {
    const seen = new Map<string, number>();
    for (const op of operations(doc)) {
      for (const [status, response] of Object.entries(op.responses)) {
        for (const code of Object.keys(response.content?.['application/json']?.examples ?? {})) seen.set(code, Number(status));
      }
    }
    for (const [code, status] of Object.entries(errorStatus)) expect(seen.get(code), code).toBe(status);
    const screenshot = (doc.paths['/screenshot'] as { post: Operation }).post;
    for (const code of Object.keys(errorStatus) as ErrorCode[]) {
      if (code !== 'not_found') expect(screenshot.responses[String(errorStatus[code])].content!['application/json'].examples![code], code).toBeDefined();
    }
  });

  it("GET /screenshot's parameters are the ones the node maps", () => {
    const get = (doc.paths['/screenshot'] as { get: Operation }).get;
    expect(get.parameters!.map((p) => p.name)).toEqual(queryParameters(createOptionsSchema(limits)).map((p) => p.name));
  });

  it('has the hub API and the store response', () => {
    for (const route of ['/nodes', '/nodes/{id}', '/haproxy.cfg', '/status', '/livez', '/metrics', '/docs', '/openapi.json']) {
      expect(Object.keys(doc.paths)).toContain(route);
    }
    expect(doc.components.schemas.StoredImage.required).toEqual(['bucket', 'key', 'url', 'etag', 'bytes', 'format', 'width', 'height', 'timings']);
  });
});

describe('the README tables', () => {
  it('has the options and settings tables generated from their schemas (run `npm run docs:readme` after changing one)', () => {
    const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    expect(readme).toBe(readmeWithGeneratedTables(readme));
    for (const name of Object.keys(createOptionsSchema(limits).shape)) expect(readme).toContain(`| \`${name}\` |`);
  });
});

describe('GET /docs, generated', () => {
  const page = docsPage(requestSurface(limits), '0.0.0-test');

  it('documents every option and loads nothing from elsewhere', () => {
    for (const name of Object.keys(createOptionsSchema(limits).shape)) expect(page.html).toContain(`id="option-${name}"`);
    expect(page.html).not.toMatch(/\b(src|href)=["']?(https?:)?\/\//i);
    expect(page.html).not.toMatch(/@import|url\(/);
  });

  it('its CSP allows exactly its own inline script and stylesheet, by hash', () => {
    const hash = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
    const script = /<script>([\s\S]*?)<\/script>/.exec(page.html)![1];
    const style = /<style>([\s\S]*?)<\/style>/.exec(page.html)![1];
    expect(page.csp).toContain(`script-src ${hash(script)};`);
    expect(page.csp).toContain(`style-src ${hash(style)};`);
    expect(page.csp).toMatch(/default-src 'none'/);
    expect(page.html.match(/<script/g)).toHaveLength(1);
    expect(page.html).not.toMatch(/\son[a-z]+=/i);
  });

  it('escapes what the schema says: markup in a description, an enum value or an example stays text', () => {
    const surface = requestSurface(limits);
    const hostile = '"><script>alert(1)</script>';
    const format = surface.body.properties.format as { description?: string; enum?: string[] };
    surface.body.properties.format = { ...format, description: hostile, enum: [...(format.enum ?? []), hostile] };
    surface.body.properties.delay = { ...surface.body.properties.delay, examples: [hostile] };
    const escaped = docsPage(surface, `<b>${hostile}`).html;
    expect(escaped.match(/<script/g)).toHaveLength(1);
    expect(escaped).toContain('&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(escaped).toContain('<title>shotfleet &lt;b&gt;');
  });
});

describe('/openapi.json and /docs on a real node, tried in real Chromium', () => {
  const token = 'docs-test-token';
  const top: [number, number, number] = [220, 40, 40];
  const bottom: [number, number, number] = [30, 90, 200];
  let node: RunningProcess;
  let site: TestSite;
  let browser: Browser;

  beforeAll(async () => {
    site = await startTestSite({
      '/two-colours': `<!doctype html><style>html,body{margin:0;height:100%}div{height:50%}</style><div style="background:rgb(${top})"></div><div style="background:rgb(${bottom})"></div>`,
    });
    node = await startShotfleet('serve', { SHOTFLEET_ALLOW_HOSTS: '127.0.0.1', SHOTFLEET_TOKEN: token, SHOTFLEET_PAGES: '1' }, { timeoutMs: 90_000 });
    await waitFor('the node ready (/status 200)', async () => (await fetch(`${node.url}/status`)).status === 200, 90_000);
    browser = await puppeteer.launch({
      executablePath: '/usr/lib/chromium/chromium',
      headless: true,
      pipe: true,
      // This browser is the test's client. Chromium 156 preloads its WebUI omnibox popup in renderers of their own
      // (~3 s of CPU at launch) though headless never shows it; puppeteer merges this list into its own.
      args: [...chromeArgs, ...sandboxArgs(false), '--disable-features=WebUIOmniboxPopup,WebUIOmniboxAimPopup'],
    });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await node?.stop();
    await site?.close();
  });

  it('both open without the token while the rest needs it; the document validates; real answers fit its schemas', async () => {
    const docRes = await fetch(`${node.url}/openapi.json`);
    expect(docRes.status).toBe(200);
    const doc = (await docRes.json()) as Doc;
    expect((await validateOpenApi(doc)).valid).toBe(true);
    const docs = await fetch(`${node.url}/docs`);
    expect(docs.status).toBe(200);
    expect(docs.headers.get('content-type')).toMatch(/^text\/html/);
    expect(docs.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
    expect((await fetch(`${node.url}/screenshot?url=${encodeURIComponent(`${site.url}/two-colours`)}`)).status).toBe(401);

    const ajv = new Ajv2020({ strict: false });
    for (const [name, schema] of Object.entries(doc.components.schemas)) ajv.addSchema(schema as object, `#/components/schemas/${name}`);
    const check = (name: string, value: unknown) => {
      const validate = ajv.getSchema(`#/components/schemas/${name}`)!;
      expect(validate(value), `${name}: ${JSON.stringify(validate.errors)}`).toBe(true);
    };
    check('NodeStatus', await (await fetch(`${node.url}/status`)).json());
    const bad = await fetch(`${node.url}/screenshot?url=${encodeURIComponent(`${site.url}/two-colours`)}&waitUntil=never`, { headers: { token } });
    expect(bad.status).toBe(400);
    check('Error', await bad.json());
  });

  it('the /docs form renders a local page: the image shown has its colours; an invalid option shows the 400', async () => {
    const page = await browser.newPage();
    const problems: string[] = [];
    const elsewhere: string[] = [];
    page.on('console', (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) problems.push(message.text());
    });
    page.on('pageerror', (err) => problems.push(String(err)));
    page.on('request', (request) => {
      if (!request.url().startsWith(node.url) && !request.url().startsWith('blob:')) elsewhere.push(request.url());
    });
    await page.setViewport({ width: 1200, height: 900 });
    await page.goto(`${node.url}/docs`, { waitUntil: 'load' });

    await page.type('input[name=url]', `${site.url}/two-colours`);
    await page.type('input[name=token]', token);
    await page.click('button[type=submit]');
    await page.waitForFunction(
      () => {
        const img = document.querySelector<HTMLImageElement>('#result-image');
        return !!img && !img.hidden && img.complete && img.naturalWidth > 0;
      },
      { timeout: 60_000 },
    );
    const natural = await page.$eval('#result-image', (img) => [(img as HTMLImageElement).naturalWidth, (img as HTMLImageElement).naturalHeight]);
    expect(natural).toEqual([1280, 800]);
    const shown = decodePng(Buffer.from(await (await page.$('#result-image'))!.screenshot({ type: 'png' })));
    const sample = (fx: number, fy: number): Rgba => shown.at(Math.floor(shown.width * fx), Math.floor(shown.height * fy));
    expect(near(sample(0.5, 0.2), top, 12), `top: ${sample(0.5, 0.2)}`).toBe(true);
    expect(near(sample(0.5, 0.8), bottom, 12), `bottom: ${sample(0.5, 0.8)}`).toBe(true);
    expect(site.hits('/two-colours')).toBeGreaterThan(0);

    await page.type('textarea[name=options]', '{"colour": "red"}');
    await page.click('button[type=submit]');
    await page.waitForFunction(() => document.querySelector('#result-json')?.textContent?.includes('invalid_request'), { timeout: 30_000 });
    const error = JSON.parse(await page.$eval('#result-json', (el) => el.textContent ?? '')) as { error: { code: string; message: string } };
    expect(error.error.code).toBe('invalid_request');
    expect(error.error.message).toContain('colour');
    expect(await page.$eval('#result-status', (el) => el.textContent)).toMatch(/^400\b/);
    expect(await page.$eval('#result-image', (img) => (img as HTMLImageElement).hidden)).toBe(true);

    expect(problems).toEqual([]);
    expect(elsewhere).toEqual([]);
    await page.close();
  });
});
