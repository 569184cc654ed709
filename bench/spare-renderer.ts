/**
 * Why the node keeps no spare renderer: two nodes side by side, the node as it is and one whose Chromium keeps the
 * spare (its flag taken back out of --disable-features by a wrapper script given as SHOTFLEET_CHROME_PATH), at
 * concurrency 2 over the multi-host local corpus, runs alternating. Shots per second and the machine's CPU per shot
 * (/proc/stat, both nodes running throughout), medians over the runs.
 *
 *   npm run bench:spare-renderer -- [--runs 4] [--shots 30] [--out bench/results/spare-renderer.json]
 */
import fs from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot, startShotfleet, type RunningProcess } from '../test/helpers/processes.js';
import { closedLoop } from './lib/closed-loop.js';
import { startCorpus } from './lib/corpus.js';
import { quantile, round } from './lib/stats.js';

const { values: flags } = parseArgs({
  options: {
    runs: { type: 'string', default: '4' },
    shots: { type: 'string', default: '30' },
    'chrome-path': { type: 'string', default: '/usr/lib/chromium/chromium' },
    out: { type: 'string', default: path.join(repoRoot, 'bench/results/spare-renderer.json') },
  },
});

const workDir = await mkdtemp(path.join(os.tmpdir(), 'shotfleet-spare-'));
const withSpare = path.join(workDir, 'chromium-with-spare');
await writeFile(
  withSpare,
  `#!/bin/bash\nargs=()\nfor a in "$@"; do args+=("\${a//,SpareRendererForSitePerProcess/}"); done\nexec ${JSON.stringify(flags['chrome-path'])} "\${args[@]}"\n`,
  { mode: 0o755 },
);

const corpus = await startCorpus(3, { assets: true });
const env = { SHOTFLEET_PAGES: '2', SHOTFLEET_ALLOW_HOSTS: '127.0.0.1,127.0.0.2,127.0.0.3', SHOTFLEET_LOG_LEVEL: 'warn' };
const nodes: Record<string, RunningProcess> = {};
try {
  nodes['no spare (the node)'] = await startShotfleet('serve', { ...env, SHOTFLEET_CHROME_PATH: flags['chrome-path'] });
  nodes['spare kept'] = await startShotfleet('serve', { ...env, SHOTFLEET_CHROME_PATH: withSpare });

  /** Busy CPU time of the whole machine, in ms. */
  const machineBusyMs = () => {
    const v = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    return (v.reduce((a, b) => a + b, 0) - v[3] - v[4]) * 10;
  };
  const runs: Record<string, { perSecond: number; cpuMsPerShot: number; errors: number }[]> = {};
  for (let r = 0; r < Number(flags.runs); r++) {
    const names = Object.keys(nodes);
    for (const name of r % 2 ? names.reverse() : names) {
      const node = nodes[name];
      let busyAtStart = 0;
      const run = await closedLoop({
        shoot: async (url) => {
          const res = await fetch(`${node.url}/screenshot`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ url, format: 'jpeg' }),
          });
          const bytes = Buffer.from(await res.arrayBuffer());
          if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
          return bytes;
        },
        urls: corpus.urls,
        workers: 2,
        offset: r * 7,
        shots: Number(flags.shots),
        budgetMs: 90_000,
        onMeasureStart: () => (busyAtStart = machineBusyMs()),
      });
      const shots = run.latencies.length;
      const result = { perSecond: shots / run.seconds, cpuMsPerShot: (machineBusyMs() - busyAtStart) / Math.max(1, shots), errors: run.errors };
      runs[name] ??= [];
      runs[name].push(result);
      console.log(`run ${r + 1} ${name}: ${round(result.perSecond, 2)}/s, ${Math.round(result.cpuMsPerShot)} ms of machine CPU per shot, ${run.errors} errors`);
    }
  }
  const rows = Object.entries(runs).map(([name, rs]) => ({
    name,
    perSecond: round(
      quantile(
        rs.map((x) => x.perSecond),
        0.5,
      ),
      2,
    ),
    cpuMsPerShot: Math.round(
      quantile(
        rs.map((x) => x.cpuMsPerShot),
        0.5,
      ),
    ),
    errors: rs.reduce((a, x) => a + x.errors, 0),
  }));
  console.log('\n| Chromium | shots/s | machine CPU ms per shot | errors |\n|---|---|---|---|');
  for (const row of rows) console.log(`| ${row.name} | ${row.perSecond} | ${row.cpuMsPerShot} | ${row.errors} |`);
  await writeFile(flags.out, `${JSON.stringify({ date: new Date().toISOString(), loadavg: os.loadavg(), rows, runs }, null, 2)}\n`);
  console.log(`wrote ${path.relative(process.cwd(), flags.out)}`);
} finally {
  await Promise.all(Object.values(nodes).map((n) => n.stop()));
  await corpus.close();
  await rm(workDir, { recursive: true, force: true });
}
