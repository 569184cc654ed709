import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { AdaptiveThrottle } from '../../src/shoot/adaptive-throttle.js';
import type { ManifestRecord } from '../../src/shoot/manifest.js';
import { parseShootOptions } from '../../src/cli/shoot-options.js';
import type { RetryPolicy } from '../../src/shoot/retry-policy.js';
import { shoot } from '../../src/shoot/shoot.js';
import { cliEntry, repoRoot } from './processes.js';

export interface ShootRun {
  code: number;
  stderr: string;
}

/** `shotfleet shoot ARGV` in this process, with its stderr captured; fast retries unless told otherwise. */
export async function shootInProcess(
  argv: string[],
  opts: { env?: NodeJS.ProcessEnv; stdin?: string; signal?: AbortSignal; retryPolicy?: Partial<RetryPolicy>; throttle?: AdaptiveThrottle } = {},
): Promise<ShootRun> {
  const options = parseShootOptions(argv, opts.env ?? {});
  if (!options) throw new Error('--help given');
  let stderr = '';
  const code = await shoot(options, {
    stdin: Readable.from([opts.stdin ?? '']),
    stderr: { write: (text: string) => (stderr += text) },
    signal: opts.signal ?? new AbortController().signal,
    throttle: opts.throttle,
    retryPolicy: (items) => ({
      maxRetriesPerItem: 4,
      maxShedRetriesPerItem: 20,
      batchRetryBudget: 20 + 3 * items,
      backoffBaseMs: 20,
      backoffCapMs: 200,
      maxRetryAfterMs: 120_000,
      ...opts.retryPolicy,
    }),
  });
  return { code, stderr };
}

/** Every record of a manifest, in the order written. */
export async function manifestRecords(file: string): Promise<ManifestRecord[]> {
  const text = await fs.readFile(file, 'utf8');
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as ManifestRecord);
}

/** `shotfleet shoot ARGS` as its own process (compiled for this run), for signals and exit codes. */
export function spawnShoot(args: string[], env: Record<string, string> = {}): { proc: ChildProcess; exited: Promise<number | null>; output: () => string } {
  const proc = spawn(process.execPath, [cliEntry, 'shoot', ...args], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  proc.stdout!.on('data', (d) => (output += d));
  proc.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return { proc, exited, output: () => output };
}

let batchDirs = 0;

/** A fresh folder under `root` holding `lines` as input.txt, with where its images and manifest go. */
export async function makeBatch(root: string, lines: string[]) {
  const dir = path.join(root, `run-${++batchDirs}`);
  await fs.mkdir(dir);
  const input = path.join(dir, 'input.txt');
  await fs.writeFile(input, `${lines.join('\n')}\n`);
  const out = path.join(dir, 'out');
  return { input, out, manifest: path.join(out, 'manifest.jsonl') };
}
