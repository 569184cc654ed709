import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { waitFor } from './wait.js';

export const repoRoot = path.resolve(new URL('../..', import.meta.url).pathname);
export const cliEntry = path.join(repoRoot, 'src/cli/main.ts');

export interface RunningProcess {
  proc: ChildProcess;
  /** http://127.0.0.1:PORT the process announced in its "listening" log line. */
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

/**
 * Starts `shotfleet <command>` (from source, through tsx) with the given env on top of a loopback-only
 * environment, and resolves once it logs {"msg":"listening","url":…}.
 */
export async function startShotfleet(
  command: string,
  env: Record<string, string>,
  opts: { args?: string[]; timeoutMs?: number; uid?: number; gid?: number } = {},
): Promise<RunningProcess> {
  const proc = spawn(process.execPath, ['--import', 'tsx', cliEntry, command, ...(opts.args ?? [])], {
    cwd: repoRoot,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      AWS_EC2_METADATA_DISABLED: 'true',
      SHOTFLEET_HOST: '127.0.0.1',
      SHOTFLEET_PORT: '0',
      SHOTFLEET_LOG_LEVEL: 'info',
      ...env,
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

  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      // Not left running unwatched: a node that never said it listens would otherwise outlive the caller.
      proc.kill('SIGKILL');
      reject(new Error(`${command} did not start in time; stderr:\n${stderr}`));
    }, opts.timeoutMs ?? 30_000);
    readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line);
      } catch {
        return;
      }
      logs.push(entry);
      if (entry.msg === 'listening' && typeof entry.url === 'string') {
        clearTimeout(timer);
        resolve(entry.url);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${command} exited with ${code} before listening; stderr:\n${stderr}`));
    });
  });

  return {
    proc,
    url,
    logs,
    exited,
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
