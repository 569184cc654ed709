/**
 * Where isolation's cost goes: the CPU that each phase of a render costs the whole machine, and each
 * kind of Chromium process, one render at a time on one browser:
 *
 *   bare     — goto + capture on a plain window (the bench's baseline);
 *   render   — the node's capture() on one of its slots;
 *   leave    — leavePage(): the navigation to about:blank that stops the page before its data is cleared;
 *   clear    — clearLeftovers(): cookies, storage, window.name, history and emulation.
 *
 * On two saturated cores CPU is throughput, so (render + leave + clear) ÷ bare bounds what `npm run bench` can
 * show for the node. Machine CPU (/proc/stat) is the authority: it includes renderers that exit mid-phase and
 * whatever else the machine runs, so compare phases within one run.
 *
 *   npm run bench:isolation -- [--renders 20] [--out bench/results/isolation.json]
 *
 * With --candidates it measures instead each way of cleaning a page listed in bench/lib/wipe-candidates.ts, on a
 * slot of its own, in rotating order, `--renders` rounds: CPU of this process's tree (the bench and its browser,
 * unaffected by what else the shared machine runs) for the render and for the wipe after it, and the wipe's time.
 *
 *   npm run bench:isolation -- --candidates [--renders 15] [--out bench/results/isolation-candidates.json]
 */
import fs from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger } from '../src/log/logger.js';
import { chromeEnvironment, createUrlPolicy } from '../src/policy/index.js';
import { benchCapture } from './lib/bench-capture.js';
import { createOptionsSchema, parseRenderOptions } from '../src/request/options.js';
import type { BrowserHandle } from '../src/render-pool/browser-manager.js';
import { launchBrowser } from '../src/render-pool/launch.js';
import { openSlot } from '../src/render-pool/page-slot.js';
import { clearLeftovers, leavePage } from '../src/render-pool/reset-slot.js';
import { repoRoot } from '../test/helpers/processes.js';
import { startCorpus } from './lib/corpus.js';
import { measureCandidates } from './lib/measure-candidates.js';

const { values: flags } = parseArgs({
  options: {
    renders: { type: 'string', default: '20' },
    'chrome-path': { type: 'string', default: '/usr/lib/chromium/chromium' },
    out: { type: 'string' },
    candidates: { type: 'boolean', default: false },
  },
});
if (flags.candidates) {
  await measureCandidates(Number(flags.renders), flags['chrome-path'], flags.out ?? path.join(repoRoot, 'bench/results/isolation-candidates.json'));
  process.exit(0);
}
const outPath = flags.out ?? path.join(repoRoot, 'bench/results/isolation.json');
const renders = Number(flags.renders);
const warmup = 3;
const phases = ['bare', 'render', 'leave', 'clear'] as const;
type Phase = (typeof phases)[number];

const clockTicksPerSecond = 100;
const ticksToMs = (ticks: number) => (ticks * 1000) / clockTicksPerSecond;

/** CPU ms used so far by the whole machine (every process, user + system). */
function machineCpuMs(): number {
  const [user, nice, system, , , irq, softirq] = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].split(/\s+/).slice(1).map(Number);
  return ticksToMs(user + nice + system + irq + softirq);
}

/** CPU ms used so far by this process and by each kind of Chromium process; exited renderers count under their zygote. */
function cpuByProcessKind(): Map<string, number> {
  const byKind = new Map<string, number>([['bench (node)', processCpuMs(process.pid, false)]]);
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline: string;
    try {
      cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    if (!cmdline.startsWith(flags['chrome-path'])) continue;
    const type = /--type=([\w-]+)/.exec(cmdline)?.[1] ?? 'browser';
    const service = /--utility-sub-type=[\w.]*\.(\w+)/.exec(cmdline)?.[1];
    const kind = type === 'zygote' ? 'renderer' : service ? `utility ${service}` : type;
    byKind.set(kind, (byKind.get(kind) ?? 0) + processCpuMs(Number(entry), type === 'zygote'));
  }
  return byKind;
}

