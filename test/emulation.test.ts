import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertColor, decodePng } from './helpers/images.js';
import { page, startTestSite, type TestSite } from './helpers/pages.js';
import { workerNode, type WorkerNode } from './helpers/worker-node.js';
import { ok, shoot, type Answer } from './helpers/node-client.js';

const green: [number, number, number] = [20, 180, 40];
const blue: [number, number, number] = [30, 40, 210];
const red: [number, number, number] = [220, 20, 30];

/**
 * A page of N boxes side by side (100 px each), box i painted green when check i holds in the page and blue
 * otherwise; #done appears once all are painted. The checks are JavaScript expressions (awaited).
 */
function verdictPage(checks: string[], head = ''): string {
  const boxes = checks.map((_, i) => `<div id="b${i}" style="position:absolute;left:${i * 100}px;top:0;width:100px;height:100px;background:gray"></div>`);
  return page(
    boxes.join(''),
    `${head}<script>
      addEventListener('load', async () => {
        const checks = [${checks.map((c) => `async () => (${c})`).join(',')}];
        for (const [i, check] of checks.entries()) {
          let good = false;
          try { good = !!(await check()); } catch {}
          document.getElementById('b' + i).style.background = good ? 'rgb(20,180,40)' : 'rgb(30,40,210)';
        }
        const done = document.createElement('div'); done.id = 'done'; document.body.appendChild(done);
      });
    </script>`,
  );
}

function expectBoxes(shot: Answer, expected: [number, number, number][]): void {
  const image = decodePng(ok(shot));
  expected.forEach((colour, i) => {
    assertColor(image, i * 100 + 50, 50, colour);
  });
}

