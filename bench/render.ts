/**
 * The speed proof (issue 2): how close the node comes to what this machine can do at all.
 *
 *   (a) bare — puppeteer-core on pre-opened windows, no isolation, capture on each page's CDP session: the limit;
 *   (b) node — `shotfleet serve` over HTTP with the URL policy and its proxy on, and a wipe between renders.
 *
 * Both at the same concurrency (= pages), on a multi-host local corpus with CSS and images, for png and jpeg, in
 * alternating runs so machine noise hits both alike. Prints a table and writes bench/results/render.json.
 *
 *   npm run bench -- [--pages 2] [--runs 3] [--shots 30] [--formats png,jpeg] [--hosts 3] [--node-env K=V,…] [--out FILE]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Browser, CDPSession, Page } from 'puppeteer-core';
import { launchBrowser, type LaunchedBrowser } from '../src/render-pool/launch.js';
import { repoRoot, startShotfleet, type RunningProcess } from '../test/helpers/processes.js';
import { startCorpus } from './lib/corpus.js';
import { quantile, round } from './lib/stats.js';
import { imageSize } from 'image-size';

const { values: flags } = parseArgs({
  options: {
    pages: { type: 'string', default: '2' },
    runs: { type: 'string', default: '3' },
    shots: { type: 'string', default: '30' },
    formats: { type: 'string', default: 'png,jpeg' },
    hosts: { type: 'string', default: '3' },
    'chrome-path': { type: 'string', default: '/usr/lib/chromium/chromium' },
    out: { type: 'string', default: path.join(repoRoot, 'bench/results/render.json') },
    /** Extra node settings, e.g. SHOTFLEET_ALLOW_PRIVATE=true to measure without the policy proxy. */
    'node-env': { type: 'string', default: '' },
  },
});
const nodeEnv = Object.fromEntries(
  flags['node-env']
    .split(',')
    .filter(Boolean)
    .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
);

const pages = Number(flags.pages);
const runs = Math.max(1, Number(flags.runs));
/** Measured shots per run (all workers together), after one warm-up shot per worker. */
const shotsPerRun = Number(flags.shots);
const formats = flags.formats.split(',') as Format[];
const jpegQuality = 80;
/** A run that takes longer than this is cut short, so the whole bench stays bounded. */
const runBudgetMs = 45_000;

type Format = 'png' | 'jpeg';
type Mode = 'bare' | 'node';
/** One shot: takes a URL, resolves when the image bytes are in hand. */
type Shooter = (url: string, format: Format) => Promise<Buffer>;

interface RunResult {
  shots: number;
  errors: number;
  seconds: number;
  throughput: number;
  p50Ms: number;
  p95Ms: number;
  meanBytes: number;
  /** Width×height of the images: both sides must make the same picture for the ratio to mean anything. */
  size: string;
}

const corpus = await startCorpus(Number(flags.hosts), { assets: true });

