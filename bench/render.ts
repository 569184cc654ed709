/**
 * The speed proof: how close the node comes to what this machine can do at all.
 *
 *   (a) bare — puppeteer-core on pre-opened windows, no isolation, capture on each page's CDP session: the limit;
 *   (a′) wiped — the node's own slots, capture() and wipe between renders, in-process: what isolation costs;
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
import { createLogger } from '../src/log/logger.js';
import { chromeEnvironment, createUrlPolicy } from '../src/policy/index.js';
import { benchCapture } from './lib/bench-capture.js';
import { createOptionsSchema, parseRenderOptions } from '../src/request/options.js';
import type { BrowserHandle } from '../src/render-pool/browser-manager.js';
import { openSlot, type PageSlot } from '../src/render-pool/page-slot.js';
import { resetSlot } from '../src/render-pool/reset-slot.js';
import { repoRoot, startShotfleet, type RunningProcess } from '../test/helpers/processes.js';
import { startCorpus } from './lib/corpus.js';
import { parseNodeEnv } from './lib/node-env.js';
import { quantile, round } from './lib/stats.js';
import { closedLoop } from './lib/closed-loop.js';

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
const nodeEnv = parseNodeEnv(flags['node-env']);

const pages = Number(flags.pages);
const runs = Math.max(1, Number(flags.runs));
/** Measured shots per run (all workers together), after one warm-up shot per worker. */
const shotsPerRun = Number(flags.shots);
const formats = flags.formats.split(',') as Format[];
const jpegQuality = 80;
/** A run that takes longer than this is cut short, so the whole bench stays bounded. */
const runBudgetMs = 45_000;

type Format = 'png' | 'jpeg';
type Mode = 'bare' | 'wiped' | 'node';
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

