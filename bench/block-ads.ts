/**
 * What blockAds saves on a page with ads: the same news-like page rendered by `shotfleet serve` over HTTP with and
 * without `blockAds`, in alternating runs so machine noise hits both alike.
 *
 * The page (on 127.0.0.1) has text, a picture, and what ad-funded pages carry: an ad script (AdButler-shaped path),
 * a tracker (Quantcast-shaped), a social widget (AddThis-shaped) and four ad iframes (AdvertPro-shaped), all from a
 * second host (127.0.0.2) that answers after `--ad-latency-ms` (ad servers auction before they answer) and whose ad
 * frames load a heavy creative each. waitUntil is `load`, so the render waits for whatever the page loads.
 *
 *   npm run bench:block-ads -- [--pages 2] [--runs 3] [--shots 20] [--ad-latency-ms 300] [--out FILE]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PNG } from 'pngjs';
import { page, startTestSite, type Route } from '../test/helpers/pages.js';
import { repoRoot, startShotfleet } from '../test/helpers/processes.js';
import { quantile, round } from './lib/stats.js';

const { values: flags } = parseArgs({
  options: {
    pages: { type: 'string', default: '2' },
    runs: { type: 'string', default: '3' },
    shots: { type: 'string', default: '20' },
    'ad-latency-ms': { type: 'string', default: '300' },
    out: { type: 'string', default: path.join(repoRoot, 'bench/results/block-ads.json') },
  },
});
const pages = Number(flags.pages);
const runs = Math.max(1, Number(flags.runs));
const shotsPerRun = Number(flags.shots);
const adLatencyMs = Number(flags['ad-latency-ms']);

/** A noisy picture, so encoding has real work (a flat colour compresses to nothing). */
function picture(width: number, height: number, seed: number): Buffer {
  const png = new PNG({ width, height });
  let s = seed;
  for (let i = 0; i < png.data.length; i += 4) {
    s = (s * 16807) % 2147483647;
    png.data.set([s & 255, (s >> 8) & 255, (s >> 16) & 255, 255], i);
  }
  return PNG.sync.write(png);
}

const late =
  (body: string | Buffer, type: string): Route =>
  (_req, res) => {
    setTimeout(() => res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' }).end(body), adLatencyMs);
  };

const creative = picture(300, 250, 7);
const ads = await startTestSite(
  {
    '/adbutler/adserve.js': late(`document.querySelectorAll('.slot').forEach((s) => (s.style.outline = '2px solid red'));`, 'text/javascript'),
    '/quant.js': late('window.__qc = 1;', 'text/javascript'),
    '/js/addthis_widget.js': late('window.addthis = {};', 'text/javascript'),
    '/advertpro/servlet/view/banner': late(page('<img src="/advertpro/servlet/view/creative.png" width="300" height="250">'), 'text/html'),
    '/advertpro/servlet/view/creative.png': late(creative, 'image/png'),
  },
  { host: '127.0.0.2' },
);
const article = Array.from(
  { length: 12 },
  (_, i) => `<p>Paragraph ${i + 1}: ${'Lorem ipsum dolor sit amet, consectetur adipiscing elit. '.repeat(6)}</p>`,
).join('');
const site = await startTestSite({
  '/news': page(
    `<main style="width:760px;float:left;font:16px/1.5 sans-serif;padding:16px"><h1>Headline</h1><img src="/photo.png" width="720" height="400">${article}</main>
     <aside style="float:left;width:320px">${Array.from({ length: 4 }, () => `<iframe class="slot" src="${ads.url}/advertpro/servlet/view/banner" width="300" height="250" style="border:0;display:block;margin:8px"></iframe>`).join('')}</aside>
     <script src="${ads.url}/adbutler/adserve.js"></script><script src="${ads.url}/quant.js"></script><script src="${ads.url}/js/addthis_widget.js"></script>`,
  ),
  '/photo.png': { body: picture(720, 400, 3), type: 'image/png' },
});

const node = await startShotfleet('serve', { SHOTFLEET_PAGES: String(pages), SHOTFLEET_ALLOW_HOSTS: '127.0.0.1,127.0.0.2' }, { timeoutMs: 120_000 });

async function shot(blockAds: boolean): Promise<number> {
  const started = performance.now();
  const res = await fetch(`${node.url}/screenshot`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ url: `${site.url}/news`, format: 'jpeg', blockAds }),
  });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`render answered ${res.status}`);
  return performance.now() - started;
}

/** One run: `shotsPerRun` renders spread over `pages` workers; shots/s and each render's latency. */
async function run(blockAds: boolean): Promise<{ perSecond: number; latencies: number[] }> {
  await Promise.all(Array.from({ length: pages }, () => shot(blockAds)));
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: pages }, async () => {
      while (next++ < shotsPerRun) latencies.push(await shot(blockAds));
    }),
  );
  return { perSecond: (latencies.length * 1000) / (performance.now() - started), latencies };
}

const results: Record<'plain' | 'blockAds', { perSecond: number[]; latencies: number[] }> = {
  plain: { perSecond: [], latencies: [] },
  blockAds: { perSecond: [], latencies: [] },
};
const hitsBefore = ads.hits('/advertpro/servlet/view/banner');
for (let r = 0; r < runs; r++) {
  for (const mode of r % 2 === 0 ? (['plain', 'blockAds'] as const) : (['blockAds', 'plain'] as const)) {
    const { perSecond, latencies } = await run(mode === 'blockAds');
    results[mode].perSecond.push(perSecond);
    results[mode].latencies.push(...latencies);
    console.error(`run ${r + 1} ${mode}: ${round(perSecond, 2)} shots/s`);
  }
}
const adFramesServed = ads.hits('/advertpro/servlet/view/banner') - hitsBefore;

await node.stop();
await Promise.all([site.close(), ads.close()]);

const summary = Object.fromEntries(
  Object.entries(results).map(([mode, r]) => [
    mode,
    { shotsPerSecond: round(quantile(r.perSecond, 0.5), 2), p50Ms: round(quantile(r.latencies, 0.5), 0), p95Ms: round(quantile(r.latencies, 0.95), 0) },
  ]),
) as Record<'plain' | 'blockAds', { shotsPerSecond: number; p50Ms: number; p95Ms: number }>;

console.log(`blockAds bench: ${pages} pages = concurrency, ${runs} runs × ${shotsPerRun} shots each way, jpeg, ad servers answering after ${adLatencyMs} ms`);
console.log('| mode | shots/s (median run) | p50 ms | p95 ms |\n|---|---|---|---|');
for (const [mode, s] of Object.entries(summary)) console.log(`| ${mode} | ${s.shotsPerSecond} | ${s.p50Ms} | ${s.p95Ms} |`);
console.log(`ad frames served: ${adFramesServed} (all from the plain renders: ${runs * (shotsPerRun + pages) * 4} expected)`);

await mkdir(path.dirname(flags.out), { recursive: true });
await writeFile(
  flags.out,
  `${JSON.stringify({ at: new Date().toISOString(), machine: { cpus: os.availableParallelism(), load: os.loadavg() }, settings: { pages, runs, shotsPerRun, adLatencyMs }, summary, adFramesServed }, null, 2)}\n`,
);