/** Workers take URLs in turn from one shared counter, so consecutive shots on a page go to different sites. */
async function runClosedLoop(shoot: Shooter, format: Format, offset: number): Promise<RunResult> {
  await Promise.all(Array.from({ length: pages }, (_, w) => shoot(corpus.urls[(offset + w) % corpus.urls.length], format)));
  const latencies: number[] = [];
  let bytes = 0;
  let errors = 0;
  const sizes = new Set<string>();
  let next = offset + pages;
  let issued = 0;
  const started = performance.now();
  const deadline = started + runBudgetMs;
  await Promise.all(
    Array.from({ length: pages }, async () => {
      while (issued < shotsPerRun && performance.now() < deadline) {
        issued++;
        const url = corpus.urls[next++ % corpus.urls.length];
        const t0 = performance.now();
        try {
          const image = await shoot(url, format);
          bytes += image.length;
          const { width, height } = imageSize(image);
          sizes.add(`${width}x${height}`);
          latencies.push(performance.now() - t0);
        } catch (err) {
          errors++;
          if (errors <= 3) console.error(`shot of ${url} failed: ${(err as Error).message}`);
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return {
    shots: latencies.length,
    errors,
    seconds,
    throughput: latencies.length / seconds,
    p50Ms: quantile(latencies, 0.5),
    p95Ms: quantile(latencies, 0.95),
    meanBytes: latencies.length ? bytes / latencies.length : 0,
    size: [...sizes].join(','),
  };
}

interface Bare {
  shoot: Shooter;
  close(): Promise<void>;
}

/** (a): the same Chromium and flags as the node, windows opened once, nothing wiped, no proxy, no HTTP. */
async function startBare(): Promise<Bare> {
  const launched: LaunchedBrowser = await launchBrowser(flags['chrome-path']);
  const browser: Browser = launched.browser;
  const idle: { page: Page; cdp: CDPSession }[] = [];
  for (let i = 0; i < pages; i++) {
    const page = await browser.newPage({ type: 'window', windowBounds: { width: 1280, height: 800 } });
    // The node's default viewport. Without it the page gets the window's inner size (1280×713): 11 % fewer
    // pixels to paint and encode than the node's images, which flattered the baseline.
    await page.setViewport({ width: 1280, height: 800 });
    idle.push({ page, cdp: await page.createCDPSession() });
  }
  return {
    async shoot(url, format) {
      const slot = idle.pop();
      if (!slot) throw new Error('more concurrent shots than pages');
      try {
        await slot.page.goto(url, { waitUntil: 'load', timeout: 30_000 });
        const shot = await slot.cdp.send('Page.captureScreenshot', {
          format,
          ...(format === 'jpeg' ? { quality: jpegQuality } : {}),
          fromSurface: true,
        });
        return Buffer.from(shot.data, 'base64');
      } finally {
        idle.push(slot);
      }
    },
    close: () => launched.close(),
  };
}

/** (b): the node as a client sees it. */
async function startNodeShooter(): Promise<{ shoot: Shooter; node: RunningProcess }> {
  const node = await startShotfleet(
    'serve',
    { SHOTFLEET_PAGES: String(pages), SHOTFLEET_ALLOW_HOSTS: corpus.hosts.join(','), ...nodeEnv },
    { timeoutMs: 60_000 },
  );
  return {
    node,
    async shoot(url, format) {
      const res = await fetch(`${node.url}/screenshot`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ url, format, ...(format === 'jpeg' ? { quality: jpegQuality } : {}) }),
        signal: AbortSignal.timeout(35_000),
      });
      const body = Buffer.from(await res.arrayBuffer());
      if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${body.toString('utf8').slice(0, 200)}`);
      return body;
    },
  };
}

const median = (values: number[]) => quantile(values, 0.5);

interface Summary {
  runs: RunResult[];
  throughput: number;
  p50Ms: number;
  p95Ms: number;
  errors: number;
  meanKB: number;
}

function summarize(results: RunResult[]): Summary {
  return {
    runs: results,
    throughput: median(results.map((r) => r.throughput)),
    p50Ms: median(results.map((r) => r.p50Ms)),
    p95Ms: median(results.map((r) => r.p95Ms)),
    errors: results.reduce((n, r) => n + r.errors, 0),
    meanKB: median(results.map((r) => r.meanBytes)) / 1024,
  };
}

const benchStarted = Date.now();
const bare = await startBare();
let nodeShooter: Awaited<ReturnType<typeof startNodeShooter>> | null = null;
const rows: { format: Format; bare: Summary; node: Summary; ratio: number; p50OverheadMs: number; p95OverheadMs: number }[] = [];
try {
  nodeShooter = await startNodeShooter();
  const shooters: Record<Mode, Shooter> = { bare: bare.shoot, node: nodeShooter.shoot };
  for (const format of formats) {
    const results: Record<Mode, RunResult[]> = { bare: [], node: [] };
    for (let run = 0; run < runs; run++) {
      // Alternate which goes first, so a slow patch of the shared machine does not always land on one side.
      const order: Mode[] = run % 2 === 0 ? ['bare', 'node'] : ['node', 'bare'];
      for (const mode of order) {
        const result = await runClosedLoop(shooters[mode], format, run * 7);
        results[mode].push(result);
        console.error(
          `${format} run ${run + 1}/${runs} ${mode}: ${result.throughput.toFixed(2)}/s p50 ${result.p50Ms.toFixed(0)} ms p95 ${result.p95Ms.toFixed(0)} ms${result.errors ? ` (${result.errors} errors)` : ''}`,
        );
      }
    }
    const a = summarize(results.bare);
    const b = summarize(results.node);
    const sizes = new Set([...results.bare, ...results.node].map((r) => r.size));
    if (sizes.size !== 1) throw new Error(`bare and node made images of different sizes (${[...sizes].join(' vs ')}): the comparison would be unfair`);
    rows.push({ format, bare: a, node: b, ratio: b.throughput / a.throughput, p50OverheadMs: b.p50Ms - a.p50Ms, p95OverheadMs: b.p95Ms - a.p95Ms });
  }
} finally {
  await nodeShooter?.node.stop();
  await bare.close();
  await corpus.close();
}

const table = [
  `render benchmark: ${pages} pages = concurrency, ${runs} runs × ${shotsPerRun} shots, ${corpus.hosts.length} hosts, medians`,
  '| format | bare shots/s | node shots/s | ratio b/a | bare p50 / p95 ms | node p50 / p95 ms | p50 overhead ms | errors |',
  '|---|---|---|---|---|---|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.format} | ${r.bare.throughput.toFixed(2)} | ${r.node.throughput.toFixed(2)} | ${r.ratio.toFixed(2)} | ${r.bare.p50Ms.toFixed(0)} / ${r.bare.p95Ms.toFixed(0)} | ${r.node.p50Ms.toFixed(0)} / ${r.node.p95Ms.toFixed(0)} | ${r.p50OverheadMs.toFixed(0)} | ${r.bare.errors + r.node.errors} |`,
  ),
  `targets: ratio ≥ 0.9, p50 overhead ≤ 5 ms — ${rows.every((r) => r.ratio >= 0.9 && r.p50OverheadMs <= 5) ? 'met' : 'NOT met'}`,
].join('\n');
console.log(table);

await mkdir(path.dirname(flags.out), { recursive: true });
await writeFile(
  flags.out,
  JSON.stringify(
    {
      measuredAt: new Date().toISOString(),
      machine: { cpus: os.cpus().length, memoryGB: round(os.totalmem() / 2 ** 30), node: process.version },
      settings: { pages, runs, shotsPerRun, formats, jpegQuality, hosts: corpus.hosts, urls: corpus.urls.length },
      targets: { ratio: 0.9, p50OverheadMs: 5 },
      durationSeconds: round((Date.now() - benchStarted) / 1000),
      results: rows.map((r) => ({
        format: r.format,
        ratio: round(r.ratio, 3),
        p50OverheadMs: round(r.p50OverheadMs),
        p95OverheadMs: round(r.p95OverheadMs),
        bare: roundSummary(r.bare),
        node: roundSummary(r.node),
      })),
    },
    null,
    2,
  ) + '\n',
);
console.error(`wrote ${path.relative(process.cwd(), flags.out)}`);

function roundSummary(s: Summary) {
  return {
    throughput: round(s.throughput, 2),
    p50Ms: round(s.p50Ms),
    p95Ms: round(s.p95Ms),
    meanKB: round(s.meanKB),
    size: s.runs[0]?.size,
    errors: s.errors,
    runs: s.runs.map((r) => ({ shots: r.shots, errors: r.errors, seconds: round(r.seconds, 2), throughput: round(r.throughput, 2), p50Ms: round(r.p50Ms), p95Ms: round(r.p95Ms) })),
  };
}
