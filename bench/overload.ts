/**
 * The overload proof: an open-loop, constant-arrival load at 0.5×, 1×, 2×, 5× and 10× of a node's
 * measured capacity, against the node with admission control (adaptive limit on, then off) and without it
 * (SHOTFLEET_ADMISSION=false: unbounded FIFO). Writes bench/results/overload.json and overload.svg; prints a table.
 * Beside each step a trivial server gets the same load, up to 10/s (bench/lib/floor-server.ts): its 503 times are the floor
 * for the node's shed answers on this machine.
 *
 *   npm run bench:overload -- [--pages N] [--step-seconds 20] [--timeout-ms 10000] [--modes adaptive,fixed,off] [--node-env K=V,…]
 */
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot, startShotfleet, type RunningProcess } from '../test/helpers/processes.js';
import { lineChartsSvg } from './lib/chart.js';
import { startCorpus } from './lib/corpus.js';
import { startFloorServer } from './lib/floor-server.js';
import { parseNodeEnv } from './lib/node-env.js';
import { measureCapacity, runOpenLoop, type Outcome } from './lib/open-loop.js';
import { nodeStatus, nodeTreeMemory, sampleEvery } from './lib/samplers.js';
import { quantile, round } from './lib/stats.js';

const { values: flags } = parseArgs({
  options: {
    pages: { type: 'string' },
    'step-seconds': { type: 'string', default: '20' },
    'timeout-ms': { type: 'string', default: '10000' },
    modes: { type: 'string', default: 'adaptive,fixed,off' },
    /** Extra node settings for every mode, e.g. SHOTFLEET_QUEUE_MAX=2. */
    'node-env': { type: 'string', default: '' },
    out: { type: 'string', default: path.join(repoRoot, 'bench/results/overload') },
  },
});

const multipliers = [0.5, 1, 2, 5, 10];
const nodeEnv = parseNodeEnv(flags['node-env']);
const stepMs = Number(flags['step-seconds']) * 1000;
const timeoutMs = Number(flags['timeout-ms']);
/** The client waits this much past the request's own timeout before it calls it a client timeout. */
const clientGraceMs = 2000;
/** The floor server's rate is capped: its answers cost CPU too, and more of them would slow the node's renders. */
const floorRateMax = 10;

const modes = {
  adaptive: { label: 'admission, adaptive limit', color: '#1f77b4', env: { SHOTFLEET_ADMISSION: 'true', SHOTFLEET_ADAPTIVE_CONCURRENCY: 'true' } },
  fixed: { label: 'admission, fixed limit', color: '#2ca02c', env: { SHOTFLEET_ADMISSION: 'true', SHOTFLEET_ADAPTIVE_CONCURRENCY: 'false' } },
  off: { label: 'no admission (unbounded queue)', color: '#d62728', env: { SHOTFLEET_ADMISSION: 'false', SHOTFLEET_ADAPTIVE_CONCURRENCY: 'false' } },
} as const;
type Mode = keyof typeof modes;

interface StepResult {
  multiplier: number;
  ratePerSecond: number;
  sent: number;
  goodputPerSecond: number;
  ok: number;
  acceptedP50Ms: number | null;
  acceptedP99Ms: number | null;
  shed: number;
  /** p99 of immediate refusals (every reason but queue_timeout, which by definition waited in the queue first). */
  shedP99Ms: number | null;
  /** The same refusals timed from when the generator actually sent them (its own lateness left out). */
  shedFromSendP99Ms: number | null;
  /** p99 of how late the generator sent requests: its own event loop, or a core it waited for. */
  sendLagP99Ms: number | null;
  /** p99 of a trivial server's 503s (bench/lib/floor-server.ts) sent alongside (same rate, at most floorRateMax), timed like shedFromSend. */
  floorP99Ms: number | null;
  /** The same refusals as timed by the node itself (its request log's ms), without the client's and the OS's share. */
  shedServerP99Ms: number | null;
  queueTimeouts: number;
  shedShare: number;
  shedReasons: Record<string, number>;
  retryAfterMissing: number;
  otherErrors: Record<string, number>;
  clientTimeouts: number;
  maxPagesInUse: number;
  concurrencyLimit: { min: number; max: number } | null;
  memoryMaxMB: number | null;
  memoryMeanMB: number | null;
}

