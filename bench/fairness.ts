/**
 * Fair shares between API keys: a 2-page node, a heavy key with 16 concurrent clients and a light key with one
 * client at a time. Per mode — first come, first served (SHOTFLEET_FAIR_SHARES=false, the wait queue before keys)
 * and fair shares (the default) — three phases on the same node: the heavy key alone, the light key alone, both.
 * Clients behave like `shotfleet shoot`: a 503 is waited out for its Retry-After, then sent again.
 *
 * Targets, with the heavy key saturating the node: the light key's p95 ≤ 2.5 × its p95 alone, none of its requests
 * shed; the heavy key's throughput ≥ 90 % of what the node does for it alone minus what the light key used.
 *
 *   npm run bench:fairness -- [--seconds 30] [--rounds 1] [--modes fifo,fair] [--node-env K=V,…] [--out bench/results/fairness.json]
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot, startShotfleet, type RunningProcess } from '../test/helpers/processes.js';
import { startCorpus } from './lib/corpus.js';
import { parseNodeEnv } from './lib/node-env.js';
import { quantile, round } from './lib/stats.js';

const { values: flags } = parseArgs({
  options: {
    seconds: { type: 'string', default: '30' },
    rounds: { type: 'string', default: '1' },
    modes: { type: 'string', default: 'fifo,fair' },
    'heavy-clients': { type: 'string', default: '16' },
    'node-env': { type: 'string', default: '' },
    out: { type: 'string', default: path.join(repoRoot, 'bench/results/fairness.json') },
  },
});

const phaseMs = Number(flags.seconds) * 1000;
const heavyClients = Number(flags['heavy-clients']);
const modes = {
  fifo: { label: 'first come, first served', env: { SHOTFLEET_FAIR_SHARES: 'false' } },
  fair: { label: 'fair shares', env: { SHOTFLEET_FAIR_SHARES: 'true' } },
} as const;
type Mode = keyof typeof modes;
const chosenModes = flags.modes.split(',') as Mode[];
for (const mode of chosenModes) if (!(mode in modes)) throw new Error(`--modes takes fifo and fair; got "${mode}"`);

const tokens = { heavy: randomBytes(16).toString('hex'), light: randomBytes(16).toString('hex') };
const keysDir = fs.mkdtempSync(path.join(os.tmpdir(), 'shotfleet-fairness-'));
const keysFile = path.join(keysDir, 'keys.json');
fs.writeFileSync(keysFile, JSON.stringify({ keys: Object.entries(tokens).map(([name, token]) => ({ name, token })) }));

const corpus = await startCorpus(4);
let nextUrl = 0;
/** Small jpeg renders: many samples per phase, since what is measured is who waits, not how fast a render is. */
const body = () => ({ url: corpus.urls[nextUrl++ % corpus.urls.length], format: 'jpeg', quality: 80, viewport: { width: 800, height: 600 } });

interface KeyFigures {
  ok: number;
  okPerSecond: number;
  p50Ms: number | null;
  p95Ms: number | null;
  /** 503 answers (each waited out for its Retry-After, then sent again). */
  shed: number;
  otherErrors: number;
}

