/**
 * CPU levers, one row each, measured side by side in one run: Chromium flags (each candidate its own browser, with
 * the node's flags plus its own) and the capture call's parameters (on one loaded page). A lever is worth keeping
 * only when it saves CPU and changes no pixel: each row says how many pixels of its image differ from the
 * baseline's on the same page.
 *
 * Flags: every candidate renders the same pages through the node's own render path (capture.ts, a pooled page with
 * the asset cache on), rounds in rotating order; CPU is the candidate browser's process tree per render.
 * Capture calls: Page.captureScreenshot alone, alternating variants on a page that has loaded, CPU of the browser's
 * tree per call.
 *
 *   npm run bench:cpu-levers -- [--rounds 8] [--corpus light|realistic] [--format jpeg] [--out bench/results/cpu-levers.json]
 */
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PNG } from 'pngjs';
import { createLogger } from '../src/log/logger.js';
import { chromeEnvironment, createUrlPolicy } from '../src/policy/index.js';
import { benchCapture } from './lib/bench-capture.js';
import { createOptionsSchema, parseRenderOptions } from '../src/request/options.js';
import type { BrowserHandle } from '../src/render-pool/browser-manager.js';
import { launchBrowser, type LaunchedBrowser } from '../src/render-pool/launch.js';
import { openSlot, type PageSlot } from '../src/render-pool/page-slot.js';
import { resetSlot } from '../src/render-pool/reset-slot.js';
import { repoRoot } from '../test/helpers/processes.js';
import { startCorpus } from './lib/corpus.js';
import { treeCpuMs } from './lib/cpu.js';
import { startRealisticCorpus } from './lib/realistic-corpus.js';
import { quantile } from './lib/stats.js';

const { values: flags } = parseArgs({
  options: {
    rounds: { type: 'string', default: '8' },
    corpus: { type: 'string', default: 'realistic' },
    format: { type: 'string', default: 'jpeg' },
    out: { type: 'string', default: path.join(repoRoot, 'bench/results/cpu-levers.json') },
    'chrome-path': { type: 'string', default: '/usr/lib/chromium/chromium' },
  },
});

/** Chromium flags a screenshot service might do without; the first row is the node as it is. */
const flagCandidates: { name: string; args: string[] }[] = [
  { name: 'node flags (baseline)', args: [] },
  // Background-tab throttling does not apply to a window being rendered, and its timers cost wake-ups.
  {
    name: '+ no renderer backgrounding',
    args: ['--disable-renderer-backgrounding', '--disable-background-timer-throttling', '--disable-backgrounding-occluded-windows'],
  },
  // One renderer process per site at most, reused across the pool's pages.
  { name: '+ process per site', args: ['--process-per-site'] },
  { name: '+ renderer process limit 2', args: ['--renderer-process-limit=2'] },
  // The GPU process does software compositing here: in the browser process instead, one process less.
  { name: '+ in-process GPU', args: ['--in-process-gpu'] },
  {
    name: '+ unused features off',
    args: ['--disable-features=BackForwardCache,PaintHolding,AcceptCHFrame,MediaSessionService,SpareRendererForSitePerProcess'],
  },
];

/** Page.captureScreenshot variants; the first is what capture.ts sends for a viewport image. */
const captureCandidates: { name: string; params: Record<string, unknown> }[] = [
  { name: 'fromSurface, viewport (node)', params: { fromSurface: true } },
  { name: 'fromSurface, clip = viewport', params: { fromSurface: true, clip: { x: 0, y: 0, width: 1280, height: 800, scale: 1 } } },
  {
    name: 'captureBeyondViewport, clip = viewport',
    params: { fromSurface: true, captureBeyondViewport: true, clip: { x: 0, y: 0, width: 1280, height: 800, scale: 1 } },
  },
  { name: 'optimizeForSpeed', params: { fromSurface: true, optimizeForSpeed: true } },
];

const rounds = Number(flags.rounds);
const format = flags.format as 'jpeg' | 'png' | 'webp';
const corpus = flags.corpus === 'light' ? await startCorpus(3, { assets: true }) : await startRealisticCorpus(3);
const log = createLogger('silent');
const schema = createOptionsSchema({ maxViewport: 4096, maxTimeoutMs: 60_000, defaultTimeoutMs: 30_000, maxPixels: 100_000_000 });
const loadAtStart = os.loadavg();

interface Candidate {
  name: string;
  launched: LaunchedBrowser;
  slot: PageSlot;
  cpu: number[];
  errors: number;
  /** A png of each page, for the pixel comparison. */
  images: Map<string, Buffer>;
}

async function open(name: string, args: string[]): Promise<Candidate> {
  const launched = await launchBrowser(flags['chrome-path'], { sandbox: false, env: chromeEnvironment(process.env), extraArgs: args });
  const browser: BrowserHandle = { launched, generation: 1, renders: 0, openPages: 0, dead: false, retired: false };
  const slot = await openSlot(browser, {
    policy: createUrlPolicy({ allowPrivate: true, allowHosts: [], denyHosts: [] }),
    startProxy: () => Promise.reject(new Error('no proxy: the policy is off')),
    log,
    assetCache: { on: true, count: () => undefined },
  });
  return { name, launched, slot, cpu: [], errors: 0, images: new Map() };
}

async function render(candidate: Candidate, url: string, imageFormat: 'jpeg' | 'png' | 'webp'): Promise<Buffer> {
  const options = parseRenderOptions(schema, { url, format: imageFormat, ...(imageFormat === 'png' ? {} : { quality: 80 }), reducedMotion: true });
  try {
    const shot = await benchCapture(candidate.slot, options, log, 60_000);
    return shot.image;
  } finally {
    await resetSlot(candidate.slot);
  }
}

