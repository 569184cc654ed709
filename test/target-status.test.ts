import { readFileSync } from 'node:fs';
import type http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertColor, css, decodePng } from './helpers/images.js';
import { page, startTestSite, type TestSite } from './helpers/pages.js';
import { startShotfleet, type RunningProcess } from './helpers/processes.js';
import { s3NodeEnv, startS3, type RunningS3 } from './helpers/s3.js';
import { ok, shoot } from './helpers/node-client.js';

const green = [20, 180, 40] as const;
const red = [220, 20, 30] as const;
const rgb = (c: readonly number[]) => [c[0], c[1], c[2]] as [number, number, number];

// Waits that are never met are waited out to their deadline: short ones, yet above what a small render takes on a
// loaded 2-core machine (admission refuses a request whose render estimate does not fit its deadline).
const strictTimeoutMs = 4000;
// With bestEffort the waits end a quarter of the timeout (at least 1 s) before the deadline, for the capture.
const bestEffortTimeoutMs = 5000;
/** Only the corner pixel matters in the renders that wait out their deadline: small ones keep the capture quick. */
const small = { width: 64, height: 48 };
const solid = (colour: readonly number[], extra = '') => page(extra, `<style>html,body{height:100%;background:${css(colour)}}</style>`);

/** A glyph of DejaVu Sans that fills its box: once the font has loaded, the box is red. */
const lateFontPage = page(
  '<div id="text" style="position:absolute;left:0;top:0;font:200px/1 Late;color:rgb(220,20,30)"></div>',
  `<style>@font-face{font-family:Late;src:url(/late.ttf);font-display:block}</style>
   <script>
     // The text (and so the font request) only appears after load: the load event cannot wait for it.
     addEventListener('load', () => { document.getElementById('text').textContent = '\u2588\u2588'; });
   </script>`,
);

