/**
 * shotfleet side by side with what a user would run instead, in one run, alternating, at equal
 * concurrency, all making the same 1280×800 images:
 *
 *   bare        — puppeteer-core on pre-opened windows, no isolation, HTTP cache on: the machine's limit;
 *   context     — a new incognito context and window per shot, closed after it (a hand-written isolating loop);
 *   cluster     — puppeteer-cluster's CONCURRENCY_CONTEXT (a new incognito context per job), the usual library;
 *   browserless — its HTTP API (a browser per request), only when @browserless.io/browserless is installed;
 *   shotfleet   — `shotfleet serve` as its own node process, over HTTP, URL policy and its proxy on;
 *   shotfleet-open — the same with the URL policy lifted (`SHOTFLEET_ALLOW_PRIVATE=true`: no proxy), only when asked
 *                 for by --peers: what the policy's proxy costs.
 *
 * In-process peers capture on the page's own CDP session, as the node does, so only the way each gets a page
 * differs. Two corpora: light (bench/lib/corpus.ts) and realistic (bench/lib/realistic-corpus.ts: 1–2 MB pages
 * with web fonts, 20–40 images, a few hundred KB of script, animations), both on 127.0.0.1–3. For each corpus
 * and format every peer runs `--runs` times in a rotating order (machine noise hits all alike); figures are
 * medians over runs, ratios the median of per-run ratios (both sides ran minutes apart at most).
 * CPU per shot is this process's tree (the bench, every browser and the node with their children) over the
 * run ÷ shots: what the peer costs, whatever else the shared machine runs. A peer that cannot start is skipped.
 *
 *   npm run bench:peers -- [--concurrency 2] [--runs 3] [--shots 16] [--formats jpeg,png,webp]
 *     [--corpora light,realistic] [--peers bare,context,cluster,browserless,shotfleet] [--name peers]
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import puppeteer, { type Browser, type CDPSession, type Page } from 'puppeteer-core';
import { Cluster } from 'puppeteer-cluster';
import { chromeEnvironment, sandboxArgs } from '../src/policy/index.js';
import { chromeArgs, launchBrowser } from '../src/render-pool/launch.js';
import { repoRoot, startShotfleet } from '../test/helpers/processes.js';
import { lineChartsSvg } from './lib/chart.js';
import { startCorpus, type Corpus } from './lib/corpus.js';
import { treeCpuMs } from './lib/cpu.js';
import { startRealisticCorpus } from './lib/realistic-corpus.js';
import { quantile, round } from './lib/stats.js';
import { closedLoop } from './lib/closed-loop.js';

const allPeers = ['bare', 'context', 'cluster', 'browserless', 'shotfleet', 'shotfleet-open'] as const;
const defaultPeers = allPeers.filter((p) => p !== 'shotfleet-open');
type PeerName = (typeof allPeers)[number];
const isolating: PeerName[] = ['context', 'cluster', 'browserless'];
type Format = 'jpeg' | 'png' | 'webp';
type CorpusName = 'light' | 'realistic';

const { values: flags } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '2' },
    runs: { type: 'string', default: '3' },
    shots: { type: 'string', default: '16' },
    formats: { type: 'string', default: 'jpeg,png,webp' },
    corpora: { type: 'string', default: 'light,realistic' },
    peers: { type: 'string', default: defaultPeers.join(',') },
    name: { type: 'string', default: 'peers' },
    'chrome-path': { type: 'string', default: '/usr/lib/chromium/chromium' },
    help: { type: 'boolean', default: false },
  },
});
if (flags.help) {
  console.log(
    'npm run bench:peers -- [--concurrency 2] [--runs 3] [--shots 16] [--formats jpeg,png,webp] [--corpora light,realistic] [--peers bare,context,cluster,browserless,shotfleet] [--name peers]',
  );
  process.exit(0);
}
const concurrency = Math.max(1, Number(flags.concurrency));
const runs = Math.max(1, Number(flags.runs));
const shotsPerRun = Number(flags.shots);
const formats = flags.formats.split(',') as Format[];
const corpora = flags.corpora.split(',') as CorpusName[];
const wanted = flags.peers.split(',') as PeerName[];
for (const p of wanted) if (!allPeers.includes(p)) throw new Error(`--peers: unknown peer "${p}"; choose from ${allPeers.join(', ')}`);
const quality = 80;
const viewport = { width: 1280, height: 800 };
/** A run that takes longer than this is cut short, so the whole bench stays bounded. */
const runBudgetMs = 60_000;

