import path from 'node:path';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { writeFileAtomically } from './atomic-file.js';
import { formatOfContentType, imageFileName } from './file-name.js';
import type { ShotItem } from './input.js';
import { manifestPath, type ItemError, type ManifestRecord } from './manifest.js';
import { parseRetryAfter } from './retry-policy.js';
import { parseServerTiming } from './server-timing.js';

export interface AttemptContext {
  /** The node's (or HAProxy's) POST /screenshot URL. */
  endpoint: URL;
  token?: string;
  requestTimeoutMs: number;
  outDir: string;
  manifestFile: string;
  /** Aborted when the batch is interrupted. */
  signal: AbortSignal;
}

/** What the fleet made of one attempt. `accepted` feeds the adaptive throttle: the fleet handled it. */
export type AttemptOutcome =
  | { kind: 'ok'; result: Partial<ManifestRecord> }
  | { kind: 'retry'; error: ItemError; retryAfterMs?: number }
  | { kind: 'failed'; error: ItemError }
  | { kind: 'aborted' };

/** 429 is this client's key over its own limit: waited out like a 503, after Retry-After. */
const retryableStatuses = new Set([429, 502, 503, 504]);
const userAgent = 'shotfleet-shoot';

export async function sendAttempt(item: ShotItem, ctx: AttemptContext): Promise<AttemptOutcome> {
  const timeout = AbortSignal.timeout(ctx.requestTimeoutMs);
  const signal = AbortSignal.any([ctx.signal, timeout]);
  const started = performance.now();
  try {
    const res = await fetch(ctx.endpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': userAgent,
        ...(ctx.token ? { authorization: `Bearer ${ctx.token}` } : {}),
      },
      body: JSON.stringify(item.body),
      signal,
    });
    if (res.status === 200) return await saveSuccess(item, res, ctx, signal, started);
    const error = await readError(res);
    if (!retryableStatuses.has(res.status)) return { kind: 'failed', error };
    return { kind: 'retry', error, retryAfterMs: res.status === 503 || res.status === 429 ? parseRetryAfter(res.headers.get('retry-after')) : undefined };
  } catch (err) {
    if (ctx.signal.aborted) return { kind: 'aborted' };
    if (timeout.aborted) {
      return {
        kind: 'retry',
        error: { code: 'client_timeout', message: `no complete answer within ${ctx.requestTimeoutMs} ms; raise --request-timeout if renders are this slow` },
      };
    }
    if (isFileSystemError(err)) {
      return { kind: 'failed', error: { code: 'write_failed', message: `${(err as Error).message}; check that --out is writable and has space` } };
    }
    return { kind: 'retry', error: { code: 'connection_error', message: describeNetworkError(err, ctx.endpoint) } };
  }
}

async function saveSuccess(item: ShotItem, res: Response, ctx: AttemptContext, signal: AbortSignal, started: number): Promise<AttemptOutcome> {
  const contentType = res.headers.get('content-type');
  const node = res.headers.get('x-shotfleet-node') ?? undefined;
  const format = formatOfContentType(contentType);
  if (format && res.body) {
    const file = path.join(ctx.outDir, imageFileName(item.line, item.url, format));
    const bytes = await writeFileAtomically(file, res.body as WebReadableStream<Uint8Array>, signal);
    return {
      kind: 'ok',
      result: {
        file: manifestPath(ctx.manifestFile, file),
        bytes,
        format,
        node,
        ...(res.headers.get('x-shotfleet-truncated') === 'true' ? { truncated: true as const } : {}),
        timings: { ...parseServerTiming(res.headers.get('server-timing')), totalMs: elapsed(started) },
      },
    };
  }
  if (/^application\/json\b/i.test(contentType ?? '')) {
    const stored = (await res.json()) as Record<string, unknown>;
    if (typeof stored.key !== 'string' || typeof stored.url !== 'string') {
      return {
        kind: 'failed',
        error: { status: 200, code: 'unexpected_response', message: 'the node answered JSON without "key" and "url"; is --endpoint a shotfleet node?' },
      };
    }
    return {
      kind: 'ok',
      result: {
        bucket: typeof stored.bucket === 'string' ? stored.bucket : undefined,
        key: stored.key,
        url: stored.url,
        bytes: typeof stored.bytes === 'number' ? stored.bytes : undefined,
        format: typeof stored.format === 'string' ? stored.format : undefined,
        node,
        timings: { ...(stored.timings as object), ...parseServerTiming(res.headers.get('server-timing')), totalMs: elapsed(started) },
      },
    };
  }
  await res.body?.cancel();
  return {
    kind: 'failed',
    error: { status: 200, code: 'unexpected_response', message: `the answer was "${contentType}", not an image or JSON; is --endpoint a shotfleet node?` },
  };
}

/** The node's `{"error":{code,message}}`, or what can be said about a body that is not one. */
async function readError(res: Response): Promise<ItemError> {
  const text = await res.text().catch(() => '');
  try {
    const { error } = JSON.parse(text) as { error?: { code?: unknown; message?: unknown; details?: { reason?: unknown } } };
    if (typeof error?.code === 'string') {
      const reason = typeof error.details?.reason === 'string' ? ` (${error.details.reason})` : '';
      return { status: res.status, code: error.code, message: `${String(error.message ?? '')}${reason}` };
    }
  } catch {
    // not the node's JSON: e.g. a proxy's HTML error page
  }
  return { status: res.status, code: `http_${res.status}`, message: `${res.status} ${res.statusText}`.trim() };
}

function describeNetworkError(err: unknown, endpoint: URL): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const detail = cause?.code ?? cause?.message ?? (err as Error).message;
  return `could not reach ${endpoint.origin} (${detail})`;
}

const fileSystemCalls = new Set(['open', 'write', 'rename', 'close', 'mkdir', 'unlink']);

function isFileSystemError(err: unknown): boolean {
  return fileSystemCalls.has((err as NodeJS.ErrnoException).syscall ?? '');
}

const elapsed = (started: number) => Math.round(performance.now() - started);
