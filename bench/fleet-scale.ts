/**
 * bench:fleet-scale — the hub and HAProxy with hundreds of nodes, at the default intervals (ping 4 s × 5
 * failures, heartbeat 10 s). One process simulates the nodes: tiny HTTP servers on loopback ports that answer
 * /status like a node and register and heartbeat as a node does (no Chromium).
 * The hub runs as a real process, HAProxy as a real process synced through its Runtime API.
 *
 *   node --import tsx bench/fleet-scale.ts [--nodes 300] [--cpu-at 100,300] [--window-s 20] [--slots N]
 *   node --import tsx bench/fleet-scale.ts --cpu-only --cpu-at 1000      (the hub at rest only; fleet-scale-cpu.json)
 *
 * Measures: hub CPU and memory at each fleet size of --cpu-at; session movement through HAProxy when one node
 * joins or leaves a fleet of 100; join → routable for a burst of 100 joins; the time to drop 50 nodes killed at
 * once; the Runtime API time of a full resync of --nodes slots, and the hub's relearning after a restart.
 * Everything runs on 127.0.0.1. Results go to stdout and bench/results/fleet-scale.json.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { renderHaproxyConfig } from '../src/haproxy/config.js';
import { createRuntimeApi, type ServerState } from '../src/haproxy/runtime-api.js';
import { createRuntimeSync } from '../src/haproxy/runtime-sync.js';
import { createLogger } from '../src/log/logger.js';
import { quantile, round } from './lib/stats.js';
import { freePort } from '../test/helpers/processes.js';

const repoRoot = path.resolve(new URL('..', import.meta.url).pathname);
const cliEntry = path.join(repoRoot, 'src/cli/main.ts');
const args = process.argv.slice(2);
const flag = (name: string, fallback: string) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : fallback);
const fleetSize = Number(flag('nodes', '300'));
const cpuAt = flag('cpu-at', '100,300')
  .split(',')
  .map(Number)
  .sort((a, b) => a - b);
const windowS = Number(flag('window-s', '20'));
const cpuOnly = args.includes('--cpu-only');
const largest = Math.max(fleetSize + 100, ...cpuAt);
const slots = Number(flag('slots', String(Math.max(1024, largest))));
const token = 'bench-fleet-scale-token';
const heartbeatMs = 10_000;
const silent = createLogger('silent');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A stand-in node: answers /status and anything else with its id, and remembers the hub's first ping. */
interface SimNode {
  id: string;
  port: number;
  url: string;
  registeredAt: number;
  firstHubPingAt: number;
  heartbeat?: NodeJS.Timeout;
  server: http.Server;
}

async function startSimNode(id: string): Promise<SimNode> {
  const node = { id, port: 0, url: '', registeredAt: NaN, firstHubPingAt: NaN } as SimNode;
  const status = JSON.stringify({ status: 'ready', node: id, saturation: 0, pages: { max: 2, inUse: 0, limit: 2 }, shedPerSecond: 0, renderSecondsAvg: 0 });
  node.server = http.createServer((req, res) => {
    res.setHeader('X-Shotfleet-Node', id);
    if (req.url === '/status') {
      // HAProxy's checks say Host: shotfleet; the hub names the node.
      if (req.headers.host !== 'shotfleet' && Number.isNaN(node.firstHubPingAt)) node.firstHubPingAt = Date.now();
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(status);
      return;
    }
    req.resume();
    res.writeHead(200, { 'Content-Type': 'text/plain' }).end(id);
  });
  await new Promise<void>((r) => node.server.listen(0, '127.0.0.1', r));
  node.port = (node.server.address() as net.AddressInfo).port;
  node.url = `http://127.0.0.1:${node.port}`;
  return node;
}

/** Registers now and re-posts every heartbeat, as the node's membership client does. */
function join(node: SimNode, hubUrl: string): void {
  const post = () =>
    fetch(`${hubUrl}/nodes`, {
      method: 'POST',
      headers: { token, 'Content-Type': 'application/json' },
      body: JSON.stringify({ id: node.id, url: node.url, capacity: 2 }),
    }).then(
      (r) => r.body?.cancel(),
      () => undefined,
    );
  node.registeredAt = Date.now();
  void post();
  node.heartbeat = setInterval(() => void post(), heartbeatMs);
}

/** A clean exit: deregistered at once. */
async function leave(node: SimNode, hubUrl: string): Promise<void> {
  clearInterval(node.heartbeat);
  await fetch(`${hubUrl}/nodes/${node.id}`, { method: 'DELETE', headers: { token } }).then((r) => r.body?.cancel());
  await kill(node);
}

