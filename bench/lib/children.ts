import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import readline from 'node:readline';

/**
 * Every process a bench starts, so that it can end them however the bench ends: normally, on Ctrl-C or SIGTERM,
 * or on a crash. Each child gets a process group of its own (detached), so that killing the group reaches any
 * helper it started, and a Ctrl-C in the terminal reaches the bench alone, which then stops them in order.
 */
const started = new Set<ChildProcess>();
/** Pids of shotfleet processes ever started here: their Chromium carries `shotfleet-chrome-<pid>-` on its command line. */
export const nodePidsEverStarted = new Set<number>();

export interface Child {
  proc: ChildProcess;
  pid: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Warnings and errors it logged (JSON lines at level ≥ 40), newest last, at most 200. */
  problems: Record<string, unknown>[];
  /** Counts of its log lines by msg, for the report (bounded by the number of distinct messages). */
  messages: Map<string, number>;
  stderr(): string;
  /** SIGTERM (or the given signal), SIGKILL after graceMs; resolves with how it ended. */
  stop(graceMs: number, signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; killed: boolean }>;
}

export function startChild(command: string, argv: string[], env: Record<string, string>, opts: { cwd?: string; shotfleet?: boolean } = {}): Child {
  const proc = spawn(command, argv, { cwd: opts.cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  if (proc.pid === undefined) throw new Error(`could not start ${command}`);
  const pid = proc.pid;
  started.add(proc);
  if (opts.shotfleet) nodePidsEverStarted.add(pid);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => {
      started.delete(proc);
      resolve({ code, signal });
    }),
  );
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-20_000)));
  const problems: Record<string, unknown>[] = [];
  const messages = new Map<string, number>();
  readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line);
    } catch {
      return;
    }
    const msg = String(entry.msg ?? '');
    messages.set(msg, (messages.get(msg) ?? 0) + 1);
    if (typeof entry.level === 'number' && entry.level >= 40) {
      problems.push(entry);
      if (problems.length > 200) problems.shift();
    }
  });
  return {
    proc,
    pid,
    exited,
    problems,
    messages,
    stderr: () => stderr,
    async stop(graceMs, signal = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return { ...(await exited), killed: false };
      proc.kill(signal);
      let killed = false;
      const timer = setTimeout(() => {
        killed = true;
        killGroup(pid);
      }, graceMs);
      const how = await exited;
      clearTimeout(timer);
      return { ...how, killed };
    },
  };
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // the group is gone
  }
}

export interface FoundProcess {
  pid: number;
  /** Its parent: 1 (or a subreaper) once what started it is gone. */
  ppid: number;
  cmd: string;
}

/**
 * Chromium processes launched by one of our shotfleet processes, found by the profile directory every one of
 * them names on its command line (`--user-data-dir=…/shotfleet-chrome-<node pid>-…`). Chromium's browser runs
 * in a process group of its own, so the node's group does not reach it.
 */
export function leftoverChromium(): FoundProcess[] {
  const markers = [...nodePidsEverStarted].map((p) => `shotfleet-chrome-${p}-`);
  const found: FoundProcess[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      if (!/chrom/i.test(cmd) || !markers.some((m) => cmd.includes(m))) continue;
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Field 4 (parent pid) follows "pid (comm) state": comm may hold spaces, so count from its ")".
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      found.push({ pid: Number(entry), ppid, cmd });
    } catch {
      // ended while we looked
    }
  }
  return found;
}

export function killPids(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Kills every child still running and every Chromium of ours at once (synchronous: usable in an exit handler). */
export function killEverything(): void {
  for (const proc of started) if (proc.pid) killGroup(proc.pid);
  killPids(leftoverChromium().map((p) => p.pid));
}

/**
 * Ends everything started here when the bench ends by a signal or a crash. `onStop` gets the chance to stop
 * gracefully first (bounded by `graceMs`); a second Ctrl-C skips it.
 */
export function cleanUpOnExit(onStop: () => Promise<void>, graceMs = 15_000): void {
  let stopping = false;
  const stop = (why: string, code: number) => {
    if (stopping) {
      killEverything();
      process.exit(code);
    }
    stopping = true;
    console.error(`\n${why}: stopping every process the bench started (again to kill them at once)`);
    const timer = setTimeout(() => {
      killEverything();
      process.exit(code);
    }, graceMs);
    onStop()
      .catch(() => undefined)
      .finally(() => {
        clearTimeout(timer);
        killEverything();
        process.exit(code);
      });
  };
  process.on('SIGINT', () => stop('SIGINT', 130));
  process.on('SIGTERM', () => stop('SIGTERM', 143));
  process.on('uncaughtException', (err) => {
    console.error(err);
    stop('crash', 1);
  });
  process.on('unhandledRejection', (err) => {
    console.error(err);
    stop('crash', 1);
  });
  process.on('exit', () => killEverything());
}
