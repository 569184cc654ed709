import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import net from 'node:net';
import readline from 'node:readline';
import { compiledRoot, compileSources } from './compiled-sources.js';
import { waitFor } from './wait.js';

export const repoRoot = path.resolve(new URL('../..', import.meta.url).pathname);
/** `shotfleet` as the test run compiled it (test/global-setup.ts): start it with `node cliEntry <command>`. */
export const cliEntry = path.join(compiledRoot(repoRoot), 'src/cli/main.js');

let compiled: Promise<void> | undefined;
/**
 * The benchmarks start shotfleet through these helpers too, with no test run's global setup to compile src/ first:
 * outside vitest, the first start compiles it.
 */
function compiledForThisProcess(): Promise<void> {
  if (process.env.VITEST) return Promise.resolve();
  compiled ??= compileSources(repoRoot);
  return compiled;
}

export interface RunningProcess {
  proc: ChildProcess;
  /** http://127.0.0.1:PORT the process listens on. */
  url: string;
  /** Every JSON log line seen so far. */
  logs: Record<string, unknown>[];
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code (null when killed). */
  stop(graceMs?: number): Promise<number | null>;
  exited: Promise<number | null>;
}

/** Every process started here and not yet exited: killed when this process exits, however it ends. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const proc of running) proc.kill('SIGKILL');
});

/** A port nothing listens on now: the process under test is told it, so its URL is known before it says anything. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, host, resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The path whose first 200 means "ready", as a load balancer would see it: a node's /status, a hub's /livez. */
const readinessPath: Record<string, string> = { serve: '/status', hub: '/livez' };

/**
 * Starts `shotfleet <command>` (compiled from src/ for this run) with the given env on top of a loopback-only
 * environment, and resolves once it is ready the way HAProxy sees it: the first 200 from its readiness path
 * (a node's /status) — not a log line. Callers may send traffic at once.
 */
export async function startShotfleet(
  command: string,
  env: Record<string, string>,
  opts: { args?: string[]; timeoutMs?: number; uid?: number; gid?: number } = {},
): Promise<RunningProcess> {
  const portGiven = opts.args?.some((a) => a === '--port' || a.startsWith('--port=')) || (env.SHOTFLEET_PORT !== undefined && env.SHOTFLEET_PORT !== '0');
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(command, env, opts);
    } catch (err) {
      // freePort's port can be taken by another test's process before this one binds it: pick another.
      if (portGiven || attempt >= 3 || !String(err).includes('EADDRINUSE')) throw err;
    }
  }
}

async function startOnce(
  command: string,
  env: Record<string, string>,
  opts: { args?: string[]; timeoutMs?: number; uid?: number; gid?: number },
): Promise<RunningProcess> {
  const starting = await spawnShotfleet(command, env, opts);
  await starting.ready;
  return starting;
}

/**
 * Starts `shotfleet <command>` like startShotfleet, but resolves as soon as the process is spawned: `ready` settles
 * at its first readiness 200 (or rejects when it exits first or is not ready in time). For starts that overlap
 * other work (test/global-setup.ts).
 */
export async function spawnShotfleet(
  command: string,
  env: Record<string, string>,
  opts: { args?: string[]; timeoutMs?: number; uid?: number; gid?: number } = {},
): Promise<RunningProcess & { ready: Promise<void> }> {
  await compiledForThisProcess();
  const host = env.SHOTFLEET_HOST ?? '127.0.0.1';
  const portFlag = opts.args?.findIndex((a) => a === '--port' || a.startsWith('--port='));
  const port =
    portFlag !== undefined && portFlag >= 0
      ? Number(opts.args![portFlag].includes('=') ? opts.args![portFlag].split('=')[1] : opts.args![portFlag + 1])
      : env.SHOTFLEET_PORT && env.SHOTFLEET_PORT !== '0'
        ? Number(env.SHOTFLEET_PORT)
        : await freePort(host);
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const proc = spawn(process.execPath, [cliEntry, command, ...(opts.args ?? [])], {
    cwd: repoRoot,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      AWS_EC2_METADATA_DISABLED: 'true',
      SHOTFLEET_HOST: host,
      SHOTFLEET_LOG_LEVEL: 'info',
      ...env,
      SHOTFLEET_PORT: String(port),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    uid: opts.uid,
    gid: opts.gid,
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));

  running.add(proc);
  void exited.then(() => running.delete(proc));
  readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
    try {
      logs.push(JSON.parse(line));
    } catch {
      // not a log line
    }
  });

  const path = readinessPath[command] ?? '/livez';
  // Generous: a start on a loaded 2-core machine (Chromium launching) has taken over 30 s.
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  const ready = (async () => {
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`${command} exited with ${proc.exitCode ?? proc.signalCode} before it was ready; stderr:\n${stderr}`);
      }
      if (Date.now() > deadline) {
        // Not left running unwatched: a process that never got ready would otherwise outlive the caller.
        proc.kill('SIGKILL');
        throw new Error(`${command} was not ready (${path} 200) in time; stderr:\n${stderr}`);
      }
      if ((await statusOf(`${url}${path}`)) === 200) return;
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  ready.catch(() => undefined);

  return {
    proc,
    url,
    logs,
    exited,
    ready,
    async stop(graceMs = 20_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** The status a GET of `url` answers with (its body read), or 0 when nothing answers within 2 s. */
export function statusOf(url: string): Promise<number> {
  return fetch(url, { signal: AbortSignal.timeout(2000) }).then(
    async (res) => {
      await res.arrayBuffer();
      return res.status;
    },
    () => 0,
  );
}

/**
 * Waits for a log line matching `match`: the child's stdout pipe and its HTTP answers race, so a line written
 * before an answer may still be in transit when the answer arrives.
 */
export function waitForLog(target: Pick<RunningProcess, 'logs'>, what: string, match: (line: Record<string, unknown>) => boolean, timeoutMs = 5000) {
  return waitFor(`log line: ${what}`, () => target.logs.some(match), timeoutMs, 50);
}

/** Pids of Chromium processes whose command line holds `marker` (e.g. a node's user-data-dir). */
export async function chromiumPids(marker: string): Promise<number[]> {
  const { readdir, readFile } = await import('node:fs/promises');
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).replace(/\0/g, ' ');
      if (cmdline.includes('chromium') && cmdline.includes(marker)) pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}