/** kill -9: no deregistration, no more heartbeats, connections cut. */
async function kill(node: SimNode): Promise<void> {
  clearInterval(node.heartbeat);
  if (!node.server.listening) return;
  await new Promise<void>((r) => {
    node.server.close(() => r());
    node.server.closeAllConnections();
  });
}

interface Proc {
  proc: ChildProcess;
  url: string;
  stop(): Promise<void>;
}

function launchHub(env: Record<string, string>): Promise<Proc> {
  const proc = spawn(process.execPath, ['--import', 'tsx', cliEntry, 'hub'], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, SHOTFLEET_HOST: '127.0.0.1', SHOTFLEET_HUB_TOKEN: token, SHOTFLEET_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  return new Promise((resolve, reject) => {
    readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line);
        if (entry.msg === 'listening') {
          resolve({
            proc,
            url: entry.url,
            async stop() {
              if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
              await exited;
            },
          });
        }
      } catch {
        // not a log line
      }
    });
    void exited.then(() => reject(new Error('the hub exited before listening')));
  });
}

function startHaproxy(config: string, dir: string, socket: string): Promise<{ proc: ChildProcess; stop(): Promise<void> }> {
  const file = path.join(dir, `haproxy-${Date.now()}.cfg`);
  fs.writeFileSync(file, config);
  const proc = spawn('haproxy', ['-db', '-f', file], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    await exited;
  };
  return until(async () => (await createRuntimeApi(socket).run(['show info'])).length > 0, 20_000, 50).then(() => ({ proc, stop }));
}