describe('target status, failOnHttpStatus, bestEffort and web fonts (a 1-page node)', () => {
  let site: TestSite;
  let node: RunningProcess;
  let s3: RunningS3;
  const hung: http.ServerResponse[] = [];

  beforeAll(async () => {
    site = await startTestSite({
      '/ok': solid(green),
      '/missing': { body: solid(red, '<p>not here</p>'), status: 404 },
      '/broken': { body: solid(red), status: 503 },
      '/moved': { body: '', status: 302, headers: { location: '/missing' } },
      '/to-ok': { body: '', status: 301, headers: { location: '/ok' } },
      // One image that never finishes: the load event never comes.
      '/stuck': solid(green, '<img src="/never.png" width="10" height="10">'),
      '/never.png': (_req, res) => {
        res.writeHead(200, { 'content-type': 'image/png' });
        hung.push(res);
      },
      '/late-font': lateFontPage,
      '/late.ttf': (_req, res) => {
        setTimeout(() => res.writeHead(200, { 'content-type': 'font/ttf' }).end(readFileSync('/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf')), 1500);
      },
    });
    s3 = await startS3();
    node = await startShotfleet('serve', {
      ...s3NodeEnv(s3),
      SHOTFLEET_PAGES: '1',
      SHOTFLEET_ALLOW_HOSTS: '127.0.0.1',
    });
  });

  afterAll(async () => {
    for (const res of hung) res.destroy();
    await node?.stop();
    await s3?.stop();
    await site?.close();
  });

  it('says the final document status after redirects, and captures error pages as they are by default', async () => {
    const okShot = await shoot(node.url, { url: `${site.url}/to-ok` });
    assertColor(decodePng(ok(okShot)), 5, 5, rgb(green));
    expect(okShot.headers.get('x-shotfleet-target-status')).toBe('200');

    const missing = await shoot(node.url, { url: `${site.url}/moved` });
    assertColor(decodePng(ok(missing)), 5, 5, rgb(red));
    expect(missing.headers.get('x-shotfleet-target-status')).toBe('404');

    const html = await shoot(node.url, { html: solid(green) });
    expect(html.status).toBe(200);
    expect(html.headers.get('x-shotfleet-target-status')).toBeNull();
  });

  it('failOnHttpStatus: true refuses any status ≥ 400 with 502 target_http_error and details.status', async () => {
    const shot = await shoot(node.url, { url: `${site.url}/moved`, failOnHttpStatus: true });
    expect(shot.status).toBe(502);
    expect(shot.json?.error?.code).toBe('target_http_error');
    expect(shot.json?.error?.details?.status).toBe(404);
    expect(shot.headers.get('x-shotfleet-target-status')).toBe('404');

    const fine = await shoot(node.url, { url: `${site.url}/ok`, failOnHttpStatus: true });
    assertColor(decodePng(ok(fine)), 5, 5, rgb(green));
  });

  it('failOnHttpStatus as a list refuses only the statuses listed', async () => {
    const listed = await shoot(node.url, { url: `${site.url}/broken`, failOnHttpStatus: [500, 503] });
    expect(listed.status).toBe(502);
    expect(listed.json?.error?.details?.status).toBe(503);
    const unlisted = await shoot(node.url, { url: `${site.url}/missing`, failOnHttpStatus: [500, 503] });
    assertColor(decodePng(ok(unlisted)), 5, 5, rgb(red));
  });

  it('a refused status writes no object to S3', async () => {
    const before = await s3.keys();
    const shot = await shoot(node.url, { url: `${site.url}/missing`, failOnHttpStatus: true, store: true, key: 'refused/404.png' });
    expect(shot.status).toBe(502);
    expect(await s3.exists('refused/404.png')).toBe(false);
    expect(await s3.keys()).toEqual(before);
    // The same request for a page that answers 200 is stored: the check is what kept the other one out.
    const stored = await shoot(node.url, { url: `${site.url}/ok`, failOnHttpStatus: true, store: true, key: 'kept/200.png' });
    expect(stored.status).toBe(200);
    expect(await s3.exists('kept/200.png')).toBe(true);
  });

  it('bad failOnHttpStatus values are a 400 naming the field', async () => {
    for (const failOnHttpStatus of ['yes', [99], [], [404.5]]) {
      const shot = await shoot(node.url, { url: `${site.url}/ok`, failOnHttpStatus });
      expect(shot.status, JSON.stringify(failOnHttpStatus)).toBe(400);
      expect(JSON.stringify(shot.json?.error?.details)).toContain('failOnHttpStatus');
    }
    const html = await shoot(node.url, { html: '<p>x</p>', failOnHttpStatus: true });
    expect(html.status).toBe(400);
  });

  it('a page with a resource that never finishes: 504 by default (with the target status), an image with bestEffort', async () => {
    const strict = await shoot(node.url, { url: `${site.url}/stuck`, timeout: strictTimeoutMs, viewport: small });
    expect(strict.status).toBe(504);
    expect(strict.headers.get('x-shotfleet-target-status')).toBe('200');
    expect(strict.headers.get('x-shotfleet-best-effort')).toBeNull();

    const loose = await shoot(node.url, { url: `${site.url}/stuck`, timeout: bestEffortTimeoutMs, viewport: small, bestEffort: true });
    assertColor(decodePng(ok(loose)), 5, 5, rgb(green));
    expect(loose.headers.get('x-shotfleet-best-effort')).toBe('true');
    expect(loose.headers.get('x-shotfleet-target-status')).toBe('200');
  });

  it('bestEffort covers waitForSelector too, and says nothing when every wait was met', async () => {
    const missing = await shoot(node.url, {
      url: `${site.url}/ok`,
      waitForSelector: '#never',
      timeout: bestEffortTimeoutMs,
      viewport: small,
      bestEffort: true,
    });
    assertColor(decodePng(ok(missing)), 5, 5, rgb(green));
    expect(missing.headers.get('x-shotfleet-best-effort')).toBe('true');

    const met = await shoot(node.url, { url: `${site.url}/ok`, bestEffort: true });
    ok(met);
    expect(met.headers.get('x-shotfleet-best-effort')).toBeNull();
  });

  it('waits for web fonts that arrive after load: the text is drawn', async () => {
    const image = decodePng(ok(await shoot(node.url, { url: `${site.url}/late-font`, viewport: { width: 400, height: 300 } })));
    // Inside the first full-block glyph (200 px font): red only if the font was there at capture.
    assertColor(image, 40, 100, rgb(red), 30);
  });
});