type Shooter = (url: string, format: Format) => Promise<Buffer>;
interface Peer {
  shoot: Shooter;
  /** Leaves the peer idle between its runs (no page left animating while another peer is measured). */
  settle(): Promise<void>;
  close(): Promise<void>;
}

async function captureOn(cdp: CDPSession, format: Format): Promise<Buffer> {
  const shot = await cdp.send('Page.captureScreenshot', { format, ...(format === 'png' ? {} : { quality }), fromSurface: true });
  return Buffer.from(shot.data, 'base64');
}

/** bare: windows opened once, reused as they are. */
async function startBare(): Promise<Peer> {
  const launched = await launchBrowser(flags['chrome-path'], { sandbox: false, env: chromeEnvironment(process.env) });
  const idle: { page: Page; cdp: CDPSession }[] = [];
  for (let i = 0; i < concurrency; i++) {
    const page = await launched.browser.newPage({ type: 'window', windowBounds: viewport });
    await page.setViewport(viewport);
    idle.push({ page, cdp: await page.createCDPSession() });
  }
  const all = [...idle];
  return {
    async shoot(url, format) {
      const slot = idle.pop();
      if (!slot) throw new Error('more concurrent shots than pages');
      try {
        await slot.page.goto(url, { waitUntil: 'load', timeout: 30_000 });
        return await captureOn(slot.cdp, format);
      } finally {
        idle.push(slot);
      }
    },
    settle: async () => void (await Promise.all(all.map((s) => s.page.goto('about:blank')))),
    close: () => launched.close(),
  };
}

/** context: the isolating loop one writes by hand: a fresh incognito context and window per shot. */
async function startContextPerShot(): Promise<Peer> {
  const launched = await launchBrowser(flags['chrome-path'], { sandbox: false, env: chromeEnvironment(process.env) });
  const browser: Browser = launched.browser;
  return {
    async shoot(url, format) {
      const context = await browser.createBrowserContext();
      try {
        const page = await context.newPage({ type: 'window', windowBounds: viewport });
        await page.setViewport(viewport);
        const cdp = await page.createCDPSession();
        await page.goto(url, { waitUntil: 'load', timeout: 30_000 });
        return await captureOn(cdp, format);
      } finally {
        await context.close();
      }
    },
    settle: async () => undefined,
    close: () => launched.close(),
  };
}

/** cluster: puppeteer-cluster as documented, CONCURRENCY_CONTEXT, the node's Chromium flags. */
async function startCluster(): Promise<Peer> {
  const cluster: Cluster<{ url: string; format: Format }, Buffer> = await Cluster.launch({
    concurrency: Cluster.CONCURRENCY_CONTEXT,
    maxConcurrency: concurrency,
    puppeteer,
    puppeteerOptions: { executablePath: flags['chrome-path'], headless: true, args: [...chromeArgs, ...sandboxArgs(false)], defaultViewport: viewport },
    timeout: 60_000,
    retryLimit: 0,
  });
  await cluster.task(async ({ page, data }) => {
    await page.goto(data.url, { waitUntil: 'load', timeout: 30_000 });
    return captureOn(await page.createCDPSession(), data.format);
  });
  return {
    shoot: (url, format) => cluster.execute({ url, format }),
    settle: async () => undefined,
    close: async () => {
      await cluster.idle();
      await cluster.close();
    },
  };
}

/**
 * browserless: only when its package is installed (this bench never installs it). Started as its own process on
 * loopback with the same concurrency; asked through its REST /screenshot endpoint.
 */
