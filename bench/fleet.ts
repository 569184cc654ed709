/**
 * bench:fleet — how fast the fleet reacts, with the default intervals (ping 4 s × 5 failures, heartbeat 10 s,
 * HAProxy checks inter 3 s fall 3):
 *   - join: from a new node's process start to its first request served through HAProxy (no reload);
 *   - death: from kill -9 of a node to HAProxy's own check marking it DOWN, and to the hub emptying its slot.
 *
 *   node --import tsx bench/fleet.ts [--rounds 3] [--fake]
 *
 * --fake uses stand-in HTTP nodes (no Chromium) to isolate the hub and HAProxy from node start-up time.
 * Everything runs on 127.0.0.1. Results go to stdout and bench/results/fleet.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { createRuntimeApi } from '../src/haproxy/runtime-api.js';
import { freePort } from '../test/helpers/processes.js';

const repoRoot = path.resolve(new URL('..', import.meta.url).pathname);
const cliEntry = path.join(repoRoot, 'src/cli/main.ts');
const args = process.argv.slice(2);
const rounds = Number(args[args.indexOf('--rounds') + 1] ?? 3) || 3;
const fake = args.includes('--fake');
const token = 'bench-fleet-token';

interface Proc {
  proc: ChildProcess;
  url: string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Spawns a command and resolves once it logs {"msg":"listening","url"}. */