describe('emulation, scoped credentials and scripts: each one used, then gone from the next render on the same page', () => {
  let site: TestSite;
  let other: TestSite;
  let node: WorkerNode;
  const render = (body: Record<string, unknown>) => shoot(node.url, { viewport: { width: 400, height: 200 }, waitForSelector: '#done', ...body });

  beforeAll(async () => {
    other = await startTestSite({ '/pixel.png': { body: 'x', type: 'image/png' }, '/landing': page('<p>landed</p>') }, { host: '127.0.0.2' });
    site = await startTestSite({
      '/tz': verdictPage(["Intl.DateTimeFormat().resolvedOptions().timeZone === 'Asia/Tokyo'", 'new Date(2026, 0, 1).getTimezoneOffset() === -540']),
      '/geo': verdictPage([
        "(await navigator.permissions.query({ name: 'geolocation' })).state === 'granted'",
        `await new Promise((resolve) => navigator.geolocation.getCurrentPosition(
           (p) => resolve(Math.abs(p.coords.latitude - 48.8584) < 1e-6 && Math.abs(p.coords.longitude - 2.2945) < 1e-6),
           () => resolve(false), { timeout: 1500 }))`,
      ]),
      '/hop': { body: '', status: 302, headers: { location: `${other.url}/landing` } },
      '/script-target': verdictPage(["localStorage.getItem('touched') === null", 'window.touched === undefined']),
    });
    // Pages that paint what the server saw: the request's language, its credentials.
    site.route('/locale', (req, res) => {
      const acceptLanguage = String(req.headers['accept-language'] ?? '');
      res
        .writeHead(200, { 'content-type': 'text/html' })
        .end(
          verdictPage([
            `${JSON.stringify(acceptLanguage)}.startsWith('fr-CH')`,
            "navigator.language === 'fr-CH'",
            "new Intl.NumberFormat().resolvedOptions().locale.startsWith('fr')",
            "(1234.5).toLocaleString() === (1234.5).toLocaleString('fr-CH')",
          ]),
        );
    });
    site.route('/cred', (req, res) => {
      const sent = req.headers['x-secret'] === 's3cret';
      res
        .writeHead(200, { 'content-type': 'text/html' })
        .end(verdictPage([String(sent)], `<link rel="preload" as="image" href="${other.url}/pixel.png"><img src="${other.url}/pixel.png">`));
    });
    site.route('/private', (req, res) => {
      if (req.headers.authorization !== `Basic ${Buffer.from('ann:pa:ss word').toString('base64')}`) {
        res
          .writeHead(401, { 'www-authenticate': 'Basic realm="test"', 'content-type': 'text/html' })
          .end(page('', '<style>body{background:rgb(220,20,30);height:100vh}</style>'));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/html' }).end(verdictPage(['true'], `<img src="${other.url}/pixel.png">`));
    });
    node = await workerNode();
  });

  afterAll(async () => {
    await site?.close();
    await other?.close();
  });

  it("timezone sets Intl and Date; the next render is back on the browser's own zone", async () => {
    expectBoxes(await render({ url: `${site.url}/tz`, timezone: 'Asia/Tokyo' }), [green, green]);
    expectBoxes(await render({ url: `${site.url}/tz` }), [blue, blue]);
  });

  it('locale sets Accept-Language, navigator.language and the Intl default; the next render has none of it', async () => {
    expectBoxes(await render({ url: `${site.url}/locale`, locale: 'fr-CH' }), [green, green, green, green]);
    expect(site.requests('/locale').at(-1)!.headers['accept-language']).toMatch(/^fr-CH/);
    expectBoxes(await render({ url: `${site.url}/locale` }), [blue, blue, blue, blue]);
    expect(site.requests('/locale').at(-1)!.headers['accept-language'] ?? '').not.toContain('fr');
  });

  it("locale works with a userAgent of the client's too", async () => {
    expectBoxes(await render({ url: `${site.url}/locale`, locale: 'fr-CH', userAgent: 'shotfleet-locale-test/1' }), [green, green, green, green]);
    expect(site.requests('/locale').at(-1)!.headers['user-agent']).toBe('shotfleet-locale-test/1');
  });

  it('geolocation grants the permission and gives the position; the next render has neither', async () => {
    expectBoxes(await render({ url: `${site.url}/geo`, geolocation: { latitude: 48.8584, longitude: 2.2945 } }), [green, green]);
    expectBoxes(await render({ url: `${site.url}/geo` }), [blue, blue]);
  });

  it("headers reach the page URL's origin only: not its third-party resources, not a host it redirects to, not the next render", async () => {
    const before = other.requests('/pixel.png').length;
    expectBoxes(await render({ url: `${site.url}/cred`, headers: { 'X-Secret': 's3cret' } }), [green]);
    const thirdParty = other.requests('/pixel.png').slice(before);
    expect(thirdParty.length).toBeGreaterThan(0);
    for (const seen of thirdParty) expect(seen.headers['x-secret']).toBeUndefined();

    const hop = await shoot(node.url, { url: `${site.url}/hop`, headers: { 'X-Secret': 's3cret' } });
    ok(hop);
    expect(site.requests('/hop').at(-1)!.headers['x-secret']).toBe('s3cret');
    expect(other.requests('/landing').at(-1)!.headers['x-secret']).toBeUndefined();

    expectBoxes(await render({ url: `${site.url}/cred` }), [blue]);
    expect(site.requests('/cred').at(-1)!.headers['x-secret']).toBeUndefined();
  });

  it("authenticate answers the page's origin only, and the next render is not let in", async () => {
    const before = other.requests('/pixel.png').length;
    const shot = await render({ url: `${site.url}/private`, authenticate: { username: 'ann', password: 'pa:ss word' } });
    expectBoxes(shot, [green]);
    expect(shot.headers.get('x-shotfleet-target-status')).toBe('200');
    const thirdParty = other.requests('/pixel.png').slice(before);
    expect(thirdParty.length).toBeGreaterThan(0);
    for (const seen of thirdParty) expect(seen.headers.authorization).toBeUndefined();

    // Headless Chromium gives up on a challenge it has no credentials for (net::ERR_INVALID_AUTH_CREDENTIALS).
    const seen = site.requests('/private').length;
    const after = await shoot(node.url, { url: `${site.url}/private`, viewport: { width: 400, height: 200 } });
    expect(after.status).toBe(502);
    expect(after.json?.error?.message).toContain('ERR_INVALID_AUTH_CREDENTIALS');
    expect(site.requests('/private').length).toBeGreaterThan(seen);
    for (const request of site.requests('/private').slice(seen)) expect(request.headers.authorization).toBeUndefined();
  });

  it('scripts run after load and their promise is awaited; nothing they did is seen by the next render', async () => {
    const script = `localStorage.setItem('touched', '1'); window.touched = 1;
      new Promise((done) => setTimeout(() => { document.getElementById('b1').style.background = 'rgb(220,20,30)'; done(); }, 300))`;
    const image = decodePng(ok(await render({ url: `${site.url}/script-target`, scripts: script })));
    // Box 0 was painted at load (before the script: green), box 1 by the script's promise (red).
    assertColor(image, 50, 50, green);
    assertColor(image, 150, 50, red);
    expectBoxes(await render({ url: `${site.url}/script-target` }), [green, green]);
  });

  it('a script that throws or rejects is a 422 script_failed carrying its message', async () => {
    for (const scripts of [
      "throw new Error('boom at line one')",
      "Promise.reject(new Error('boom later'))",
      'this is not javascript',
      'location.reload(); new Promise(() => {})',
    ]) {
      const shot = await render({ url: `${site.url}/script-target`, scripts });
      expect(shot.status, scripts).toBe(422);
      expect(shot.json?.error?.code).toBe('script_failed');
      expect(String(shot.json?.error?.details?.message)).toMatch(/boom|SyntaxError|Unexpected|navigated|destroyed|closed/i);
    }
    // The slot still renders afterwards.
    expectBoxes(await render({ url: `${site.url}/script-target` }), [green, green]);
  });

  it('bad values are a 400 naming the field', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ timezone: 'Mars/Olympus' }, 'timezone'],
      [{ locale: 'not a locale!' }, 'locale'],
      [{ geolocation: { latitude: 91, longitude: 0 } }, 'geolocation'],
      [{ geolocation: { latitude: 1 } }, 'geolocation'],
      [{ authenticate: { username: 'a:b', password: 'x' } }, 'authenticate'],
      [{ authenticate: { username: 'a', password: 'x' }, headers: { Authorization: 'Bearer t' } }, 'authenticate'],
      [{ scripts: '1', javascript: false }, 'scripts'],
      [{ scripts: 42 }, 'scripts'],
    ];
    for (const [fields, name] of cases) {
      const shot = await shoot(node.url, { url: `${site.url}/tz`, ...fields });
      expect(shot.status, JSON.stringify(fields)).toBe(400);
      expect(JSON.stringify(shot.json?.error?.details), JSON.stringify(fields)).toContain(name);
    }
    for (const fields of [{ headers: { 'X-Secret': 'x' } }, { authenticate: { username: 'a', password: 'b' } }]) {
      const shot = await shoot(node.url, { html: '<p>x</p>', ...fields });
      expect(shot.status, JSON.stringify(fields)).toBe(400);
    }
  });
});
