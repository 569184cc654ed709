/**
 * The chaos soak: two nodes, the hub and a real HAProxy started from the hub's config, an open-loop
 * client at a share (--load, 0.8) of the fleet's capacity measured first through HAProxy, for --minutes (10).
 * 20 % of requests carry a shot_session cookie (a pool of session ids), 5 % ask for hostile pages (a script that
 * never returns, a popup flood, a document that never ends) with a short deadline, the rest ordinary pages from
 * four loopback hosts. 503s are waited out as `shotfleet shoot` does (Retry-After). Meanwhile, on a schedule:
 * the renderers of a node are SIGKILLed every 30 s, a whole browser every 2 min, and a node is SIGTERMed and
 * started again every 3 min (the hub must list it again and HAProxy route to it).
 *
 *   npm run bench:soak -- [--minutes 10] [--pages 2] [--load 0.8] [--renderer-every 30] [--browser-every 120]
 *                         [--restart-every 180] [--out bench/results/soak]
 *
 * Everything runs on loopback (nodes on 127.0.0.21 and .22, pages on 127.0.0.1–.5). It stops by itself and ends
 * every process it started, on Ctrl-C or a crash too. Writes <out>.json and <out>.svg and prints a table.
 */
import fs from 'node:fs';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { processKind, startChaos, type ChaosEvent } from './lib/chaos.js';
import { cleanUpOnExit, killPids, leftoverChromium } from './lib/children.js';
import { startCorpus } from './lib/corpus.js';
import { startHostilePages } from './lib/hostile-pages.js';
import { processFigures } from './lib/proc-stats.js';
import { startSoakClient, type Mix, type SoakOutcome } from './lib/soak-client.js';
import { freePort, nodeSlot, repoRoot, startHaproxy, startHub, startNodeProcess, until, type Haproxy, type Hub, type NodeSlot } from './lib/soak-fleet.js';
import { drift, markdownTable, perMinute, restartWindows, summarize, timelineSvg, unexpectedBesideChaos, type ProcessSample } from './lib/soak-report.js';
import { round } from './lib/stats.js';

const { values: flags } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    pages: { type: 'string', default: '2' },
    load: { type: 'string', default: '0.8' },
    'renderer-every': { type: 'string', default: '30' },
    'browser-every': { type: 'string', default: '120' },
    'restart-every': { type: 'string', default: '180' },
    'ramp-seconds': { type: 'string', default: '10' },
    out: { type: 'string', default: path.join(repoRoot, 'bench/results/soak') },
    help: { type: 'boolean', default: false },
  },
});
if (flags.help) {
  console.log(fs.readFileSync(new URL(import.meta.url), 'utf8').split('*/')[0]);
  process.exit(0);
}