async function until<T>(check: () => Promise<T | undefined | false>, timeoutMs: number, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch {
      // not there yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

/** CPU seconds (user + system) and resident memory of a process, from /proc. */
function processUsage(pid: number): { cpuSeconds: number; rssBytes: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  const rss = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { cpuSeconds: ticks / 100, rssBytes: Number(rss?.[1] ?? 0) * 1024 };
}

const loadAverage = () => os.loadavg().map((x) => round(x, 2));

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shotfleet-bench-fleet-scale-'));
  const socket = path.join(dir, 'admin.sock');
  const front = await freePort();
  const nodes: SimNode[] = [];
  let hub: Proc | undefined;
  let haproxy: { proc: ChildProcess; stop(): Promise<void> } | undefined;
  const extra: { stop(): Promise<void> }[] = [];
  const api = createRuntimeApi(socket, 30_000);
  const results: Record<string, unknown> = { fleetSize, slots, defaults: { pingIntervalMs: 4000, pingFailures: 5, heartbeatIntervalMs: heartbeatMs } };
  const hubEnv = { SHOTFLEET_HAPROXY_SOCKET: socket, SHOTFLEET_HAPROXY_SLOTS: String(slots), SHOTFLEET_PORT: String(await freePort()) };

  /** Slot servers of the session-less backend that route to a live node now: "address:port" → state. */
  const routable = async () => {
    const servers: ServerState[] = await api.servers('shotfleet_nodes');
    return new Map(servers.filter((s) => !s.maintenance).map((s) => [`${s.address}:${s.port}`, s]));
  };
  const hubNodes = async (): Promise<{ id: string; url: string; state: string; slot: number | null }[]> =>
    (await fetch(`${hub!.url}/nodes`, { headers: { token } })).json() as never;
  const addNodes = async (n: number, prefix: string) => {
    const added = await Promise.all(Array.from({ length: n }, (_, i) => startSimNode(`${prefix}-${i}`)));
    nodes.push(...added);
    for (const node of added) join(node, hub!.url);
    return added;
  };
  const waitRoutable = async (set: SimNode[], timeoutMs = 120_000) =>
    until(
      async () => {
        const live = await routable();
        return set.every((n) => live.get(`127.0.0.1:${n.port}`)?.running);
      },
      timeoutMs,
      250,
    );

  try {
    hub = await launchHub(hubEnv);
    const cfg = await (await fetch(`${hub.url}/haproxy.cfg?bind=127.0.0.1:${front}&stats=`, { headers: { token } })).text();
    haproxy = await startHaproxy(cfg, dir, socket);

    // Session movement through HAProxy: which node each of 2000 session cookies lands on.
    const cookies = Array.from({ length: 2000 }, (_, i) => `bench-session-${i}`);
    const homes = async (clearStickTable: boolean) => {
      if (clearStickTable) await api.run(['clear table shotfleet_sessions']);
      const out = new Map<string, string>();
      let next = 0;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < cookies.length) {
            const cookie = cookies[next++];
            const res = await fetch(`http://127.0.0.1:${front}/session`, { headers: { Cookie: `shot_session=${cookie}` } });
            await res.body?.cancel();
            out.set(cookie, res.headers.get('x-shotfleet-node') ?? `HTTP ${res.status}`);
          }
        }),
      );
      return out;
    };
    const moved = (a: Map<string, string>, b: Map<string, string>) => [...a].filter(([c, n]) => b.get(c) !== n).length / a.size;

    // Grow the fleet step by step; at each --cpu-at size, measure the hub at rest over a window.
    const cpu: Record<string, unknown>[] = [];
    const grow = async (to: number, prefix: string) => {
      if (nodes.length >= to) return;
      const added = await addNodes(to - nodes.length, prefix);
      await waitRoutable(added, 180_000);
    };
    const measureCpu = async (n: number) => {
      await sleep(2 * heartbeatMs); // settled: every node registered, pinged and synced at least twice
      const before = processUsage(hub!.proc.pid!);
      const t0 = process.hrtime.bigint();
      await sleep(windowS * 1000);
      const after = processUsage(hub!.proc.pid!);
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const row = {
        nodes: n,
        hubCpuShareOfOneCore: round((after.cpuSeconds - before.cpuSeconds) / seconds, 4),
        hubRssMB: round(after.rssBytes / 2 ** 20),
        windowS: round(seconds),
        loadAverage: loadAverage(),
      };
      console.log('hub at rest', row);
      cpu.push(row);
    };

    if (cpuOnly) {
      delete results.fleetSize;
      for (const n of cpuAt) {
        await grow(n, `n${n}`);
        await measureCpu(n);
      }
      results.hubAtRest = cpu;
      results.machine = { cpus: os.availableParallelism(), node: process.version, loadAverageAtEnd: loadAverage() };
      console.log(JSON.stringify(results, null, 2));
      fs.writeFileSync(path.join(repoRoot, 'bench/results/fleet-scale-cpu.json'), `${JSON.stringify(results, null, 2)}\n`);
      return;
    }
    await grow(100, 'base');
    if (cpuAt.includes(100)) await measureCpu(100);

    // One node joins a fleet of 100, then one leaves: share of sessions placed on another node by the hash ring
    // (stick table cleared, so the ring alone decides) and as clients see it (stick table kept).
    const ringBefore = await homes(true);
    const [joiner] = await addNodes(1, 'joiner');
    await waitRoutable([joiner]);
    const stickyAfterJoin = await homes(false);
    const ringAfterJoin = await homes(true);
    await leave(joiner, hub.url); // deregisters: its slot empties at once
    nodes.splice(nodes.indexOf(joiner), 1);
    await until(async () => !(await routable()).has(`127.0.0.1:${joiner.port}`), 30_000, 100);
    const ringBeforeLeave = await homes(true);
    const leaver = nodes[17];
    await leave(leaver, hub.url);
    nodes.splice(nodes.indexOf(leaver), 1);
    await until(async () => !(await routable()).has(`127.0.0.1:${leaver.port}`), 30_000, 100);
    const ringAfterLeave = await homes(true);
    const onLeaver = [...ringBeforeLeave.values()].filter((n) => n === leaver.id).length / cookies.length;
    results.sessions = {
      cookies: cookies.length,
      joinOneTo100: {
        movedShare: round(moved(ringBefore, ringAfterJoin), 4),
        expected: round(1 / 101, 4),
        target: round(2 / 101, 4),
        movedWithStickTable: round(moved(ringBefore, stickyAfterJoin), 4),
      },
      leaveOneOf100: { movedShare: round(moved(ringBeforeLeave, ringAfterLeave), 4), sessionsOnTheLeaver: round(onLeaver, 4), expected: round(1 / 100, 4) },
    };
    console.log('sessions', results.sessions);
    await grow(100, 'refill');

    // A burst of 100 joins: first registration → HAProxy routes to it (slot filled, check passed).
    const burst = await addNodes(100, 'burst');
    const routableAt = new Map<string, number>();
    await until(
      async () => {
        const live = await routable();
        const now = Date.now();
        for (const n of burst) if (!routableAt.has(n.id) && live.get(`127.0.0.1:${n.port}`)?.running) routableAt.set(n.id, now);
        return routableAt.size === burst.length;
      },
      180_000,
      250,
    );
    const fromRegistration = burst.map((n) => routableAt.get(n.id)! - n.registeredAt);
    const fromFirstPing = burst.map((n) => routableAt.get(n.id)! - n.firstHubPingAt);
    results.joinBurst = {
      joins: burst.length,
      fleetBefore: nodes.length - burst.length,
      fromRegistrationMs: { p50: quantile(fromRegistration, 0.5), p99: quantile(fromRegistration, 0.99), max: Math.max(...fromRegistration) },
      fromHubFirstPingMs: { p50: quantile(fromFirstPing, 0.5), p99: quantile(fromFirstPing, 0.99), max: Math.max(...fromFirstPing) },
      loadAverage: loadAverage(),
    };
    console.log('join burst', results.joinBurst);

    await grow(fleetSize, 'fleet');
    if (cpuAt.includes(fleetSize)) await measureCpu(fleetSize);

    // 50 nodes killed at once: HAProxy's own checks mark them DOWN; the hub empties their slots.
    const victims = nodes.slice(-50);
    const killedAt = Date.now();
    await Promise.all(victims.map(kill));
    const downAt = new Map<string, number>();
    const emptiedAt = new Map<string, number>();
    await until(
      async () => {
        const live = await routable();
        const now = Date.now();
        for (const v of victims) {
          const s = live.get(`127.0.0.1:${v.port}`);
          if (!downAt.has(v.id) && !s?.running) downAt.set(v.id, now);
          if (!emptiedAt.has(v.id) && !s) emptiedAt.set(v.id, now);
        }
        return emptiedAt.size === victims.length;
      },
      120_000,
      250,
    );
    nodes.splice(nodes.length - 50, 50);
    const down = [...downAt.values()].map((t) => t - killedAt);
    const emptied = [...emptiedAt.values()].map((t) => t - killedAt);
    results.drop50 = {
      fleetBefore: nodes.length + 50,
      haproxyDownMs: { p50: quantile(down, 0.5), max: Math.max(...down) },
      hubEmptiedSlotMs: { p50: quantile(emptied, 0.5), max: Math.max(...emptied) },
      loadAverage: loadAverage(),
    };
    console.log('drop 50', results.drop50);
    await grow(fleetSize, 'regrow');

    // A full resync: a second HAProxy started from an empty config gets every slot through the Runtime API
    // (the hub's own sync code), timed from the first command to the last answer.
    const socket2 = path.join(dir, 'admin2.sock');
    const empty = renderHaproxyConfig({
      slots,
      servers: [],
      bind: `127.0.0.1:${await freePort()}`,
      statsBind: '',
      sessionCookie: 'shot_session',
      runtimeSocket: socket2,
      defaultMaxconn: 2,
    });
    const second = await startHaproxy(empty, dir, socket2);
    extra.push(second);
    const desired = (await hubNodes())
      .filter((n) => n.slot !== null && n.state === 'up')
      .map((n) => ({ slot: n.slot!, address: new URL(n.url).hostname, port: Number(new URL(n.url).port), maxconn: 2, state: 'ready' as const }));
    let outcome = { ok: false, seconds: NaN, commands: 0 };
    await createRuntimeSync(createRuntimeApi(socket2, 60_000), slots, silent, (o) => (outcome = o)).sync(desired);
    results.resync = {
      slotsFilled: desired.length,
      slotsTotal: slots,
      commands: outcome.commands,
      seconds: round(outcome.seconds, 3),
      ok: outcome.ok,
      loadAverage: loadAverage(),
    };
    console.log('full resync', results.resync);

    // A hub restart: it adopts HAProxy's slots, relearns every node from their heartbeats, and moves nobody.
    const slotsBefore = [...(await routable()).keys()].sort();
    await hub.stop();
    const restartedAt = Date.now();
    hub = await launchHub(hubEnv); // same port: the nodes keep heartbeating to it
    const relearnMs = await until(
      async () => ((await hubNodes()).filter((x) => x.state === 'up').length >= nodes.length ? Date.now() - restartedAt : undefined),
      120_000,
      100,
    );
    await sleep(5000);
    const slotsAfter = [...(await routable()).keys()].sort();
    results.hubRestart = {
      nodes: nodes.length,
      relearnedAllMs: relearnMs,
      haproxySlotsChanged: slotsBefore.filter((s, i) => slotsAfter[i] !== s).length + Math.abs(slotsAfter.length - slotsBefore.length),
    };
    console.log('hub restart', results.hubRestart);

    for (const n of cpuAt.filter((x) => x > fleetSize)) {
      await grow(n, `big${n}`);
      await measureCpu(n);
    }
    results.hubAtRest = cpu;
    results.machine = {
      cpus: os.availableParallelism(),
      node: process.version,
      haproxy: spawnSync('haproxy', ['-v'], { encoding: 'utf8' }).stdout.split('\n')[0],
      loadAverageAtEnd: loadAverage(),
    };
    console.log(JSON.stringify(results, null, 2));
    fs.mkdirSync(path.join(repoRoot, 'bench/results'), { recursive: true });
    fs.writeFileSync(path.join(repoRoot, 'bench/results/fleet-scale.json'), `${JSON.stringify(results, null, 2)}\n`);
  } finally {
    await hub?.stop();
    await haproxy?.stop();
    for (const e of extra) await e.stop();
    await Promise.all(nodes.map((n) => kill(n).catch(() => undefined)));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