async function startBrowserless(): Promise<Peer | string> {
  let entry: string;
  try {
    const require = createRequire(import.meta.url);
    const manifestPath = require.resolve('@browserless.io/browserless/package.json');
    const manifest = require(manifestPath) as { main?: string; bin?: string | Record<string, string> };
    const bin = typeof manifest.bin === 'string' ? manifest.bin : Object.values(manifest.bin ?? {})[0];
    entry = path.join(path.dirname(manifestPath), bin ?? manifest.main ?? 'build/index.js');
  } catch {
    return 'not installed (npm install @browserless.io/browserless to include it)';
  }
  const port = 30_000 + (process.pid % 20_000);
  const token = 'bench';
  const proc = spawn(process.execPath, [entry], {
    env: {
      ...process.env,
      HOST: '127.0.0.1',
      PORT: String(port),
      TOKEN: token,
      CONCURRENT: String(concurrency),
      QUEUED: '100',
      TIMEOUT: '60000',
      CHROME_PATH: flags['chrome-path'],
    },
    stdio: 'ignore',
  });
  process.once('exit', () => proc.kill('SIGKILL'));
  const base = `http://127.0.0.1:${port}`;
  const started = Date.now();
  for (;;) {
    if (proc.exitCode !== null) return `exited with ${proc.exitCode} at start`;
    if (Date.now() - started > 60_000) {
      proc.kill('SIGKILL');
      return 'did not answer on its port within 60 s';
    }
    const up = await fetch(`${base}/json/version?token=${token}`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  return {
    async shoot(url, format) {
      const res = await fetch(`${base}/screenshot?token=${token}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ url, viewport, gotoOptions: { waitUntil: 'load' }, options: { type: format, ...(format === 'png' ? {} : { quality }) } }),
        signal: AbortSignal.timeout(60_000),
      });
      const body = Buffer.from(await res.arrayBuffer());
      if (res.status !== 200) throw new Error(`browserless HTTP ${res.status}: ${body.toString('utf8').slice(0, 200)}`);
      return body;
    },
    settle: async () => undefined,
    close: async () => {
      proc.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 1000));
      proc.kill('SIGKILL');
    },
  };
}

/** shotfleet: a real node process over HTTP, as a client sees it. */
async function startNode(hosts: string[], policyLifted: boolean): Promise<Peer> {
  const policy: Record<string, string> = policyLifted ? { SHOTFLEET_ALLOW_PRIVATE: 'true' } : { SHOTFLEET_ALLOW_HOSTS: hosts.join(',') };
  const node = await startShotfleet('serve', { SHOTFLEET_PAGES: String(concurrency), ...policy }, { timeoutMs: 180_000 });
  return {
    async shoot(url, format) {
      const res = await fetch(`${node.url}/screenshot`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ url, format, ...(format === 'png' ? {} : { quality }) }),
        signal: AbortSignal.timeout(60_000),
      });
      const body = Buffer.from(await res.arrayBuffer());
      if (res.status !== 200) throw new Error(`shotfleet HTTP ${res.status}: ${body.toString('utf8').slice(0, 200)}`);
      return body;
    },
    settle: async () => undefined,
    close: async () => void (await node.stop()),
  };
}

interface RunResult {
  shots: number;
  errors: number;
  throughput: number;
  p50Ms: number;
  p95Ms: number;
  cpuMsPerShot: number;
  size: string;
  loadAverage: number;
}

/** One measured run of a peer: throughput, latency and the CPU of the bench's process tree per shot. */
async function runClosedLoop(peer: Peer, corpus: Corpus, format: Format, offset: number): Promise<RunResult> {
  let cpuBefore = 0;
  const { latencies, errors, seconds, sizes } = await closedLoop({
    shoot: (url) => peer.shoot(url, format),
    urls: corpus.urls,
    workers: concurrency,
    offset,
    shots: shotsPerRun,
    budgetMs: runBudgetMs,
    onMeasureStart: () => (cpuBefore = treeCpuMs(process.pid)),
  });
  const cpuMs = treeCpuMs(process.pid) - cpuBefore;
  await peer.settle();
  return {
    shots: latencies.length,
    errors,
    throughput: latencies.length / seconds,
    p50Ms: quantile(latencies, 0.5),
    p95Ms: quantile(latencies, 0.95),
    // Negative when a browser died mid-run and its children were reaped outside the tree (puppeteer-cluster
    // relaunches its browser after some errors): that run's CPU is unknown, not counted.
    cpuMsPerShot: latencies.length && cpuMs >= 0 ? cpuMs / latencies.length : Number.NaN,
    size: [...sizes].join(','),
    loadAverage: os.loadavg()[0],
  };
}

const median = (values: number[]) =>
  quantile(
    values.filter((v) => Number.isFinite(v)),
    0.5,
  );
const medianRatio = (over: RunResult[], under: RunResult[]) => median(over.map((r, i) => r.throughput / under[i].throughput));

interface PeerFigures {
  throughput: number;
  p50Ms: number;
  p95Ms: number;
  cpuMsPerShot: number;
  errors: number;
  toBare: number | null;
  runs: RunResult[];
}
interface Row {
  corpus: CorpusName;
  format: Format;
  peers: Partial<Record<PeerName, PeerFigures>>;
  bestIsolating: PeerName | null;
  /** shotfleet ÷ the best isolating peer, median of per-run ratios. */
  shotfleetToBestIsolating: number | null;
  /** shotfleet's p50 minus bare's, median of per-run differences: the node's overhead on a render. */
  shotfleetP50OverBareMs: number | null;
}

const benchStarted = Date.now();
const loadAtStart = os.loadavg();
const skipped: Partial<Record<PeerName, string>> = {};
const rows: Row[] = [];
const corpusFacts: Record<string, unknown> = {};

for (const corpusName of corpora) {
  const corpus = corpusName === 'light' ? await startCorpus(3, { assets: true }) : await startRealisticCorpus(3);
  if ('pageBytes' in corpus) corpusFacts[corpusName] = { pageBytes: corpus.pageBytes };
  const started = new Map<PeerName, Peer>();
  try {
    for (const name of wanted) {
      if (skipped[name]) continue;
      try {
        const peer =
          name === 'bare'
            ? await startBare()
            : name === 'context'
              ? await startContextPerShot()
              : name === 'cluster'
                ? await startCluster()
                : name === 'browserless'
                  ? await startBrowserless()
                  : await startNode(corpus.hosts, name === 'shotfleet-open');
        if (typeof peer === 'string') skipped[name] = peer;
        else started.set(name, peer);
      } catch (err) {
        skipped[name] = `could not start: ${(err as Error).message.split('\n')[0]}`;
      }
      if (skipped[name]) console.error(`${name}: skipped — ${skipped[name]}`);
    }
    const names = [...started.keys()];
    for (const format of formats) {
      const results = new Map<PeerName, RunResult[]>(names.map((n) => [n, []]));
      for (let run = 0; run < runs; run++) {
        // Rotate the order, so a slow patch of the shared machine does not always land on one peer.
        const order = names.map((_, i) => names[(i + run) % names.length]);
        for (const name of order) {
          const result = await runClosedLoop(started.get(name)!, corpus, format, run * 5);
          results.get(name)!.push(result);
          console.error(
            `${corpusName} ${format} run ${run + 1}/${runs} ${name}: ${result.throughput.toFixed(2)}/s p50 ${result.p50Ms.toFixed(0)} p95 ${result.p95Ms.toFixed(0)} ms, CPU ${result.cpuMsPerShot.toFixed(0)} ms/shot, load ${result.loadAverage.toFixed(1)}${result.errors ? ` (${result.errors} errors)` : ''}`,
          );
        }
      }
      const sizes = new Set([...results.values()].flatMap((rs) => rs.map((r) => r.size)).filter(Boolean));
      if (sizes.size > 1) throw new Error(`peers made images of different sizes (${[...sizes].join(' vs ')}): the comparison would be unfair`);
      const bare = results.get('bare');
      const peers: Row['peers'] = {};
      for (const [name, rs] of results) {
        peers[name] = {
          throughput: median(rs.map((r) => r.throughput)),
          p50Ms: median(rs.map((r) => r.p50Ms)),
          p95Ms: median(rs.map((r) => r.p95Ms)),
          cpuMsPerShot: median(rs.map((r) => r.cpuMsPerShot)),
          errors: rs.reduce((n, r) => n + r.errors, 0),
          toBare: bare ? medianRatio(rs, bare) : null,
          runs: rs,
        };
      }
      const candidates = isolating.filter((n) => peers[n]);
      const bestIsolating = candidates.sort((a, b) => peers[b]!.throughput - peers[a]!.throughput)[0] ?? null;
      const node = results.get('shotfleet');
      rows.push({
        corpus: corpusName,
        format,
        peers,
        bestIsolating,
        shotfleetToBestIsolating: node && bestIsolating ? medianRatio(node, results.get(bestIsolating)!) : null,
        shotfleetP50OverBareMs: node && bare ? median(node.map((r, i) => r.p50Ms - bare[i].p50Ms)) : null,
      });
    }
  } finally {
    for (const peer of started.values()) await peer.close().catch((err) => console.error(`closing a peer: ${(err as Error).message}`));
    await corpus.close();
  }
}

const measured = wanted.filter((n) => !skipped[n]);
const fmt = (v: number | null | undefined, digits = 2) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits));
const loadAtEnd = os.loadavg();
const lines = [
  `bench:peers — ${new Date().toISOString().slice(0, 16)} UTC, concurrency ${concurrency}, ${runs} runs × ${shotsPerRun} shots per peer, corpus and format; load average ${loadAtStart[0].toFixed(1)} at start, ${loadAtEnd[0].toFixed(1)} at end (${os.cpus().length} cores)`,
  '',
  '| corpus | format | peer | shots/s | ÷ bare | p50 / p95 ms | CPU ms/shot | errors |',
  '|---|---|---|---|---|---|---|---|',
  ...rows.flatMap((r) =>
    measured.map((name) => {
      const p = r.peers[name]!;
      const tag = name === r.bestIsolating ? ' (best isolating)' : '';
      return `| ${r.corpus} | ${r.format} | ${name}${tag} | ${fmt(p.throughput)} | ${fmt(p.toBare)} | ${fmt(p.p50Ms, 0)} / ${fmt(p.p95Ms, 0)} | ${fmt(p.cpuMsPerShot, 0)} | ${p.errors} |`;
    }),
  ),
  '',
  '| corpus | format | shotfleet ÷ bare | shotfleet ÷ best isolating peer | shotfleet p50 − bare p50 ms |',
  '|---|---|---|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.corpus} | ${r.format} | ${fmt(r.peers.shotfleet?.toBare)} | ${fmt(r.shotfleetToBestIsolating)}${r.bestIsolating ? ` (${r.bestIsolating})` : ''} | ${fmt(r.shotfleetP50OverBareMs, 0)} |`,
  ),
  '',
  ...Object.entries(skipped).map(([name, why]) => `${name}: skipped — ${why}`),
];
const table = lines.join('\n');
console.log(table);

const resultsDir = path.join(repoRoot, 'bench/results');
await mkdir(resultsDir, { recursive: true });
await writeFile(path.join(resultsDir, `${flags.name}.md`), `${table}\n`);
const colors: Record<PeerName, string> = {
  bare: '#888888',
  context: '#d62728',
  cluster: '#ff7f0e',
  browserless: '#9467bd',
  shotfleet: '#1f77b4',
  'shotfleet-open': '#17becf',
};
const xLabels = rows.map((r) => `${r.corpus} ${r.format}`);
const series = (pick: (p: PeerFigures) => number) =>
  measured.map((name) => ({ name, color: colors[name], values: rows.map((r) => (r.peers[name] ? pick(r.peers[name]!) : null)) }));
await writeFile(
  path.join(resultsDir, `${flags.name}.svg`),
  lineChartsSvg(`shotfleet and its peers, concurrency ${concurrency} (medians of ${runs} runs)`, xLabels, [
    { title: 'throughput', unit: 'shots/s', series: series((p) => p.throughput), logScale: true },
    { title: 'latency p50', unit: 'ms', series: series((p) => p.p50Ms), logScale: true },
    { title: 'CPU per shot', unit: 'ms', series: series((p) => p.cpuMsPerShot), logScale: true },
  ]),
);
await writeFile(
  path.join(resultsDir, `${flags.name}.json`),
  `${JSON.stringify(
    {
      measuredAt: new Date().toISOString(),
      machine: {
        cpus: os.cpus().length,
        memoryGB: round(os.totalmem() / 2 ** 30),
        node: process.version,
        loadAverageAtStart: loadAtStart.map((l) => round(l, 2)),
        loadAverageAtEnd: loadAtEnd.map((l) => round(l, 2)),
      },
      settings: { concurrency, runs, shotsPerRun, formats, corpora, quality, viewport },
      corpora: corpusFacts,
      durationSeconds: round((Date.now() - benchStarted) / 1000),
      skipped,
      rows: rows.map((r) => ({
        corpus: r.corpus,
        format: r.format,
        bestIsolating: r.bestIsolating,
        shotfleetToBestIsolating: round(r.shotfleetToBestIsolating ?? Number.NaN, 3),
        shotfleetP50OverBareMs: round(r.shotfleetP50OverBareMs ?? Number.NaN),
        peers: Object.fromEntries(
          Object.entries(r.peers).map(([name, p]) => [
            name,
            {
              throughput: round(p.throughput, 2),
              toBare: round(p.toBare ?? Number.NaN, 3),
              p50Ms: round(p.p50Ms),
              p95Ms: round(p.p95Ms),
              cpuMsPerShot: round(p.cpuMsPerShot),
              errors: p.errors,
              runs: p.runs.map((x) => ({
                shots: x.shots,
                errors: x.errors,
                throughput: round(x.throughput, 2),
                p50Ms: round(x.p50Ms),
                p95Ms: round(x.p95Ms),
                cpuMsPerShot: round(x.cpuMsPerShot),
                loadAverage: round(x.loadAverage, 2),
              })),
            },
          ]),
        ),
      })),
    },
    null,
    2,
  )}\n`,
);
console.error(`wrote bench/results/${flags.name}.{md,svg,json}`);
