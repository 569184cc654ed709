/**
 * Result cache benchmark: a Zipf-like workload (a few pages asked often, most rarely, as for Open Graph images or
 * embedded links) of `--requests` requests over `--pages` distinct pages at `--concurrency`, the same seeded
 * sequence for every scenario:
 *   1. one node, cache off (cacheTtl 0): every request renders;
 *   2. one node, cache on (memory tier), then a burst of requests for pages it holds (memory hits alone);
 *   3. two nodes sharing s3rver as the S3 tier, requests alternating between them as a balancer would, so a page
 *      one node rendered is an S3 hit on the other;
 *   4. single flight: `--coalesce` identical requests at once of a page that takes 1 s to answer.
 * Each reports renders done (requests the page server saw), hit ratio, throughput and hit latency p50/p99 by the
 * tier that answered (the node's Server-Timing says it), with the machine's load average at the time.
 *
 *   npm run bench:cache                                   (writes bench/results/cache.json)
 *   npm run bench:cache -- --requests 600 --off-requests 200
 *
 * `--off-requests` bounds the cache-off run (every request a render: the slowest part); its throughput is a rate,
 * so a shorter run of the same sequence measures it. Figures on a shared machine are noisy: compare the scenarios
 * of one run, side by side.
 */
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot, startShotfleet, type RunningProcess } from '../test/helpers/processes.js';
import { s3NodeEnv, startS3 } from '../test/helpers/s3.js';
import { processCpuMs } from './lib/cpu.js';
import { quantile, round } from './lib/stats.js';

const { values: flags } = parseArgs({
  options: {
    requests: { type: 'string', default: '2000' },
    pages: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '8' },
    'off-requests': { type: 'string' },
    'hit-burst': { type: 'string', default: '1000' },
    coalesce: { type: 'string', default: '8' },
    zipf: { type: 'string', default: '1' },
    format: { type: 'string', default: 'jpeg' },
    out: { type: 'string', default: path.join(repoRoot, 'bench/results/cache.json') },
  },
});
const requests = Number(flags.requests);
const distinctPages = Number(flags.pages);
const concurrency = Number(flags.concurrency);
const offRequests = Math.min(requests, Number(flags['off-requests'] ?? requests));
const hitBurst = Number(flags['hit-burst']);
const coalesce = Number(flags.coalesce);
const zipfExponent = Number(flags.zipf);
const format = flags.format as 'jpeg' | 'png' | 'webp';
const cacheTtl = 3600;

/** The same pseudo-random sequence every run (mulberry32). */
function seededRandom(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Page indices drawn with P(k) ∝ 1 / k^s (k = 1 … pages). */
function zipfSequence(count: number, pages: number, s: number, seed: number): number[] {
  const weights = Array.from({ length: pages }, (_, k) => 1 / (k + 1) ** s);
  const total = weights.reduce((a, b) => a + b, 0);
  const cdf: number[] = [];
  let sum = 0;
  for (const w of weights) {
    sum += w / total;
    cdf.push(sum);
  }
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => {
    const r = random();
    let lo = 0;
    let hi = pages - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] < r) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  });
}