function processCpuMs(pid: number, withReapedChildren: boolean): number {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    const [utime, stime, cutime, cstime] = fields.slice(11, 15).map(Number);
    return ticksToMs(utime + stime + (withReapedChildren ? cutime + cstime : 0));
  } catch {
    return 0;
  }
}

const totals = new Map<Phase, Map<string, number>>(phases.map((p) => [p, new Map()]));
async function measure(phase: Phase, work: () => Promise<unknown>, record: boolean): Promise<void> {
  const before = cpuByProcessKind();
  const machineBefore = machineCpuMs();
  await work();
  // Work a phase set off (a renderer exiting, a frame drawn) lands in it rather than in the next one.
  await new Promise((resolve) => setTimeout(resolve, 30));
  if (!record) return;
  const sums = totals.get(phase)!;
  sums.set('machine', (sums.get('machine') ?? 0) + machineCpuMs() - machineBefore);
  for (const [kind, ms] of cpuByProcessKind()) sums.set(kind, (sums.get(kind) ?? 0) + ms - (before.get(kind) ?? 0));
}

const corpus = await startCorpus(3, { assets: true });
const launched = await launchBrowser(flags['chrome-path'], { sandbox: false, env: chromeEnvironment(process.env) });
try {
  const browser: BrowserHandle = { launched, generation: 1, renders: 0, openPages: 0, dead: false, retired: false };
  const log = createLogger('silent');
  const slot = await openSlot(browser, {
    policy: createUrlPolicy({ allowPrivate: true, allowHosts: [], denyHosts: [] }),
    startProxy: () => Promise.reject(new Error('no proxy: the policy is off')),
    log,
    assetCache: { on: true, count: () => undefined },
  });
  const schema = createOptionsSchema({ maxViewport: 4096, maxTimeoutMs: 60_000, defaultTimeoutMs: 30_000, maxPixels: 100_000_000 });
  const bare = await launched.browser.newPage({ type: 'window', windowBounds: { width: 1280, height: 800 } });
  await bare.setViewport({ width: 1280, height: 800 });
  const bareCdp = await bare.createCDPSession();

  for (let i = 0; i < warmup + renders; i++) {
    const url = corpus.urls[i % corpus.urls.length];
    const record = i >= warmup;
    await measure(
      'bare',
      async () => {
        await bare.goto(url, { waitUntil: 'load', timeout: 30_000 });
        await bareCdp.send('Page.captureScreenshot', { format: 'png', fromSurface: true });
      },
      record,
    );
    const options = parseRenderOptions(schema, { url, format: 'png' });
    await measure('render', () => benchCapture(slot, options, log), record);
    await measure('leave', () => leavePage(slot), record);
    await measure('clear', () => clearLeftovers(slot), record);
  }
} finally {
  await launched.close();
  await corpus.close();
}

const kinds = [...new Set([...totals.values()].flatMap((m) => [...m.keys()]))].filter((k) => k !== 'machine');
const perRender = (phase: Phase, kind: string) => Math.round((totals.get(phase)!.get(kind) ?? 0) / renders);
const header = ['phase', 'machine ms', ...kinds.map((k) => `${k} ms`)];
const lines = phases.map((p) => [p, perRender(p, 'machine'), ...kinds.map((k) => perRender(p, k))]);
console.log([header, header.map((h) => '-'.repeat(h.length)), ...lines].map((r) => `| ${r.join(' | ')} |`).join('\n'));
const isolated = perRender('render', 'machine') + perRender('leave', 'machine') + perRender('clear', 'machine');
const bound = perRender('bare', 'machine') / isolated;
console.log(
  `\nCPU per render: bare ${perRender('bare', 'machine')} ms, isolated ${isolated} ms → at most ${bound.toFixed(2)} of bare's throughput on saturated cores`,
);

const out = {
  date: new Date().toISOString(),
  renders,
  cpuMsPerRender: Object.fromEntries(phases.map((p) => [p, Object.fromEntries([...totals.get(p)!].map(([k, v]) => [k, Math.round(v / renders)]))])),
  throughputBound: Math.round(bound * 100) / 100,
};
await writeFile(outPath, `${JSON.stringify(out, null, 2)}\n`);
console.log(`wrote ${outPath}`);
