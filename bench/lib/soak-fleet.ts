import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createRuntimeApi, type RuntimeApi } from '../../src/haproxy/runtime-api.js';
import { sessionlessBackend } from '../../src/haproxy/layout.js';
import { startChild, type Child } from './children.js';

/**
 * The soak's fleet, all on loopback: a hub on 127.0.0.1, nodes each on a loopback address of their own (so they
 * can share the one agent port HAProxy's generated config names) and a real HAProxy started from the hub's
 * GET /haproxy.cfg and kept in step by the hub through its Runtime API socket.
 */
export const repoRoot = path.resolve(new URL('../..', import.meta.url).pathname);
const cliEntry = path.join(repoRoot, 'src/cli/main.ts');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const baseEnv = () => ({
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: process.env.HOME ?? '/tmp',
  // The AWS SDK would probe the cloud metadata address; nothing here may leave loopback.
  AWS_EC2_METADATA_DISABLED: 'true',
  SHOTFLEET_LOG_LEVEL: 'info',
});

export async function freePort(host = '127.0.0.1'): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, host, r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

/** Polls until `check` is true; resolves with the ms it took, or null at the deadline. */
export async function until(check: () => Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<number | null> {
  const started = Date.now();
  for (;;) {
    try {
      if (await check()) return Date.now() - started;
    } catch {
      // not there yet
    }
    if (Date.now() - started > timeoutMs) return null;
    await sleep(everyMs);
  }
}

async function statusCode(url: string): Promise<number> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  await res.body?.cancel();
  return res.status;
}

export interface Hub {
  child: Child;
  url: string;
  token: string;
  nodes(): Promise<{ id: string; url: string; state: string }[]>;
}

export async function startHub(opts: { token: string; socket: string; agentPort: number }): Promise<Hub> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = startChild(
    process.execPath,
    ['--import', 'tsx', cliEntry, 'hub'],
    {
      ...baseEnv(),
      SHOTFLEET_HOST: '127.0.0.1',
      SHOTFLEET_PORT: String(port),
      SHOTFLEET_TOKEN: opts.token,
      SHOTFLEET_HAPROXY_SOCKET: opts.socket,
      SHOTFLEET_AGENT_PORT: String(opts.agentPort),
    },
    { cwd: repoRoot },
  );
  if ((await until(async () => (await statusCode(`${url}/livez`)) === 200, 30_000)) === null) {
    throw new Error(`the hub did not answer /livez within 30 s; stderr:\n${child.stderr()}`);
  }
  return {
    child,
    url,
    token: opts.token,
    nodes: async () =>
      (await (await fetch(`${url}/nodes`, { headers: { authorization: `Bearer ${opts.token}` }, signal: AbortSignal.timeout(2000) })).json()) as never,
  };
}

/** A node slot: one id, address and port, and the process currently serving it (replaced on restart). */
export interface NodeSlot {
  id: string;
  host: string;
  port: number;
  url: string;
  env: Record<string, string>;
  child: Child;
  /** Every process that served it, oldest first (their logs outlive a restart). */
  children: Child[];
  /** How many times it was started (1 for the first process). */
  generation: number;
  /** False from a SIGTERM until the restarted process's first /status 200. */
  up: boolean;
}

export function nodeSlot(id: string, host: string, port: number, env: Record<string, string>): Omit<NodeSlot, 'child'> & { child?: Child } {
  return {
    id,
    host,
    port,
    url: `http://${host}:${port}`,
    env: { ...baseEnv(), ...env, SHOTFLEET_NODE_ID: id, SHOTFLEET_HOST: host, SHOTFLEET_PORT: String(port) },
    children: [],
    generation: 0,
    up: false,
  };
}

/** Starts the slot's process; resolves with the ms to its first /status 200 (a log line does not count). */
export async function startNodeProcess(slot: Omit<NodeSlot, 'child'> & { child?: Child }, timeoutMs = 120_000): Promise<number> {
  const child = startChild(process.execPath, ['--import', 'tsx', cliEntry, 'serve'], slot.env, { cwd: repoRoot, shotfleet: true });
  slot.child = child;
  slot.children.push(child);
  slot.generation++;
  let exited = false;
  void child.exited.then(() => (exited = true));
  const readyMs = await until(async () => exited || (await statusCode(`${slot.url}/status`)) === 200, timeoutMs, 50);
  if (exited) throw new Error(`node ${slot.id} exited before its first /status 200; stderr:\n${child.stderr()}`);
  if (readyMs === null) throw new Error(`node ${slot.id} gave no /status 200 within ${timeoutMs} ms; stderr:\n${child.stderr()}`);
  slot.up = true;
  return readyMs;
}

export interface Haproxy {
  child: Child;
  frontUrl: string;
  api: RuntimeApi;
  /** Whether HAProxy's session-less backend has the slot's address in rotation and passing its checks. */
  routes(host: string, port: number): Promise<boolean>;
}

export async function startHaproxy(hub: Hub, socket: string, dir: string): Promise<Haproxy> {
  const frontPort = await freePort();
  const res = await fetch(`${hub.url}/haproxy.cfg?bind=127.0.0.1:${frontPort}&stats=`, { headers: { authorization: `Bearer ${hub.token}` } });
  if (!res.ok) throw new Error(`the hub's /haproxy.cfg answered ${res.status}: ${await res.text()}`);
  const file = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(file, await res.text());
  const child = startChild('haproxy', ['-db', '-f', file], { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin' });
  const frontUrl = `http://127.0.0.1:${frontPort}`;
  if ((await until(async () => (await statusCode(`${frontUrl}/livez`)) > 0, 10_000, 50)) === null) {
    throw new Error(`haproxy did not start:\n${child.stderr()}`);
  }
  const api = createRuntimeApi(socket);
  return {
    child,
    frontUrl,
    api,
    async routes(host, port) {
      const servers = await api.servers(sessionlessBackend);
      return servers.some((s) => s.address === host && s.port === port && s.running && !s.maintenance && !s.drained);
    },
  };
}
