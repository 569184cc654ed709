import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import { createLogger } from '../../src/log/logger.js';
import { chromeEnvironment, createUrlPolicy } from '../../src/policy/index.js';
import { benchCapture } from './bench-capture.js';
import { createOptionsSchema, parseRenderOptions } from '../../src/request/options.js';
import type { BrowserHandle } from '../../src/render-pool/browser-manager.js';
import { launchBrowser } from '../../src/render-pool/launch.js';
import { openSlot, type PageSlot } from '../../src/render-pool/page-slot.js';
import { startCorpus } from './corpus.js';
import { treeCpuMs } from './cpu.js';
import { quantile } from './stats.js';
import { wipeCandidates } from './wipe-candidates.js';

interface Sums {
  renderCpu: number[];
  wipeCpu: number[];
  wipeMs: number[];
  errors: number;
}

/** CPU (this process's tree) and wall time of one phase; work it set off lands in it, not in the next (30 ms). */
async function timed(work: () => Promise<unknown>): Promise<{ cpu: number; ms: number }> {
  const cpuBefore = treeCpuMs(process.pid);
  const t0 = performance.now();
  await work();
  const ms = performance.now() - t0;
  await new Promise((resolve) => setTimeout(resolve, 30));
  return { cpu: treeCpuMs(process.pid) - cpuBefore, ms };
}

/** `npm run bench:isolation -- --candidates`: each wipe candidate on a slot of its own, rounds in rotating order. */
export async function measureCandidates(rounds: number, chromePath: string, outPath: string): Promise<void> {
  const warmup = 2;
  const loadAtStart = os.loadavg();
  const corpus = await startCorpus(3, { assets: true });
  const launched = await launchBrowser(chromePath, { sandbox: false, env: chromeEnvironment(process.env) });
  const sums = new Map<string, Sums>(wipeCandidates.map((c) => [c.name, { renderCpu: [], wipeCpu: [], wipeMs: [], errors: 0 }]));
  try {
    const browser: BrowserHandle = { launched, generation: 1, renders: 0, openPages: 0, dead: false, retired: false };
    const log = createLogger('silent');
    const deps = {
      policy: createUrlPolicy({ allowPrivate: true, allowHosts: [], denyHosts: [] }),
      startProxy: () => Promise.reject(new Error('no proxy: the policy is off')),
      log,
      assetCache: { on: true, count: () => undefined },
    };
    const schema = createOptionsSchema({ maxViewport: 4096, maxTimeoutMs: 60_000, defaultTimeoutMs: 30_000, maxPixels: 100_000_000 });
    const slots = new Map<string, PageSlot>();
    for (const candidate of wipeCandidates) {
      const slot = await openSlot(browser, deps);
      await candidate.prepare?.(slot);
      slots.set(candidate.name, slot);
    }
    for (let round = 0; round < warmup + rounds; round++) {
      const url = corpus.urls[round % corpus.urls.length];
      const order = wipeCandidates.map((_, i) => wipeCandidates[(i + round) % wipeCandidates.length]);
      for (const candidate of order) {
        const slot = slots.get(candidate.name)!;
        const figures = sums.get(candidate.name)!;
        const options = parseRenderOptions(schema, { url, format: 'png', ...candidate.options });
        try {
          const render = await timed(() => benchCapture(slot, options, log));
          const wipe = await timed(() => candidate.wipe(slot));
          if (round < warmup) continue;
          figures.renderCpu.push(render.cpu);
          figures.wipeCpu.push(wipe.cpu);
          figures.wipeMs.push(wipe.ms);
        } catch (err) {
          figures.errors++;
          console.error(`${candidate.name}: ${(err as Error).message.split('\n')[0]}`);
        }
      }
      if (round >= warmup) console.error(`round ${round - warmup + 1}/${rounds} done, load ${os.loadavg()[0].toFixed(1)}`);
    }
  } finally {
    await launched.close();
    await corpus.close();
  }

  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);
  const node = sums.get(wipeCandidates[0].name)!;
  const nodeTotal = mean(node.renderCpu) + mean(node.wipeCpu);
  const rows = wipeCandidates.map((c) => {
    const s = sums.get(c.name)!;
    const total = mean(s.renderCpu) + mean(s.wipeCpu);
    return {
      name: c.name,
      note: c.note,
      renderCpuMs: Math.round(mean(s.renderCpu)),
      wipeCpuMs: Math.round(mean(s.wipeCpu)),
      wipeCpuMedianMs: Math.round(quantile(s.wipeCpu, 0.5)),
      totalCpuMs: Math.round(total),
      vsNodeMs: Math.round(total - nodeTotal),
      wipeP50Ms: Math.round(quantile(s.wipeMs, 0.5)),
      errors: s.errors,
    };
  });
  const loadAtEnd = os.loadavg();
  console.log(
    [
      `wipe candidates: ${rounds} rounds, CPU of the bench's process tree (bench + its Chromium) per render, means; load ${loadAtStart[0].toFixed(1)} → ${loadAtEnd[0].toFixed(1)}`,
      '| candidate | render CPU ms | wipe CPU ms (median) | render + wipe | vs node | wipe p50 ms | errors |',
      '|---|---|---|---|---|---|---|',
      ...rows.map(
        (r) =>
          `| ${r.name} | ${r.renderCpuMs} | ${r.wipeCpuMs} (${r.wipeCpuMedianMs}) | ${r.totalCpuMs} | ${r.vsNodeMs >= 0 ? '+' : ''}${r.vsNodeMs} | ${r.wipeP50Ms} | ${r.errors} |`,
      ),
    ].join('\n'),
  );
  await writeFile(
    outPath,
    `${JSON.stringify({ date: new Date().toISOString(), rounds, loadAverageAtStart: loadAtStart, loadAverageAtEnd: loadAtEnd, cpus: os.cpus().length, candidates: rows }, null, 2)}\n`,
  );
  console.log(`wrote ${outPath}`);
}