async function runClosedLoop(shoot: Shooter, format: Format, offset: number): Promise<RunResult> {
  const { latencies, errors, seconds, bytes, sizes } = await closedLoop({
    shoot: (url) => shoot(url, format),
    urls: corpus.urls,
    workers: pages,
    offset,
    shots: shotsPerRun,
    budgetMs: runBudgetMs,
  });
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
  const launched: LaunchedBrowser = await launchBrowser(flags['chrome-path'], { sandbox: false, env: chromeEnvironment(process.env) });
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

/**
 * (a′): the node's own render path without the node: its slots (a context and window each, one spare), its
 * capture() and its wipe between renders (resetSlot, overlapping the next render as in the pool), in-process, no
 * HTTP, no admission, no URL policy. bare → wiped is what isolation costs; wiped → node is the server around it.
 */
async function startWiped(): Promise<Bare> {
  const launched = await launchBrowser(flags['chrome-path'], { sandbox: false, env: chromeEnvironment(process.env) });
  const browser: BrowserHandle = { launched, generation: 1, renders: 0, openPages: 0, dead: false, retired: false };
  const policy = createUrlPolicy({ allowPrivate: true, allowHosts: [], denyHosts: [] });
  const log = createLogger('silent');
  const startProxy = () => Promise.reject(new Error('no proxy: the policy is off'));
  const schema = createOptionsSchema({ maxViewport: 4096, maxTimeoutMs: 60_000, defaultTimeoutMs: 30_000, maxPixels: 100_000_000 });
  const idle: PageSlot[] = [];
  const waiting: ((slot: PageSlot) => void)[] = [];
  const giveBack = (slot: PageSlot) => (waiting.length > 0 ? waiting.shift()!(slot) : idle.push(slot));
  for (let i = 0; i < pages + 1; i++) idle.push(await openSlot(browser, { policy, startProxy, log, assetCache: { on: true, count: () => undefined } }));
  return {
    async shoot(url, format) {
      const slot = idle.pop() ?? (await new Promise<PageSlot>((resolve) => waiting.push(resolve)));
      const options = parseRenderOptions(schema, { url, format, ...(format === 'jpeg' ? { quality: jpegQuality } : {}) });
      try {
        const result = await benchCapture(slot, options, log);
        return result.image;
      } finally {
        void resetSlot(slot).then(() => giveBack(slot));
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
const modeList: Mode[] = ['bare', 'wiped', 'node'];
/** Median over runs of the per-run ratio: both sides of a ratio ran back to back, under the same machine noise. */
const medianRatio = (over: RunResult[], under: RunResult[]) => median(over.map((r, i) => r.throughput / under[i].throughput));
interface Row {
  format: Format;
  summaries: Record<Mode, Summary>;
  /** node ÷ bare: the target. */
  ratio: number;
  /** wiped ÷ bare: what isolation (the wipe between renders, the node's render path) costs by itself. */
  isolationRatio: number;
  /** node ÷ wiped: what the server around the render path (HTTP, admission, URL policy and proxy) costs. */
  serverRatio: number;
  p50OverheadMs: number;
  p95OverheadMs: number;
}
const rows: Row[] = [];
const closers: (() => Promise<void>)[] = [];
try {
  const bare = await startBare();
  closers.push(bare.close);
  const wiped = await startWiped();
  closers.push(wiped.close);
  const nodeShooter = await startNodeShooter();
  closers.push(async () => void (await nodeShooter.node.stop()));
  const shooters: Record<Mode, Shooter> = { bare: bare.shoot, wiped: wiped.shoot, node: nodeShooter.shoot };
  for (const format of formats) {
    const results: Record<Mode, RunResult[]> = { bare: [], wiped: [], node: [] };
    for (let run = 0; run < runs; run++) {
      // Alternate the order, so a slow patch of the shared machine does not always land on one side.
      const order = run % 2 === 0 ? modeList : [...modeList].reverse();
      for (const mode of order) {
        const result = await runClosedLoop(shooters[mode], format, run * 7);
        results[mode].push(result);
        console.error(
          `${format} run ${run + 1}/${runs} ${mode}: ${result.throughput.toFixed(2)}/s p50 ${result.p50Ms.toFixed(0)} ms p95 ${result.p95Ms.toFixed(0)} ms${result.errors ? ` (${result.errors} errors)` : ''}`,
        );
      }
    }
    const sizes = new Set(modeList.flatMap((m) => results[m].map((r) => r.size)));
    if (sizes.size !== 1) throw new Error(`the modes made images of different sizes (${[...sizes].join(' vs ')}): the comparison would be unfair`);
    const summaries = Object.fromEntries(modeList.map((m) => [m, summarize(results[m])])) as Record<Mode, Summary>;
    rows.push({
      format,
      summaries,
      ratio: medianRatio(results.node, results.bare),
      isolationRatio: medianRatio(results.wiped, results.bare),
      serverRatio: medianRatio(results.node, results.wiped),
      p50OverheadMs: summaries.node.p50Ms - summaries.bare.p50Ms,
      p95OverheadMs: summaries.node.p95Ms - summaries.bare.p95Ms,
    });
  }
} finally {
  for (const close of closers.reverse()) await close();
  await corpus.close();
}

const table = [
  `render benchmark: ${pages} pages = concurrency, ${runs} runs × ${shotsPerRun} shots, ${corpus.hosts.length} hosts; shots/s and ms are medians, ratios the median of per-run ratios`,
  '| format | bare /s | wiped /s | node /s | node ÷ bare | wiped ÷ bare (isolation) | node ÷ wiped (server) | bare p50 / p95 ms | node p50 / p95 ms | p50 overhead ms | errors |',
  '|---|---|---|---|---|---|---|---|---|---|---|',
  ...rows.map((r) => {
    const { bare, wiped, node } = r.summaries;
    return `| ${r.format} | ${bare.throughput.toFixed(2)} | ${wiped.throughput.toFixed(2)} | ${node.throughput.toFixed(2)} | ${r.ratio.toFixed(2)} | ${r.isolationRatio.toFixed(2)} | ${r.serverRatio.toFixed(2)} | ${bare.p50Ms.toFixed(0)} / ${bare.p95Ms.toFixed(0)} | ${node.p50Ms.toFixed(0)} / ${node.p95Ms.toFixed(0)} | ${r.p50OverheadMs.toFixed(0)} | ${bare.errors + wiped.errors + node.errors} |`;
  }),
  `targets: node ÷ bare ≥ 0.9, p50 overhead ≤ 5 ms — ${rows.every((r) => r.ratio >= 0.9 && r.p50OverheadMs <= 5) ? 'met' : 'NOT met'}`,
].join('\n');
console.log(table);

await mkdir(path.dirname(flags.out), { recursive: true });
await writeFile(
  flags.out,
  `${JSON.stringify(
    {
      measuredAt: new Date().toISOString(),
      machine: { cpus: os.cpus().length, memoryGB: round(os.totalmem() / 2 ** 30), node: process.version },
      settings: { pages, runs, shotsPerRun, formats, jpegQuality, hosts: corpus.hosts, urls: corpus.urls.length },
      targets: { ratio: 0.9, p50OverheadMs: 5 },
      durationSeconds: round((Date.now() - benchStarted) / 1000),
      results: rows.map((r) => ({
        format: r.format,
        ratio: round(r.ratio, 3),
        isolationRatio: round(r.isolationRatio, 3),
        serverRatio: round(r.serverRatio, 3),
        p50OverheadMs: round(r.p50OverheadMs),
        p95OverheadMs: round(r.p95OverheadMs),
        bare: roundSummary(r.summaries.bare),
        wiped: roundSummary(r.summaries.wiped),
        node: roundSummary(r.summaries.node),
      })),
    },
    null,
    2,
  )}\n`,
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
    runs: s.runs.map((r) => ({
      shots: r.shots,
      errors: r.errors,
      seconds: round(r.seconds, 2),
      throughput: round(r.throughput, 2),
      p50Ms: round(r.p50Ms),
      p95Ms: round(r.p95Ms),
    })),
  };
}