const corpus = await startCorpus(4);
const floor = await startFloorServer();
const body = (i: number) => {
  const jpeg = i % 3 === 2;
  return { url: corpus.urls[i % corpus.urls.length], format: jpeg ? 'jpeg' : 'png', ...(jpeg ? { quality: 80 } : {}), timeout: timeoutMs };
};

async function startNode(mode: Mode): Promise<RunningProcess> {
  return startShotfleet(
    'serve',
    {
      SHOTFLEET_ALLOW_HOSTS: corpus.hosts.join(','),
      ...(flags.pages ? { SHOTFLEET_PAGES: flags.pages } : {}),
      ...nodeEnv,
      ...modes[mode].env,
    },
    { timeoutMs: 60_000 },
  );
}

async function waitIdle(url: string): Promise<void> {
  const read = nodeStatus(url);
  for (let i = 0; i < 600; i++) {
    const s = await read().catch(() => undefined);
    if (s && s.inUse === 0 && s.queued === 0) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('the node did not become idle within 120 s');
}

function summarize(
  multiplier: number,
  rate: number,
  outcomes: Outcome[],
  floorOutcomes: Outcome[],
  statuses: { inUse: number; limit: number }[],
  memory: number[],
  nodeLog: Record<string, unknown>[],
): StepResult {
  const ok = outcomes.filter((o) => o.status === 200);
  const good = ok.filter((o) => o.latencyMs <= timeoutMs);
  const shed = outcomes.filter((o) => o.status === 503);
  const immediate = shed.filter((o) => o.reason !== 'queue_timeout');
  // The node's log line has no reason: queue timeouts are its slowest 503s (they waited), so leave those out.
  const immediateNodeTimes = nodeLog
    .filter((l) => l.status === 503 && l.path === '/screenshot')
    .map((l) => Number(l.ms))
    .sort((a, b) => a - b)
    .slice(0, immediate.length);
  const fromSend = (o: Outcome) => o.latencyMs - o.sendLagMs;
  const count = (list: string[]) => {
    const counts: Record<string, number> = {};
    for (const k of list) counts[k] = (counts[k] ?? 0) + 1;
    return counts;
  };
  const mb = (b: number) => b / 1024 / 1024;
  return {
    multiplier,
    ratePerSecond: round(rate, 2)!,
    sent: outcomes.length,
    goodputPerSecond: round(good.length / (stepMs / 1000), 2)!,
    ok: ok.length,
    acceptedP50Ms: round(
      quantile(
        ok.map((o) => o.latencyMs),
        0.5,
      ),
      0,
    ),
    acceptedP99Ms: round(
      quantile(
        ok.map((o) => o.latencyMs),
        0.99,
      ),
      0,
    ),
    shed: shed.length,
    shedP99Ms: round(
      quantile(
        immediate.map((o) => o.latencyMs),
        0.99,
      ),
      1,
    ),
    shedFromSendP99Ms: round(quantile(immediate.map(fromSend), 0.99), 1),
    floorP99Ms: round(quantile(floorOutcomes.filter((o) => o.status === 503).map(fromSend), 0.99), 1),
    sendLagP99Ms: round(
      quantile(
        outcomes.map((o) => o.sendLagMs),
        0.99,
      ),
      1,
    ),
    shedServerP99Ms: round(quantile(immediateNodeTimes, 0.99), 1),
    queueTimeouts: shed.length - immediate.length,
    shedShare: round(shed.length / Math.max(1, outcomes.length), 3)!,
    shedReasons: count(shed.map((o) => o.reason ?? 'none')),
    retryAfterMissing: shed.filter((o) => !/^[1-9]\d*$/.test(o.retryAfter ?? '')).length,
    otherErrors: count(outcomes.filter((o) => o.status !== 200 && o.status !== 503 && !o.clientTimeout).map((o) => String(o.status))),
    clientTimeouts: outcomes.filter((o) => o.clientTimeout).length,
    maxPagesInUse: Math.max(0, ...statuses.map((s) => s.inUse)),
    concurrencyLimit: statuses.length ? { min: Math.min(...statuses.map((s) => s.limit)), max: Math.max(...statuses.map((s) => s.limit)) } : null,
    memoryMaxMB: memory.length ? round(mb(Math.max(...memory)), 0) : null,
    memoryMeanMB: memory.length ? round(mb(memory.reduce((a, b) => a + b, 0) / memory.length), 0) : null,
  };
}

async function metricsText(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

function counterValues(text: string, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(new RegExp(`^${name}\\{${label}="([^"]+)"\\} (\\S+)$`, 'gm'))) out[m[1]] = Number(m[2]);
  return out;
}

const results: Record<string, { steps: StepResult[]; pages: number; metrics: { shedTotal: Record<string, number>; requestsTotal: Record<string, number> } }> =
  {};
let capacity = 0;
/** 1-minute load average after each step: other work on the machine shows up here and in every latency. */
const loadAverages: number[] = [];
let pages = 0;
const selected = flags.modes.split(',').map((m) => m.trim()) as Mode[];
for (const m of selected) if (!(m in modes)) throw new Error(`unknown mode "${m}"; use any of ${Object.keys(modes).join(', ')}`);

try {
  for (const mode of selected) {
    const node = await startNode(mode);
    try {
      const status = (await (await fetch(`${node.url}/status`)).json()) as { pages: { max: number } };
      pages = status.pages.max;
      // Warm every host's renderer and the estimates before measuring.
      await measureCapacity({ url: node.url, durationMs: 5000, concurrency: pages, body, clientTimeoutMs: timeoutMs + clientGraceMs });
      if (capacity === 0) {
        capacity = await measureCapacity({ url: node.url, durationMs: 15_000, concurrency: pages * 2, body, clientTimeoutMs: timeoutMs + clientGraceMs });
        console.log(`capacity: ${capacity.toFixed(2)} screenshots/s with ${pages} pages (closed loop, ${pages * 2} clients)`);
      }
      await waitIdle(node.url);
      const steps: StepResult[] = [];
      for (const multiplier of multipliers) {
        const rate = capacity * multiplier;
        const logMark = node.logs.length;
        const statuses = sampleEvery(100, nodeStatus(node.url));
        const memorySamples = sampleEvery(500, nodeTreeMemory(node.proc.pid!));
        const load = (url: string, ratePerSecond: number) =>
          runOpenLoop({ url, ratePerSecond, durationMs: stepMs, body, clientTimeoutMs: timeoutMs + clientGraceMs });
        const [outcomes, floorOutcomes] = await Promise.all([load(node.url, rate), load(floor.url, Math.min(rate, floorRateMax))]);
        const step = summarize(multiplier, rate, outcomes, floorOutcomes, await statuses.stop(), await memorySamples.stop(), node.logs.slice(logMark));
        steps.push(step);
        console.log(`${mode} ${multiplier}×: ${JSON.stringify(step)} load average ${os.loadavg()[0].toFixed(1)}`);
        loadAverages.push(round(os.loadavg()[0], 1)!);
        await waitIdle(node.url);
      }
      const text = await metricsText(node.url);
      results[mode] = {
        steps,
        pages,
        metrics: { shedTotal: counterValues(text, 'shotfleet_shed_total', 'reason'), requestsTotal: counterValues(text, 'shotfleet_requests_total', 'code') },
      };
    } finally {
      await node.stop();
    }
  }
} finally {
  floor.close();
  await corpus.close();
}

const cell = (v: unknown) => (v === null || v === undefined ? '–' : String(v));
const header = [
  'mode',
  'load',
  'req/s',
  'goodput/s',
  'ok p50 ms',
  'ok p99 ms',
  'shed p99 ms',
  'from send',
  'floor',
  'in node',
  'send lag p99',
  '503 share',
  'queue timeouts',
  'client timeouts',
  'other',
  'max pages',
  'limit',
  'mem max MB',
];
const rows = Object.entries(results).flatMap(([mode, r]) =>
  r.steps.map((s) =>
    [
      mode,
      `${s.multiplier}×`,
      s.ratePerSecond,
      s.goodputPerSecond,
      s.acceptedP50Ms,
      s.acceptedP99Ms,
      s.shedP99Ms,
      s.shedFromSendP99Ms,
      s.floorP99Ms,
      s.shedServerP99Ms,
      s.sendLagP99Ms,
      `${Math.round(s.shedShare * 100)}%`,
      s.queueTimeouts,
      s.clientTimeouts,
      Object.entries(s.otherErrors)
        .map(([k, v]) => `${k}:${v}`)
        .join(' ') || 0,
      s.maxPagesInUse,
      s.concurrencyLimit ? `${s.concurrencyLimit.min}–${s.concurrencyLimit.max}` : '–',
      s.memoryMaxMB,
    ].map(cell),
  ),
);
const table = [header, header.map((h) => '-'.repeat(h.length)), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
console.log(`\n${table}\n`);

/** The targets, checked for each admission mode. */
function verdicts(steps: StepResult[]) {
  const peak = Math.max(...steps.map((s) => s.goodputPerSecond));
  const at = (m: number) => steps.find((s) => s.multiplier === m)!;
  const memory = steps.map((s) => s.memoryMaxMB ?? 0);
  const memoryMid = (Math.max(...memory) + Math.min(...memory)) / 2;
  return {
    goodputAt10xOfPeak: round(at(10).goodputPerSecond / peak, 3),
    shedP99MaxMs: Math.max(0, ...steps.map((s) => s.shedP99Ms ?? 0)),
    /** The node's shed p99 from the send over the floor's, at the step where the node shed most: 1 is as fast as a server can answer here. */
    shedFromSendOverFloorAt10x: round((at(10).shedFromSendP99Ms ?? Number.NaN) / (at(10).floorP99Ms ?? Number.NaN), 2),
    acceptedP99At10xOver1x: round((at(10).acceptedP99Ms ?? Number.NaN) / (at(1).acceptedP99Ms ?? Number.NaN), 2),
    memorySpreadShare: round((Math.max(...memory) - Math.min(...memory)) / 2 / memoryMid, 3),
    clientTimeouts: steps.reduce((a, s) => a + s.clientTimeouts, 0),
  };
}
const summary = Object.fromEntries(Object.entries(results).map(([mode, r]) => [mode, verdicts(r.steps)]));
console.log(
  'targets: goodput@10× ≥ 0.95 of peak; shed p99 ≤ 10 ms (floor: what a trivial server gets here); accepted p99 @10× ≤ 2 × @1×; memory within ±10 %; 0 client timeouts',
);
console.log(JSON.stringify(summary, null, 2));

const out = {
  date: new Date().toISOString(),
  machine: { cpus: os.availableParallelism(), node: process.version, loadAverageAfterSteps: loadAverages },
  settings: {
    pages,
    stepSeconds: stepMs / 1000,
    requestTimeoutMs: timeoutMs,
    clientTimeoutMs: timeoutMs + clientGraceMs,
    mix: '2/3 png, 1/3 jpeg q80, 1280×800, 4 pages × 4 hosts',
    capacityPerSecond: round(capacity, 2),
    nodeEnv,
  },
  results,
  summary,
};
await writeFile(`${flags.out}.json`, `${JSON.stringify(out, null, 2)}\n`);
const labels = multipliers.map((m) => `${m}×`);
const series = (pick: (s: StepResult) => number | null) =>
  Object.entries(results).map(([mode, r]) => ({ name: modes[mode as Mode].label, color: modes[mode as Mode].color, values: r.steps.map(pick) }));
await writeFile(
  `${flags.out}.svg`,
  lineChartsSvg(`shotfleet overload: ${pages} pages, capacity ${capacity.toFixed(1)}/s, ${stepMs / 1000} s per step`, labels, [
    { title: 'goodput', unit: 'ok within timeout /s', series: series((s) => s.goodputPerSecond) },
    { title: 'accepted p99', unit: 'ms', series: series((s) => s.acceptedP99Ms), logScale: true },
    { title: 'memory node + Chromium', unit: 'MB', series: series((s) => s.memoryMaxMB) },
  ]),
);
console.log(`wrote ${flags.out}.json and ${flags.out}.svg`);