/** Pages served on 0.0.0.0, each on one of three loopback hosts (a site each, as in other benches), counted. */
async function startPages() {
  let documents = 0;
  const server = http.createServer((req, res) => {
    const path = req.url ?? '/';
    if (path === '/favicon.ico') return void res.writeHead(404).end();
    documents++;
    const n = Number(/\/(\d+)$/.exec(path)?.[1] ?? 0);
    const body = `<!doctype html><html><head><title>page ${n}</title><style>body{margin:0;font:16px sans-serif}
      .tile{display:inline-block;width:150px;height:100px;margin:4px}</style></head><body><h1>Page ${n}</h1>${Array.from(
        { length: 40 },
        (_, i) => `<div class="tile" style="background:linear-gradient(${(n * 7 + i * 11) % 360}deg,hsl(${(n * 13 + i * 9) % 360},60%,55%),#fff)"></div>`,
      ).join('')}</body></html>`;
    const send = () => res.writeHead(200, { 'Content-Type': 'text/html', 'Cache-Control': 'no-store' }).end(body);
    if (path.startsWith('/slow/')) setTimeout(send, 1000);
    else send();
  });
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: (n: number, kind = 'p') => `http://127.0.0.${(n % 3) + 1}:${port}/${kind}/${n}`,
    documents: () => documents,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

type Source = 'render' | 'hit-memory' | 'hit-s3' | 'coalesced' | 'error';

interface Shot {
  ms: number;
  source: Source;
}

async function shootOnce(node: RunningProcess, url: string, ttl: number): Promise<Shot> {
  for (let attempt = 0; ; attempt++) {
    const started = performance.now();
    const res = await fetch(`${node.url}/screenshot`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      // The longest deadline a node allows: on a loaded machine eight requests on two pages wait long.
      body: JSON.stringify({ url, format, cacheTtl: ttl, timeout: 60_000 }),
    });
    const bytes = await res.arrayBuffer();
    if (res.status === 503 && attempt < 100) {
      await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    const ms = performance.now() - started;
    if (res.status !== 200 || bytes.byteLength === 0) {
      console.error(`  ${url}: ${res.status} ${Buffer.from(bytes).toString().slice(0, 200)}`);
      return { ms, source: 'error' };
    }
    const desc = /cache;desc=([\w-]+)/.exec(res.headers.get('server-timing') ?? '')?.[1];
    return { ms, source: (desc as Source | undefined) ?? 'render' };
  }
}

interface Scenario {
  scenario: string;
  requests: number;
  renders: number;
  hitRatio: number | null;
  requestsPerSecond: number | null;
  memoryHitMs: { p50: number | null; p99: number | null; count: number };
  s3HitMs: { p50: number | null; p99: number | null; count: number };
  coalesced: number;
  errors: number;
  /** CPU of the node processes themselves per request (Chromium excluded): what a hit costs, whatever the load. */
  nodeCpuMsPerRequest: number | null;
  seconds: number | null;
  load: [number, number];
}

/** Sends `indices` in order from `concurrency` workers, request i to nodes[i % nodes.length]. */
async function run(
  name: string,
  nodes: RunningProcess[],
  indices: number[],
  url: (n: number) => string,
  ttl: number,
  documents: () => number,
): Promise<Scenario> {
  const loadBefore = os.loadavg()[0];
  const documentsBefore = documents();
  const nodeCpu = () => nodes.reduce((sum, node) => sum + processCpuMs(node.proc.pid!), 0);
  const cpuBefore = nodeCpu();
  const shots: Shot[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < indices.length) {
        const i = next++;
        shots.push(await shootOnce(nodes[i % nodes.length], url(indices[i]), ttl));
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpuMs = nodeCpu() - cpuBefore;
  const of = (source: Source) => shots.filter((s) => s.source === source).map((s) => s.ms);
  const memory = of('hit-memory');
  const s3 = of('hit-s3');
  const scenario: Scenario = {
    scenario: name,
    requests: indices.length,
    renders: documents() - documentsBefore,
    hitRatio: round((memory.length + s3.length + of('coalesced').length) / shots.length, 3),
    requestsPerSecond: round(indices.length / seconds, 1),
    memoryHitMs: { p50: round(quantile(memory, 0.5)), p99: round(quantile(memory, 0.99)), count: memory.length },
    s3HitMs: { p50: round(quantile(s3, 0.5)), p99: round(quantile(s3, 0.99)), count: s3.length },
    coalesced: of('coalesced').length,
    errors: of('error').length,
    nodeCpuMsPerRequest: round(cpuMs / indices.length, 2),
    seconds: round(seconds, 1),
    load: [round(loadBefore, 2)!, round(os.loadavg()[0], 2)!],
  };
  console.error(`${name}: ${JSON.stringify(scenario)}`);
  return scenario;
}

const nodeEnv = { SHOTFLEET_ALLOW_PRIVATE: 'true', SHOTFLEET_QUEUE_MAX: String(concurrency * 8), SHOTFLEET_LOG_LEVEL: 'warn' };

async function main() {
  const pages = await startPages();
  const sequence = zipfSequence(requests, distinctPages, zipfExponent, 21);
  const url = (n: number) => pages.url(n);
  const scenarios: Scenario[] = [];
  let singleFlight: { requests: number; renders: number; outcomes: Record<string, number> } | undefined;
  const s3 = await startS3('bench-cache');
  const running: RunningProcess[] = [];
  try {
    const one = await startShotfleet('serve', nodeEnv);
    running.push(one);
    // Warm: each page of the pool has rendered once (not measured, not in the sequence's pages).
    await Promise.all([0, 1, 2, 3].map((i) => shootOnce(one, pages.url(100_000 + i), 0)));
    scenarios.push(await run('one node, cache off', [one], sequence.slice(0, offRequests), url, 0, pages.documents));
    scenarios.push(await run('one node, cache on (memory)', [one], sequence, url, cacheTtl, pages.documents));
    const held = [...new Set(sequence)];
    const burst = zipfSequence(hitBurst, held.length, zipfExponent, 22).map((k) => held[k]);
    scenarios.push(await run('one node, memory hits only', [one], burst, url, cacheTtl, pages.documents));
    await one.stop();
    running.length = 0;

    const shared = { ...nodeEnv, ...s3NodeEnv(s3), SHOTFLEET_CACHE_S3_PREFIX: `cache-${Date.now()}` };
    const pair = await Promise.all([startShotfleet('serve', shared), startShotfleet('serve', shared)]);
    running.push(...pair);
    await Promise.all(pair.flatMap((node) => [0, 1].map((i) => shootOnce(node, pages.url(200_000 + i), 0))));
    scenarios.push(await run('two nodes sharing S3, cache on', pair, sequence, url, cacheTtl, pages.documents));

    const before = pages.documents();
    const slow = pages.url(300_000, 'slow');
    const answers = await Promise.all(Array.from({ length: coalesce }, () => shootOnce(pair[0], slow, cacheTtl)));
    const outcomes: Record<string, number> = {};
    for (const a of answers) outcomes[a.source] = (outcomes[a.source] ?? 0) + 1;
    singleFlight = { requests: coalesce, renders: pages.documents() - before, outcomes };
    console.error(`single flight: ${JSON.stringify(singleFlight)}`);
  } finally {
    await Promise.all(running.map((node) => node.stop()));
    await s3.stop();
    await pages.close();
  }

  const off = scenarios[0].requestsPerSecond ?? Number.NaN;
  const on = scenarios[1].requestsPerSecond ?? Number.NaN;
  const result = {
    benchmark: 'result cache: Zipf-like workload, cache off vs on, one node then two nodes sharing s3rver',
    date: new Date().toISOString(),
    command: `npm run bench:cache -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine: { cpus: os.availableParallelism(), memoryBytes: os.totalmem(), node: process.version },
    workload: { requests, offRequests, distinctPages, distinctPagesAsked: new Set(sequence).size, concurrency, zipfExponent, format, cacheTtl },
    scenarios,
    throughputOnOverOff: round(on / off, 2),
    singleFlight,
  };
  printTable(result.scenarios, result.throughputOnOverOff, singleFlight);
  await fs.mkdir(path.dirname(flags.out!), { recursive: true });
  await fs.writeFile(flags.out!, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\nwritten to ${path.relative(process.cwd(), flags.out!)}`);
}

function printTable(scenarios: Scenario[], ratio: number | null, singleFlight?: { requests: number; renders: number }) {
  const ms = (t: { p50: number | null; p99: number | null; count: number }) => (t.count ? `${t.p50} / ${t.p99} (${t.count})` : '–');
  console.log(
    '| scenario | requests | errors | renders | hit ratio | requests/s | memory hit p50 / p99 ms (n) | S3 hit p50 / p99 ms (n) | node CPU ms / request | load 1 min (start → end) |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const s of scenarios) {
    console.log(
      `| ${s.scenario} | ${s.requests} | ${s.errors} | ${s.renders} | ${s.hitRatio} | ${s.requestsPerSecond} | ${ms(s.memoryHitMs)} | ${ms(s.s3HitMs)} | ${s.nodeCpuMsPerRequest} | ${s.load[0]} → ${s.load[1]} |`,
    );
  }
  console.log(`\nthroughput, cache on ÷ off (one node, same sequence): ${ratio}×`);
  if (singleFlight) console.log(`single flight: ${singleFlight.requests} identical requests at once → ${singleFlight.renders} render(s)`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
