import fsp from 'node:fs/promises';
import { text } from 'node:stream/consumers';
import { createAdaptiveThrottle, type AdaptiveThrottle } from './adaptive-throttle.js';
import { runBatch, type BatchObserver, type BatchStats } from './batch.js';
import { parseInput, type RequestBody, type ShotItem } from './input.js';
import { alreadyDone, openManifest, readManifest, type ManifestRecord } from './manifest.js';
import { createProgress, type ProgressOutput } from './progress.js';
import { defaultRetryPolicy, type RetryPolicy } from './retry-policy.js';
import { formatSummary } from './summary.js';

export interface ShootOptions {
  /** The input file, or `-` for stdin. */
  input: string;
  /** POST /screenshot on a node or on HAProxy. */
  endpoint: URL;
  outDir: string;
  manifestFile: string;
  concurrency: number;
  token?: string;
  maxRetriesPerItem: number;
  maxShedRetriesPerItem: number;
  /** Undefined: sized from the number of items. */
  batchRetryBudget?: number;
  requestTimeoutMs: number;
  progressIntervalMs: number;
  /** No progress (status line, periodic lines, notes): failed lines and the summary only. */
  quiet?: boolean;
  /** Request fields every line gets unless it sets them itself. */
  defaults: RequestBody;
}

/** Bad flags or an unreadable input: the command exits 2 with this message. */
export class UsageError extends Error {}

export interface ShootIo {
  stdin: NodeJS.ReadableStream;
  /** Progress, notes and the summary. */
  stderr: ProgressOutput;
  /** Aborting it stops the batch: items in flight are dropped (not recorded), the manifest is flushed. */
  signal: AbortSignal;
  /** For tests: a throttle or retry policy other than the defaults. */
  throttle?: AdaptiveThrottle;
  retryPolicy?: (items: number) => RetryPolicy;
}

/** Runs one batch and returns the exit code. Throws UsageError when the input cannot be read. */
export async function shoot(options: ShootOptions, io: ShootIo): Promise<number> {
  const input = await readInput(options.input, io.stdin);
  const { items, invalid } = parseInput(input, options.defaults);

  await fsp.mkdir(options.outDir, { recursive: true });
  const previous = await readManifest(options.manifestFile);
  const todo: ShotItem[] = [];
  let skipped = 0;
  for (const item of items) {
    if (await alreadyDone(previous.get(item.line), item.url, options.manifestFile)) skipped++;
    else todo.push(item);
  }

  const manifest = await openManifest(options.manifestFile);
  const progress = createProgress(io.stderr, todo.length, { intervalMs: options.progressIntervalMs, quiet: options.quiet });
  const failures: ManifestRecord[] = [];
  progress.note(`shooting ${todo.length} line(s) through ${options.endpoint.href}, ${options.concurrency} at a time`);
  if (skipped > 0) progress.note(`resuming: ${skipped} line(s) already ok in ${options.manifestFile}`);
  for (const bad of invalid) {
    const record: ManifestRecord = { line: bad.line, url: bad.url, source: bad.url, status: 'failed', error: { code: 'invalid_line', message: bad.reason } };
    await manifest.append(record);
    failures.push(record);
    progress.note(`line ${bad.line} skipped: ${bad.reason}`);
  }

  const policy: RetryPolicy = {
    ...(io.retryPolicy ?? defaultRetryPolicy)(todo.length),
    maxRetriesPerItem: options.maxRetriesPerItem,
    maxShedRetriesPerItem: options.maxShedRetriesPerItem,
  };
  if (options.batchRetryBudget !== undefined) policy.batchRetryBudget = options.batchRetryBudget;
  const observer: BatchObserver = {
    waiting: progress.waiting,
    resumed: progress.resumed,
    finished(record) {
      progress.finished?.(record);
      if (record.status === 'failed') failures.push(record);
    },
  };

  let stats: BatchStats;
  try {
    stats = await runBatch(
      todo,
      {
        attempt: {
          endpoint: options.endpoint,
          token: options.token,
          requestTimeoutMs: options.requestTimeoutMs,
          outDir: options.outDir,
          manifestFile: options.manifestFile,
        },
        concurrency: options.concurrency,
        retry: policy,
        throttle: io.throttle ?? createAdaptiveThrottle(),
      },
      manifest,
      observer,
      io.signal,
    );
  } finally {
    progress.stop();
    await manifest.close();
  }

  const interrupted = io.signal.aborted;
  io.stderr.write(
    formatSummary({
      ok: stats.ok,
      skipped,
      failed: stats.failed,
      invalid: invalid.length,
      unfinished: stats.unfinished,
      retries: stats.retries,
      shed: stats.shed,
      rateLimited: stats.rateLimited,
      throttled: stats.throttled,
      elapsedMs: progress.elapsedMs(),
      manifestFile: options.manifestFile,
      failures: failures.sort((a, b) => a.line - b.line),
      interrupted,
    }),
  );
  if (interrupted) return 130;
  return stats.failed + invalid.length + stats.unfinished === 0 ? 0 : 1;
}

async function readInput(file: string, stdin: NodeJS.ReadableStream): Promise<string> {
  if (file === '-') return text(stdin);
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; pass a file of URLs, or "-" for stdin`);
  }
}