/** `clients` loops of one key, each sending the next request once the last is answered, until `until`. */
async function runKey(url: string, key: keyof typeof tokens, clients: number, until: number): Promise<KeyFigures> {
  const latencies: number[] = [];
  let shed = 0;
  let otherErrors = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < until) {
        const t0 = performance.now();
        const res = await fetch(`${url}/screenshot`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens[key]}` },
          body: JSON.stringify(body()),
        }).catch(() => null);
        const bytes = res ? Buffer.from(await res.arrayBuffer()) : Buffer.alloc(0);
        if (res?.status === 200 && bytes[0] === 0xff && bytes[1] === 0xd8) {
          if (performance.now() <= until) latencies.push(performance.now() - t0);
          continue;
        }
        if (res?.status === 503) {
          shed++;
          const wait = Math.max(1, Number(res.headers.get('retry-after') ?? 1)) * 1000;
          await new Promise((r) => setTimeout(r, Math.min(wait, Math.max(0, until - performance.now()))));
          continue;
        }
        otherErrors++;
        if (otherErrors <= 3) console.error(`  ${key}: ${res ? `${res.status} ${bytes.toString('utf8').slice(0, 200)}` : 'no answer'}`);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return {
    ok: latencies.length,
    okPerSecond: round(latencies.length / seconds, 2) ?? 0,
    p50Ms: round(quantile(latencies, 0.5), 0),
    p95Ms: round(quantile(latencies, 0.95), 0),
    shed,
    otherErrors,
  };
}

interface ModeResult {
  mode: Mode;
  round: number;
  loadBefore: number[];
  loadAfter: number[];
  lightAlone: KeyFigures;
  heavyAlone: KeyFigures;
  both: { light: KeyFigures; heavy: KeyFigures };
  /** light p95 with the heavy key ÷ light p95 alone (target ≤ 2.5). */
  lightP95Ratio: number | null;
  /** heavy ok/s with light ÷ (heavy ok/s alone − light ok/s with heavy) (target ≥ 0.9). */
  heavyShare: number | null;
  targetsMet: boolean;
}

async function warm(node: RunningProcess): Promise<void> {
  // One render per host and both keys first: first-use costs (renderer processes, estimates) are not what we measure.
  await runKey(node.url, 'heavy', 2, performance.now() + 3000);
  await runKey(node.url, 'light', 1, performance.now() + 1000);
}

async function runMode(mode: Mode, roundNo: number): Promise<ModeResult> {
  const loadBefore = os.loadavg().map((x) => round(x, 2) ?? 0);
  const node = await startShotfleet(
    'serve',
    {
      SHOTFLEET_PAGES: '2',
      SHOTFLEET_KEYS_FILE: keysFile,
      SHOTFLEET_ALLOW_HOSTS: corpus.hosts.join(','),
      SHOTFLEET_LOG_LEVEL: 'warn',
      ...parseNodeEnv(flags['node-env']),
      ...modes[mode].env,
    },
    { timeoutMs: 90_000 },
  );
  try {
    await warm(node);
    const heavyAlone = await runKey(node.url, 'heavy', heavyClients, performance.now() + phaseMs);
    // The shed heavy clients' Retry-After has passed once the phase ended; let the queue empty.
    await new Promise((r) => setTimeout(r, 2000));
    // Right before both run together, so that the machine's other load is as alike as a shared machine allows.
    const lightAlone = await runKey(node.url, 'light', 1, performance.now() + phaseMs);
    const until = performance.now() + phaseMs;
    const heavyRun = runKey(node.url, 'heavy', heavyClients, until);
    // The light client starts once the heavy key fills the node.
    await new Promise((r) => setTimeout(r, 1000));
    const [light, heavy] = await Promise.all([runKey(node.url, 'light', 1, until), heavyRun]);
    const lightP95Ratio = lightAlone.p95Ms && light.p95Ms ? round(light.p95Ms / lightAlone.p95Ms, 2) : null;
    const heavyShare = round(heavy.okPerSecond / Math.max(0.01, heavyAlone.okPerSecond - light.okPerSecond), 2);
    return {
      mode,
      round: roundNo,
      loadBefore,
      loadAfter: os.loadavg().map((x) => round(x, 2) ?? 0),
      lightAlone,
      heavyAlone,
      both: { light, heavy },
      lightP95Ratio,
      heavyShare,
      targetsMet: lightP95Ratio !== null && lightP95Ratio <= 2.5 && light.shed === 0 && heavyShare !== null && heavyShare >= 0.9,
    };
  } finally {
    await node.stop();
  }
}

const results: ModeResult[] = [];
try {
  for (let r = 1; r <= Number(flags.rounds); r++) {
    for (const mode of chosenModes) {
      console.error(`round ${r}: ${modes[mode].label}…`);
      results.push(await runMode(mode, r));
    }
  }
} finally {
  await corpus.close();
  fs.rmSync(keysDir, { recursive: true, force: true });
}

const rows = results.map((m) =>
  [
    `${m.round}`,
    modes[m.mode].label,
    `${m.lightAlone.p95Ms}`,
    `${m.both.light.p95Ms}`,
    `${m.lightP95Ratio}`,
    `${m.both.light.ok}`,
    `${m.both.light.shed}`,
    `${m.heavyAlone.okPerSecond}`,
    `${m.both.heavy.okPerSecond}`,
    `${m.both.light.okPerSecond}`,
    `${m.heavyShare}`,
    `${m.both.heavy.shed}`,
    m.targetsMet ? 'yes' : 'no',
    `${m.loadBefore[0]} → ${m.loadAfter[0]}`,
  ].join(' | '),
);
console.log(
  [
    `| round | mode | light p95 alone (ms) | light p95 with heavy (ms) | ratio (≤ 2.5) | light ok | light shed (0) | heavy ok/s alone | heavy ok/s with light | light ok/s | heavy share (≥ 0.9) | heavy shed | targets met | load (1 min) |`,
    `|---|---|---|---|---|---|---|---|---|---|---|---|---|---|`,
    ...rows.map((r) => `| ${r} |`),
  ].join('\n'),
);
fs.writeFileSync(flags.out, `${JSON.stringify({ seconds: Number(flags.seconds), heavyClients, pages: 2, cpus: os.cpus().length, results }, null, 2)}\n`);
console.error(`wrote ${path.relative(repoRoot, flags.out)}`);