const minutes = Number(flags.minutes);
const pages = Number(flags.pages);
const loadShare = Number(flags.load);
for (const [name, v] of [
  ['--minutes', minutes],
  ['--pages', pages],
  ['--load', loadShare],
] as const) {
  if (!(v > 0)) throw new Error(`${name} must be a positive number`);
}
const durationMs = Math.round(minutes * 60_000);
const token = 'soak-token';
/** SIGTERM → SIGKILL bound when the bench stops a node: the node's default drain (30 s) plus time to close. */
const stopGraceMs = 40_000;
const log = (line: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shotfleet-soak-'));
const socket = path.join(dir, 'haproxy-admin.sock');
const nodes: NodeSlot[] = [];
let hub: Hub | undefined;
let haproxy: Haproxy | undefined;
const closers: (() => Promise<void>)[] = [];

/** Stops nodes first (SIGTERM, drain), then HAProxy, the hub and the bench's own servers. */
async function stopAll(): Promise<{ node: string; code: number | null; signal: string | null; killed: boolean; ms: number }[]> {
  const ends = await Promise.all(
    nodes.map(async (n) => {
      const t = Date.now();
      const how = await n.child.stop(stopGraceMs);
      return { node: n.id, code: how.code, signal: how.signal, killed: how.killed, ms: Date.now() - t };
    }),
  );
  await haproxy?.child.stop(5000);
  await hub?.child.stop(10_000);
  for (const close of closers.splice(0)) await close().catch(() => undefined);
  return ends;
}
cleanUpOnExit(async () => {
  await stopAll();
  fs.rmSync(dir, { recursive: true, force: true });
});

const corpus = await startCorpus(4, { assets: true });
closers.push(() => corpus.close());
const hostile = await startHostilePages('127.0.0.5');
closers.push(() => hostile.close());

const agentPort = await freePort();
hub = await startHub({ token, socket, agentPort });
log(`hub ${hub.url}`);
const nodeEnv = {
  SHOTFLEET_HUB_URL: hub.url,
  SHOTFLEET_TOKEN: token,
  SHOTFLEET_PAGES: String(pages),
  SHOTFLEET_AGENT_PORT: String(agentPort),
  SHOTFLEET_ALLOW_HOSTS: [...corpus.hosts, hostile.host].join(','),
};
for (const [id, host] of [
  ['soak-a', '127.0.0.21'],
  ['soak-b', '127.0.0.22'],
] as const) {
  const slot = nodeSlot(id, host, await freePort(host), nodeEnv);
  const readyMs = await startNodeProcess(slot);
  nodes.push(slot as NodeSlot);
  log(`${id} ${slot.url}: first /status 200 after ${readyMs} ms`);
}
for (const n of nodes) {
  const ms = await until(async () => (await hub!.nodes()).some((x) => x.id === n.id && x.state === 'up'), 60_000);
  if (ms === null) throw new Error(`the hub did not list ${n.id} as up within 60 s`);
}
haproxy = await startHaproxy(hub, socket, dir);
for (const n of nodes) {
  if ((await until(() => haproxy!.routes(n.host, n.port), 60_000)) === null) throw new Error(`HAProxy did not route to ${n.id} within 60 s`);
}
log(`HAProxy ${haproxy.frontUrl} routes to ${nodes.map((n) => n.id).join(' and ')}`);

const mix: Mix = {
  ordinaryUrls: corpus.urls,
  hostileUrls: hostile.urls,
  sessionIds: Array.from({ length: 6 }, (_, i) => `soak-session-${i + 1}`),
  sessionShare: 0.2,
  hostileShare: 0.05,
  timeoutMs: 15_000,
  hostileTimeoutMs: 3000,
  sessionCookie: 'shot_session',
  seed: 10,
};

/** Closed-loop ramp through HAProxy with the soak's own mix: the best rate of answers other than 503 is the capacity. */
async function measureCapacity(): Promise<{ steps: { concurrency: number; answeredPerSecond: number; ok: number; shed: number }[]; capacity: number }> {
  const totalPages = pages * nodes.length;
  const stepMs = Number(flags['ramp-seconds']) * 1000;
  const steps = [];
  for (const concurrency of [Math.max(1, totalPages / 2), totalPages, totalPages * 2]) {
    const outcomes: SoakOutcome[] = [];
    const started = Date.now();
    await startSoakClient(
      { frontUrl: haproxy!.frontUrl, token, mix: { ...mix, seed: concurrency }, load: { kind: 'closed', concurrency, durationMs: stepMs } },
      (o) => outcomes.push(o),
    ).done;
    const seconds = (Date.now() - started) / 1000;
    const answeredCount = outcomes.filter((o) => o.status !== 503 && o.status !== 0).length;
    steps.push({
      concurrency,
      answeredPerSecond: round(answeredCount / seconds, 2)!,
      ok: outcomes.filter((o) => o.status === 200).length,
      shed: outcomes.filter((o) => o.status === 503).length,
    });
    log(`ramp: ${concurrency} in flight → ${(answeredCount / seconds).toFixed(2)} answers/s (${steps.at(-1)!.ok} ok, ${steps.at(-1)!.shed} shed)`);
  }
  return { steps, capacity: Math.max(...steps.map((s) => s.answeredPerSecond)) };
}

// The first requests of each host warm renderers and the node's estimates; they are not counted.
await startSoakClient(
  { frontUrl: haproxy.frontUrl, token, mix: { ...mix, seed: 1 }, load: { kind: 'closed', concurrency: pages * nodes.length, durationMs: 5000 } },
  () => undefined,
).done;
const ramp = await measureCapacity();
const rate = ramp.capacity * loadShare;
log(`capacity ${ramp.capacity.toFixed(2)}/s through HAProxy; soaking at ${rate.toFixed(2)}/s for ${minutes} min`);

const outcomes: SoakOutcome[] = [];
const samples: ProcessSample[] = [];
const start = Date.now();
let sampling = true;
const sampler = (async () => {
  while (sampling) {
    for (const n of nodes) {
      if (n.child.proc.exitCode !== null || n.child.proc.signalCode !== null) continue;
      try {
        samples.push({ at: Date.now(), node: n.id, generation: n.generation, ...(await processFigures(n.child.pid)) });
      } catch {
        // the node ended while it was read (a restart)
      }
    }
    await new Promise((r) => setTimeout(r, 5000));
  }
})();
const chaos = startChaos(
  {
    nodes,
    hub,
    haproxy,
    plan: {
      rendererEveryMs: Number(flags['renderer-every']) * 1000,
      browserEveryMs: Number(flags['browser-every']) * 1000,
      restartEveryMs: Number(flags['restart-every']) * 1000,
      stopGraceMs,
    },
    log,
  },
  durationMs,
);
const progress = setInterval(() => {
  const recent = outcomes.filter((o) => o.doneAt > Date.now() - 30_000);
  log(
    `${Math.round((Date.now() - start) / 1000)} s: ${outcomes.length} done; last 30 s: ${recent.filter((o) => o.status === 200).length} ok, ${recent.filter((o) => o.status !== 200).length} other (${[...new Set(recent.filter((o) => o.status !== 200).map((o) => `${o.status} ${o.code ?? ''}`))].join(', ')}), load ${os.loadavg()[0].toFixed(1)}`,
  );
}, 30_000);
const client = startSoakClient({ frontUrl: haproxy.frontUrl, token, mix, load: { kind: 'open', ratePerSecond: rate, durationMs } }, (o) => outcomes.push(o));
const loadAverages: number[] = [];
const loadTimer = setInterval(() => loadAverages.push(round(os.loadavg()[0], 2)!), 60_000);
const sent = await client.done;
const sendEnd = Date.now();
log(`sent ${sent}; every answer in after ${Math.round((sendEnd - start) / 1000)} s`);
clearInterval(loadTimer);
// Bounded: a restart under way may take its node's drain and start; nothing after the run may hang the bench.
await bounded(chaos.stop(), 200_000, 'the chaos still under way');
log('chaos over');
sampling = false;
await bounded(sampler, 20_000, 'the last process sample');
clearInterval(progress);
log('stopping the fleet');

/** Warnings and errors of every process that served each node (the last 40), with their messages only. */
const problems = Object.fromEntries(
  nodes.map((n) => [
    n.id,
    n.children
      .flatMap((c, g) =>
        c.problems.map((p) => ({
          generation: g + 1,
          at: p.time,
          msg: p.msg,
          err: typeof p.err === 'object' && p.err ? (p.err as { message?: string }).message : p.err,
        })),
      )
      .slice(-40),
  ]),
);
/** How often each log message came, over every process of each node (request lines left out). */
const nodeMessages = Object.fromEntries(
  nodes.map((n) => {
    const counts = new Map<string, number>();
    for (const c of n.children) for (const [m, k] of c.messages) if (m !== 'request') counts.set(m, (counts.get(m) ?? 0) + k);
    return [n.id, Object.fromEntries([...counts].sort((a, b) => b[1] - a[1]).slice(0, 25))];
  }),
);
const ends = await stopAll();
await new Promise((r) => setTimeout(r, 1000));
const leftover = leftoverChromium();
killPids(leftover.map((p) => p.pid));
fs.rmSync(dir, { recursive: true, force: true });

const ids = nodes.map((n) => n.id);
const windows = restartWindows(chaos.events);
const rows = perMinute(outcomes, samples, start, Math.ceil(minutes), ids);
const summary = summarize(outcomes, windows);
const drifts = drift(rows, ids);
/** From a restarted node's spawn to the first answer a client got from it through HAProxy. */
const firstAnswerMs = (node: string, spawnAt: number) => {
  const first = outcomes.filter((o) => o.node === node && o.doneAt > spawnAt).sort((a, b) => a.doneAt - b.doneAt)[0];
  return first ? first.doneAt - spawnAt : null;
};
const restarts = chaos.events
  .filter((e) => e.restart)
  .map((e) => {
    const { sigtermAt, spawnAt, backAt, ...figures } = e.restart!;
    return {
      node: e.node,
      atS: Math.round((sigtermAt - start) / 1000),
      ...figures,
      firstAnswerMs: firstAnswerMs(e.node, spawnAt),
      windowS: round((backAt - sigtermAt) / 1000, 1),
    };
  });
const chaosCounts = (kind: ChaosEvent['kind']) => chaos.events.filter((e) => e.kind === kind);
const report = {
  date: new Date().toISOString(),
  commit: process.env.SOAK_COMMIT ?? null,
  machine: {
    cpus: os.availableParallelism(),
    memoryBytes: os.totalmem(),
    node: process.version,
    loadAveragePerMinute: loadAverages,
    loadAverageAtEnd: os.loadavg().map((x) => round(x, 2)),
  },
  settings: {
    minutes,
    pagesPerNode: pages,
    nodes: ids,
    load: loadShare,
    ratePerSecond: round(rate, 2),
    mix: { ...mix, ordinaryUrls: mix.ordinaryUrls.length, hostileUrls: hostile.urls },
    chaos: { rendererEveryS: Number(flags['renderer-every']), browserEveryS: Number(flags['browser-every']), restartEveryS: Number(flags['restart-every']) },
  },
  capacity: ramp,
  summary: { ...summary, sentBySender: sent, chromiumLeftAfterRun: leftover.length },
  targets: {
    answeredShare: { target: 1, got: summary.answeredShare },
    errors500: { target: 0, got: summary.errors500 },
    connectionErrorsOutsideRestarts: { target: 0, got: summary.connectionErrorsOutsideRestarts },
    memoryDriftAfterFirstMinute: { target: '< 0.10', got: Object.fromEntries(ids.map((id) => [id, drifts[id].total])) },
    fdDriftAfterFirstMinute: {
      target: '< 0.10',
      got: Object.fromEntries(ids.map((id) => [id, { node: drifts[id].nodeFds, chromium: drifts[id].chromiumFds }])),
    },
    chromiumLeftAfterRun: { target: 0, got: leftover.length },
  },
  chaos: {
    rendererKills: chaosCounts('renderers').map((e) => ({
      atS: Math.round((e.at - start) / 1000),
      node: e.node,
      killed: e.killed,
      orphansAfter2s: e.orphansAfter2s,
      orphanTypes: e.orphanTypes,
      skipped: e.skipped,
    })),
    browserKills: chaosCounts('browser').map((e) => ({
      atS: Math.round((e.at - start) / 1000),
      node: e.node,
      killed: e.killed,
      orphansAfter2s: e.orphansAfter2s,
      orphanTypes: e.orphanTypes,
      skipped: e.skipped,
    })),
    restarts,
  },
  unexpected: unexpectedBesideChaos(outcomes, chaos.events, start),
  perMinute: rows,
  drift: drifts,
  nodeEnds: ends,
  leftoverChromium: leftover.slice(0, 20).map((p) => ({ pid: p.pid, kind: processKind(p) })),
  nodeWarnings: problems,
  nodeLogMessages: nodeMessages,
};
await writeFile(`${flags.out}.json`, `${JSON.stringify(report, null, 2)}\n`);
await writeFile(
  `${flags.out}.svg`,
  timelineSvg(
    `shotfleet chaos soak: 2 nodes × ${pages} pages, ${rate.toFixed(1)}/s for ${minutes} min`,
    outcomes,
    samples,
    chaos.events,
    start,
    durationMs,
    ids,
  ),
);

const minuteTable = markdownTable(
  [
    'min',
    'sent',
    'answered',
    '200',
    'unexpected',
    '503 waits',
    'p50 ms',
    'p99 ms',
    ...ids.flatMap((id) => [`${id} gen`, `${id} node MB`, `${id} Chromium MB`, `${id} fds node/Chromium`]),
  ],
  rows.map((r) => [
    r.minute,
    r.sent,
    r.answered,
    r.ok,
    r.unexpected,
    r.shedRetries,
    r.p50Ms,
    r.p99Ms,
    ...ids.flatMap((id) => {
      const n = r.nodes[id];
      return [n.generations.join(',') || '–', n.nodeRssMB, n.chromiumMB, `${n.nodeFds ?? '–'}/${n.chromiumFds ?? '–'}`];
    }),
  ]),
);
const targetTable = markdownTable(
  ['figure', 'target', 'this run'],
  [
    ['requests answered / sent', '100 %', `${summary.answered} / ${summary.sent} (${round(100 * (summary.answeredShare ?? 0), 2)} %)`],
    ['500 answers', '0', summary.errors500],
    ['connection errors outside restart windows', '0', `${summary.connectionErrorsOutsideRestarts} (inside: ${summary.connectionErrorsInRestarts})`],
    ["answers other than 200 or a hostile page's 504", '–', summary.unexpected],
    ['p50 / p99 of 200s (ordinary + session, from due time, 503 waits included)', '–', `${summary.p50Ms} / ${summary.p99Ms} ms`],
    ['memory drift, node + Chromium, minute 2 → last', '< 10 %', ids.map((id) => `${id} ${fmtShare(drifts[id].total)}`).join(', ')],
    ['open fds drift, node / Chromium', '< 10 %', ids.map((id) => `${id} ${fmtShare(drifts[id].nodeFds)} / ${fmtShare(drifts[id].chromiumFds)}`).join(', ')],
    ['Chromium processes left after the run', '0', leftover.length],
  ],
);
const restartTable = markdownTable(
  ['at s', 'node', 'drain ms', 'exit', 'Chromium left 1 s after exit', 'ready ms', 'hub up ms', 'HAProxy routes ms', 'first answer ms', 'error'],
  restarts.map((r) => [
    r.atS,
    r.node,
    r.drainMs,
    `${r.exitCode ?? r.exitSignal}${r.killedAfterGrace ? ' (SIGKILL)' : ''}`,
    `${r.leftoverChromiumAfter1s}${r.leftoverTypes.length ? ` (${r.leftoverTypes.join(', ')})` : ''}`,
    r.readyMs,
    r.hubUpMs,
    r.haproxyRoutesMs,
    r.firstAnswerMs,
    r.error ?? '',
  ]),
);
console.log(
  `\n${targetTable}\n\nunexpected answers: ${JSON.stringify(summary.unexpectedByCode)}\nby kind: ${JSON.stringify(summary.byKind, null, 1)}\nsession answers: ${JSON.stringify(summary.sessionAnswers)}\nchaos: ${chaosCounts('renderers').length} renderer kills (${chaosCounts('renderers').reduce((a, e) => a + (e.killed ?? 0), 0)} processes), ${chaosCounts('browser').length} browser kills, ${restarts.length} restarts; orphaned Chromium after kills: ${chaos.events.reduce((a, e) => a + (e.orphansAfter2s ?? 0), 0)}\n\n${minuteTable}\n\n${restartTable}\n`,
);
const fiveHundreds = report.unexpected.filter((u) => u.answer.startsWith('500'));
if (fiveHundreds.length > 0) {
  console.log(
    `500s beside the chaos before them: ${fiveHundreds.map((u) => `${u.doneS} s on ${u.node}${u.lastChaos ? ` (${u.lastChaos.kind} of ${u.lastChaos.node} ${u.lastChaos.secondsBeforeAnswer} s before)` : ' (no chaos in the 30 s before it was sent)'}`).join('; ')}`,
  );
}
console.log(`load average (1 min) per minute: ${loadAverages.join(', ')}; wrote ${flags.out}.json and ${flags.out}.svg`);
process.exit(0);

async function bounded(p: Promise<unknown>, ms: number, what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      log(`gave up waiting for ${what} after ${ms / 1000} s`);
      resolve();
    }, ms);
  });
  await Promise.race([p, late]);
  clearTimeout(timer);
}

function fmtShare(x: number | null | undefined): string {
  return x === null || x === undefined ? '–' : `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)} %`;
}