/** Pixels (of the whole image) whose colour differs between two pngs of the same size; -1 when sizes differ. */
function differingPixels(a: Buffer, b: Buffer): number {
  const x = PNG.sync.read(a);
  const y = PNG.sync.read(b);
  if (x.width !== y.width || x.height !== y.height) return -1;
  let differing = 0;
  for (let i = 0; i < x.data.length; i += 4) {
    if (x.data[i] !== y.data[i] || x.data[i + 1] !== y.data[i + 1] || x.data[i + 2] !== y.data[i + 2] || x.data[i + 3] !== y.data[i + 3]) differing++;
  }
  return differing;
}

const candidates: Candidate[] = [];
try {
  for (const c of flagCandidates) candidates.push(await open(c.name, c.args));
  // Pixels first: a png of each page per candidate (reducedMotion freezes the animated page).
  for (const url of corpus.urls) for (const c of candidates) c.images.set(url, await render(c, url, 'png'));
  for (let round = 0; round < rounds + 1; round++) {
    const url = corpus.urls[round % corpus.urls.length];
    for (let i = 0; i < candidates.length; i++) {
      const c = candidates[(i + round) % candidates.length];
      const before = treeCpuMs(c.launched.pid);
      try {
        await render(c, url, format);
        await new Promise((resolve) => setTimeout(resolve, 30));
        if (round > 0) c.cpu.push(treeCpuMs(c.launched.pid) - before);
      } catch (err) {
        c.errors++;
        console.error(`${c.name}: ${(err as Error).message.split('\n')[0]}`);
      }
    }
    console.error(`flags: round ${round}/${rounds}, load ${os.loadavg()[0].toFixed(1)}`);
  }

  // Capture calls on the baseline browser's page, loaded once per URL.
  const base = candidates[0];
  const captureCpu = new Map(captureCandidates.map((c) => [c.name, [] as number[]]));
  const captureDiff = new Map(captureCandidates.map((c) => [c.name, 0]));
  for (const url of corpus.urls) {
    await render(base, url, format);
    await base.slot.page.goto(url, { waitUntil: 'load' });
    const reference = Buffer.from((await base.slot.cdp.send('Page.captureScreenshot', { format: 'png', fromSurface: true })).data, 'base64');
    for (const c of captureCandidates) {
      const png = Buffer.from((await base.slot.cdp.send('Page.captureScreenshot', { ...c.params, format: 'png' })).data, 'base64');
      captureDiff.set(c.name, Math.max(captureDiff.get(c.name)!, differingPixels(reference, png)));
    }
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < captureCandidates.length; i++) {
        const c = captureCandidates[(i + round) % captureCandidates.length];
        const before = treeCpuMs(base.launched.pid);
        await base.slot.cdp.send('Page.captureScreenshot', { ...c.params, format, ...(format === 'png' ? {} : { quality: 80 }) });
        await new Promise((resolve) => setTimeout(resolve, 30));
        captureCpu.get(c.name)!.push(treeCpuMs(base.launched.pid) - before);
      }
    }
    await resetSlot(base.slot);
  }

  const median = (xs: number[]) => (xs.length ? quantile(xs, 0.5) : Number.NaN);
  const baseCpu = median(base.cpu);
  const flagRows = candidates.map((c) => ({
    lever: c.name,
    cpuMsPerRender: Math.round(median(c.cpu)),
    vsBaseline: Number((median(c.cpu) / baseCpu).toFixed(2)),
    differingPixels: Math.max(...corpus.urls.map((u) => differingPixels(base.images.get(u)!, c.images.get(u)!))),
    errors: c.errors,
  }));
  const captureBase = median(captureCpu.get(captureCandidates[0].name)!);
  const captureRows = captureCandidates.map((c) => ({
    lever: c.name,
    cpuMsPerCapture: Math.round(median(captureCpu.get(c.name)!)),
    vsBaseline: Number((median(captureCpu.get(c.name)!) / captureBase).toFixed(2)),
    differingPixels: captureDiff.get(c.name)!,
  }));
  const loadAtEnd = os.loadavg();
  console.log(
    [
      `cpu levers — ${flags.corpus} corpus, ${format}, ${rounds} rounds, medians; load ${loadAtStart[0].toFixed(1)} → ${loadAtEnd[0].toFixed(1)} (${os.cpus().length} cores)`,
      '',
      '| Chromium flags | CPU ms per render | ÷ baseline | pixels differing (max over pages) | errors |',
      '|---|---|---|---|---|',
      ...flagRows.map((r) => `| ${r.lever} | ${r.cpuMsPerRender} | ${r.vsBaseline} | ${r.differingPixels} | ${r.errors} |`),
      '',
      '| capture call | CPU ms per capture | ÷ baseline | pixels differing (max over pages) |',
      '|---|---|---|---|',
      ...captureRows.map((r) => `| ${r.lever} | ${r.cpuMsPerCapture} | ${r.vsBaseline} | ${r.differingPixels} |`),
    ].join('\n'),
  );
  await writeFile(
    flags.out,
    `${JSON.stringify({ date: new Date().toISOString(), corpus: flags.corpus, format, rounds, loadAverageAtStart: loadAtStart, loadAverageAtEnd: loadAtEnd, flagRows, captureRows }, null, 2)}\n`,
  );
  console.log(`wrote ${flags.out}`);
} finally {
  for (const c of candidates) await c.launched.close();
  await corpus.close();
}
