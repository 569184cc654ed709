/**
 * Upload isolation benchmark: the shared bench corpus (bench/lib/corpus.ts) rendered with
 * `store: true`, once with S3 answering at loopback speed and once with +500 ms injected on every PUT,
 * at the default upload pool sizes.
 * If uploads held pages, the slow run's throughput would collapse; the pool keeps it within ~10 %.
 *
 *   npm run bench:upload            (writes bench/results/upload.json)
 *   BENCH_SHOTS_JPEG=200 BENCH_SHOTS_PNG=60 BENCH_ROUNDS=3 npm run bench:upload
 *
 * Runs alternate (none, +500, none, +500 …) and the ratio compares medians, so drift in a shared machine's
 * load hits both sides alike. Run it on a quiet machine: it measures throughput, and other work skews it.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startShotfleet, repoRoot, type RunningProcess } from '../test/helpers/processes.js';
import { s3rverEnv, startFaultProxy, startS3 } from '../test/helpers/s3.js';
import { startCorpus } from './lib/corpus.js';

const injectedMs = 500;
/** Enough requests in flight to keep every page busy while others wait on a slow PUT. */
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 16);
const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
const plans = [
  { format: 'jpeg', shots: Number(process.env.BENCH_SHOTS_JPEG ?? 80) },
  { format: 'png', shots: Number(process.env.BENCH_SHOTS_PNG ?? 40) },
] as const;

interface Run {
  round: number;
  format: string;
  putLatencyMs: number;
  shots: number;
  seconds: number;
  shotsPerSecond: number;
  p50Ms: number;
  p95Ms: number;
  retriedAfter503: number;
}

async function storeShots(node: RunningProcess, urls: string[], format: string, shots: number) {
  const latencies: number[] = [];
  let retried = 0;
  let next = 0;
  const started = performance.now();
  async function worker() {
    while (next < shots) {
      const i = next++;
      const t0 = performance.now();
      for (let attempt = 0; ; attempt++) {
        if (attempt > 200) throw new Error('the node kept answering 503; is it healthy?');
        const res = await fetch(`${node.url}/screenshot`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ url: urls[i % urls.length], format, store: true }),
        });
        const body = (await res.json()) as { key?: string; error?: { code: string; message: string } };
        if (res.status === 503) {
          retried++;
          await new Promise((r) => setTimeout(r, 50));
          continue;
        }
        if (res.status !== 200 || !body.key) throw new Error(`shot ${i} failed: ${res.status} ${JSON.stringify(body)}`);
        break;
      }
      latencies.push(performance.now() - t0);
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]);
  return { seconds, p50Ms: pct(0.5), p95Ms: pct(0.95), retried };
}

async function main() {
  const s3 = await startS3('bench');
  const proxy = await startFaultProxy(s3.endpoint);
  const corpus = await startCorpus();
  let node: RunningProcess | undefined;
  const runs: Run[] = [];
  try {
    node = await startShotfleet('serve', {
      ...s3rverEnv,
      SHOTFLEET_ALLOW_PRIVATE: 'true',
      // The render queue is raised so the client's closed loop is never shed; the upload pool keeps its defaults.
      SHOTFLEET_QUEUE_MAX: String(concurrency * 2),
      SHOTFLEET_S3_BUCKET: 'bench',
      SHOTFLEET_S3_ENDPOINT: proxy.url,
      SHOTFLEET_S3_FORCE_PATH_STYLE: 'true',
      SHOTFLEET_S3_REGION: 'us-east-1',
      SHOTFLEET_LOG_LEVEL: 'info',
    });
    const status = (await (await fetch(`${node.url}/status`)).json()) as { pages: { max: number }; uploads: { max: number } };
    for (const plan of plans) {
      await storeShots(node, corpus.urls, plan.format, 8); // warm the pages, contexts and connections
      for (let round = 1; round <= rounds; round++)
        for (const putLatencyMs of [0, injectedMs]) {
          proxy.putLatencyMs = putLatencyMs;
          const r = await storeShots(node, corpus.urls, plan.format, plan.shots);
          const run: Run = {
            round,
            format: plan.format,
            putLatencyMs,
            shots: plan.shots,
            seconds: Number(r.seconds.toFixed(2)),
            shotsPerSecond: Number((plan.shots / r.seconds).toFixed(2)),
            p50Ms: r.p50Ms,
            p95Ms: r.p95Ms,
            retriedAfter503: r.retried,
          };
          runs.push(run);
          console.error(`round ${round}: ${run.format} +${putLatencyMs} ms/PUT: ${run.shotsPerSecond} shots/s`);
        }
    }
    const stored = (await s3.keys()).length;
    const ratios = Object.fromEntries(
      plans.map((p) => {
        const rate = (ms: number) => median(runs.filter((r) => r.format === p.format && r.putLatencyMs === ms).map((r) => r.shotsPerSecond));
        return [p.format, Number((rate(injectedMs) / rate(0)).toFixed(3))];
      }),
    );
    const result = {
      benchmark: 'upload isolation: store:true throughput with +500 ms per S3 PUT vs none',
      date: new Date().toISOString(),
      machine: { cpus: os.availableParallelism(), memoryBytes: os.totalmem(), node: process.version, loadAverageAtEnd: os.loadavg()[0] },
      node: { pages: status.pages.max, uploads: status.uploads.max, uploadQueueMax: 64, uploadBacklogBytes: 268435456, concurrency },
      runs,
      ratios,
      objectsStored: stored,
    };
    printTable(runs, ratios);
    const out = path.join(repoRoot, 'bench/results/upload.json');
    await fs.mkdir(path.dirname(out), { recursive: true });
    await fs.writeFile(out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`\nwritten to ${path.relative(process.cwd(), out)}`);
  } finally {
    await node?.stop();
    await corpus.close();
    await proxy.close();
    await s3.stop();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function printTable(runs: Run[], ratios: Record<string, number>) {
  console.log('| round | format | injected per PUT | shots | shots/s | p50 ms | p95 ms | 503 retries |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of runs) {
    console.log(`| ${r.round} | ${r.format} | ${r.putLatencyMs} ms | ${r.shots} | ${r.shotsPerSecond} | ${r.p50Ms} | ${r.p95Ms} | ${r.retriedAfter503} |`);
  }
  console.log('');
  for (const [format, ratio] of Object.entries(ratios)) {
    console.log(`${format}: median throughput with +${injectedMs} ms/PUT = ${ratio} × without (target ≥ 0.9) ${ratio >= 0.9 ? 'OK' : 'BELOW TARGET'}`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