function launch(argv: string[], env: Record<string, string>): Promise<Proc> {
  const proc = spawn(process.execPath, argv, {
    cwd: repoRoot,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, AWS_EC2_METADATA_DISABLED: 'true', SHOTFLEET_HOST: '127.0.0.1', SHOTFLEET_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const kill = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    const t = setTimeout(() => proc.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(t);
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${argv.join(' ')} did not start: ${stderr}`)), 60_000);
    readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line);
        if (entry.msg === 'listening' && typeof entry.url === 'string') {
          clearTimeout(timer);
          resolve({ proc, url: entry.url, kill });
        }
      } catch {
        // not a log line
      }
    });
    void exited.then(() => reject(new Error(`exited before listening: ${stderr}`)));
  });
}

/** A stand-in node in its own process (so kill -9 is real), registering itself like a node does. */
const fakeNodeScript = `
import http from 'node:http';
const id = process.env.SHOTFLEET_NODE_ID;
const server = http.createServer((req, res) => {
  res.setHeader('X-Shotfleet-Node', id);
  if (req.url === '/status') { res.setHeader('Content-Type', 'application/json'); res.end(JSON.stringify({ status: 'ready', node: id, saturation: 0, pages: { max: 2, inUse: 0, limit: 2 }, shedPerSecond: 0, renderSecondsAvg: 0 })); return; }
  res.end('ok');
});
server.listen(0, '127.0.0.1', async () => {
  const url = 'http://127.0.0.1:' + server.address().port;
  const { startMembership } = await import(${JSON.stringify(path.join(repoRoot, 'src/server/membership.ts'))});
  const { createLogger } = await import(${JSON.stringify(path.join(repoRoot, 'src/log/logger.ts'))});
  startMembership({ hubUrl: process.env.SHOTFLEET_HUB_URL, token: process.env.SHOTFLEET_TOKEN, nodeId: id, advertiseUrl: url, capacity: 2, heartbeatIntervalMs: 10000, log: createLogger('warn') });
  console.log(JSON.stringify({ msg: 'listening', url }));
});`;

function startNode(id: string, hubUrl: string): Promise<Proc> {
  const env = { SHOTFLEET_NODE_ID: id, SHOTFLEET_HUB_URL: hubUrl, SHOTFLEET_TOKEN: token, SHOTFLEET_PAGES: '1', SHOTFLEET_LOG_LEVEL: 'info' };
  if (fake) return launch(['--import', 'tsx', '--input-type=module', '-e', fakeNodeScript], env);
  return launch(['--import', 'tsx', cliEntry, 'serve'], env);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shotfleet-bench-fleet-'));
  const socket = path.join(dir, 'admin.sock');
  const frontPort = await freePort();
  const cleanup: (() => Promise<void>)[] = [];
  try {
    // Default intervals: only the token and the socket are set.
    const hub = await launch(['--import', 'tsx', cliEntry, 'hub'], { SHOTFLEET_TOKEN: token, SHOTFLEET_HAPROXY_SOCKET: socket, SHOTFLEET_LOG_LEVEL: 'info' });
    cleanup.push(() => hub.kill());
    const anchor = await startNode('anchor', hub.url);
    cleanup.push(() => anchor.kill());
    await until(async () => (await nodes(hub.url)).some((n) => n.id === 'anchor' && n.state === 'up'), 30_000);

    const cfg = await (await fetch(`${hub.url}/haproxy.cfg?bind=127.0.0.1:${frontPort}&stats=`, { headers: { token } })).text();
    fs.writeFileSync(path.join(dir, 'haproxy.cfg'), cfg);
    const haproxy = spawn('haproxy', ['-db', '-f', path.join(dir, 'haproxy.cfg')], { stdio: 'ignore' });
    cleanup.push(async () => {
      haproxy.kill('SIGTERM');
      await new Promise((r) => haproxy.once('exit', r));
    });
    await until(async () => (await fetch(`http://127.0.0.1:${frontPort}/livez`)).ok, 10_000);
    const api = createRuntimeApi(socket);

    const results: { listeningMs: number; joinMs: number; registeredMs: number; downMs: number; removedMs: number }[] = [];
    for (let round = 1; round <= rounds; round++) {
      const id = `joiner-${round}`;
      const started = Date.now();
      const node = await startNode(id, hub.url);
      const listeningMs = Date.now() - started;
      let registeredMs = NaN;
      // Session-less requests through HAProxy until one is answered by the new node.
      await until(
        async () => {
          if (Number.isNaN(registeredMs) && (await nodes(hub.url)).some((n) => n.id === id && n.state === 'up')) registeredMs = Date.now() - started;
          const r = await fetch(`http://127.0.0.1:${frontPort}/livez`);
          await r.body?.cancel();
          return r.headers.get('x-shotfleet-node') === id;
        },
        60_000,
        20,
      );
      const joinMs = Date.now() - started;
      const port = Number(new URL(node.url).port);

      const killed = Date.now();
      node.proc.kill('SIGKILL');
      let downMs = NaN;
      await until(
        async () => {
          const s = (await api.servers('shotfleet_nodes')).find((x) => x.port === port);
          if (Number.isNaN(downMs) && s && !s.running) downMs = Date.now() - killed;
          return !s || s.maintenance;
        },
        60_000,
        50,
      );
      const removedMs = Date.now() - killed;
      await node.kill();
      await killOrphanedChromium(node.proc.pid!);
      results.push({ listeningMs, joinMs, registeredMs, downMs, removedMs });
      console.log(
        `round ${round}: listening ${listeningMs} ms, hub saw it up ${registeredMs} ms, first request via HAProxy ${joinMs} ms; after kill -9: HAProxy check DOWN ${downMs} ms, hub emptied the slot ${removedMs} ms`,
      );
      await sleep(1000);
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const summary = {
      nodes: fake ? 'stand-in' : 'real (1 page)',
      rounds,
      medianListeningMs: median(results.map((r) => r.listeningMs)),
      medianJoinMs: median(results.map((r) => r.joinMs)),
      medianJoinAfterListeningMs: median(results.map((r) => r.joinMs - r.listeningMs)),
      medianHaproxyDownMs: median(results.map((r) => r.downMs)),
      medianHubRemovalMs: median(results.map((r) => r.removedMs)),
      results,
      machine: { cpus: os.availableParallelism(), node: process.version },
    };
    console.log(JSON.stringify(summary, null, 2));
    fs.mkdirSync(path.join(repoRoot, 'bench/results'), { recursive: true });
    fs.writeFileSync(path.join(repoRoot, `bench/results/fleet${fake ? '-fake' : ''}.json`), JSON.stringify(summary, null, 2));
  } finally {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** kill -9 gives a node no chance to close its browser: end the Chromium it launched (marked by its pid). */
async function killOrphanedChromium(nodePid: number): Promise<void> {
  for (const entry of fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes(`shotfleet-chrome-${nodePid}-`)) process.kill(Number(entry), 'SIGKILL');
    } catch {
      // ended meanwhile
    }
  }
}

async function nodes(hubUrl: string): Promise<{ id: string; state: string }[]> {
  return (await fetch(`${hubUrl}/nodes`, { headers: { token } })).json() as Promise<{ id: string; state: string }[]>;
}

async function until(check: () => Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not there yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
