import type { Admission, Permit } from '../admission/index.js';
import { ShotError } from '../errors/shot-error.js';
import type { Logger } from '../log/logger.js';
import type { NodeMetrics } from '../metrics/node-metrics.js';
import type { UrlPolicy } from '../policy/index.js';
import type { PagePool } from '../render-pool/page-pool.js';
import type { PageSlot } from '../render-pool/page-slot.js';
import type { SessionStore } from '../sessions/session-store.js';
import type { Storage, StoredObject, UploadReservation } from '../storage/index.js';
import { capture, type CaptureResult } from './capture.js';
import { imageSize } from 'image-size';
import type { RenderOptions } from './options.js';

export interface Timings {
  queueMs: number;
  renderMs: number;
  uploadMs?: number;
}

export type ScreenshotResult =
  | { kind: 'image'; image: Buffer; contentType: string; truncated: boolean; timings: Timings; session?: 'new' | 'reused' }
  | {
      kind: 'stored';
      body: Omit<StoredObject, 'uploadMs'> & { format: string; width: number; height: number; timings: Timings };
      truncated: boolean;
      timings: Timings;
      session?: 'new' | 'reused';
    };

export interface ScreenshotRequest {
  options: RenderOptions;
  /** When the request arrived (epoch ms): the deadline counts from here. */
  arrivedAt: number;
  /** Aborted when the client disconnects. */
  signal: AbortSignal;
  sessionId?: string;
  log: Logger;
}

export interface RenderServiceDeps {
  pool: PagePool;
  admission: Admission;
  policy: UrlPolicy;
  storage: Storage | null;
  sessions: SessionStore;
  metrics: NodeMetrics;
  maxPageHeight: number;
  maxPixels: number;
  nodeId: string;
}

/**
 * One screenshot from request to bytes: policy check, upload room, admission, a page, the render
 * under a hard deadline, and the upload. Nothing here waits without a bound, and every exit path
 * gives back what it took (permit, page, upload room).
 */
export function createRenderService(deps: RenderServiceDeps) {
  const { pool, admission, policy, storage, sessions, metrics } = deps;

  async function screenshot(req: ScreenshotRequest): Promise<ScreenshotResult> {
    const { options } = req;
    const deadlineAt = req.arrivedAt + options.timeout;
    if (options.store && !storage) {
      throw new ShotError('storage_not_configured', 'store: true needs S3: set SHOTFLEET_S3_BUCKET (and endpoint/region) on the node');
    }
    if (options.key !== undefined) storage!.validateKey(options.key);
    if (options.url !== undefined) await policy.checkPageUrl(options.url, 'url');

    const viewport = options.viewport ?? { width: 1280, height: 800, deviceScaleFactor: 1 };
    const pixels = viewport.width * viewport.height * viewport.deviceScaleFactor ** 2;
    const reservation: UploadReservation | null = options.store ? storage!.reserve(options.format, pixels) : null;
    try {
      const permit = await admission.admit({ costClass: costClass(options), deadlineAt, signal: req.signal });
      const rendered = await renderWithPermit(req, permit, deadlineAt);
      if (!reservation) {
        return { kind: 'image', ...rendered.capture, timings: rendered.timings, session: rendered.session };
      }
      const size = imageSize(rendered.capture.image);
      const stored = await reservation.upload(
        {
          image: rendered.capture.image,
          format: options.format,
          key: options.key,
          metadata: { sourceUrl: options.url, width: size.width, height: size.height, format: options.format, nodeId: deps.nodeId },
        },
        req.signal,
      );
      const timings = { ...rendered.timings, uploadMs: stored.uploadMs };
      return {
        kind: 'stored',
        body: {
          bucket: stored.bucket,
          key: stored.key,
          url: stored.url,
          etag: stored.etag,
          bytes: stored.bytes,
          format: options.format,
          width: size.width ?? 0,
          height: size.height ?? 0,
          timings,
        },
        truncated: rendered.capture.truncated,
        timings,
        session: rendered.session,
      };
    } finally {
      reservation?.release();
    }
  }

  async function renderWithPermit(req: ScreenshotRequest, permit: Permit, deadlineAt: number) {
    const started = Date.now();
    let ok = false;
    try {
      const result = await renderRetryingOnCrash(req, deadlineAt);
      ok = true;
      return result;
    } finally {
      permit.done({ ok, renderMs: Date.now() - started });
    }
  }

  /** A screenshot is idempotent: when the browser dies under it, try once more on the relaunched one. */
  async function renderRetryingOnCrash(req: ScreenshotRequest, deadlineAt: number) {
    try {
      return await renderOnce(req, deadlineAt);
    } catch (err) {
      if (!(err instanceof BrowserGoneError) || Date.now() >= deadlineAt || req.signal.aborted) throw unwrap(err);
      req.log.warn('browser died during the render; retrying once on its replacement');
      try {
        return await renderOnce(req, deadlineAt);
      } catch (again) {
        throw unwrap(again);
      }
    }
  }

  async function renderOnce(req: ScreenshotRequest, deadlineAt: number) {
    const lease = req.sessionId ? await sessions.checkout(req.sessionId, req.signal) : await poolLease(req.signal);
    const queueMs = Date.now() - req.arrivedAt;
    const renderStarted = Date.now();
    let ok = false;
    try {
      const result = await withDeadline(
        capture(lease.slot, req.options, { deadlineAt, maxPageHeight: deps.maxPageHeight, budget: { maxPixels: deps.maxPixels }, log: req.log }),
        deadlineAt,
        req.signal,
      );
      ok = true;
      const renderMs = Date.now() - renderStarted;
      metrics.renderDuration.observe({ format: req.options.format }, renderMs / 1000);
      return { capture: result, timings: { queueMs, renderMs }, session: lease.session };
    } catch (err) {
      // The page's state is unknown (a stuck script, a half-done navigation): it is torn down, not reused.
      if (!(err instanceof ShotError) || err.code === 'timeout') lease.slot.broken = true;
      if (lease.slot.browser.dead || !lease.slot.browser.launched.browser.connected) throw new BrowserGoneError(err);
      throw err;
    } finally {
      lease.release(ok);
    }
  }

  async function poolLease(signal: AbortSignal): Promise<{ slot: PageSlot; session?: undefined; release(ok: boolean): void }> {
    const slot = await pool.acquire(signal);
    return { slot, release: () => pool.release(slot) };
  }

  return { screenshot };
}

export type RenderService = ReturnType<typeof createRenderService>;

class BrowserGoneError extends Error {
  constructor(readonly original: unknown) {
    super('the browser went away during the render');
  }
}

function unwrap(err: unknown): unknown {
  if (err instanceof BrowserGoneError) {
    return new ShotError('render_failed', 'the browser crashed during the render and again on retry; try again');
  }
  return err;
}

/** Requests of one class take about as long; the admission's estimates are kept per class. */
function costClass(options: RenderOptions): string {
  const v = options.viewport ?? { width: 1280, height: 800, deviceScaleFactor: 1 };
  const size = options.fullPage ? 'full' : `${v.width}x${v.height}@${v.deviceScaleFactor}`;
  return `${options.format}${options.optimizeForSpeed ? '-fast' : ''}:${size}`;
}

/** Rejects with a 504 at the deadline, or with the abort reason when the client leaves. */
function withDeadline<T>(work: Promise<T>, deadlineAt: number, signal: AbortSignal): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const stop = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new ShotError('timeout', 'the render did not finish before its deadline; raise timeout (up to SHOTFLEET_MAX_TIMEOUT_MS) or simplify the page')),
      Math.max(0, deadlineAt - Date.now()),
    );
    onAbort = () => reject(signal.reason ?? new Error('client disconnected'));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  work.catch(() => undefined); // the losing side of the race may reject later
  return Promise.race([work, stop]).finally(() => {
    clearTimeout(timer);
    if (onAbort) signal.removeEventListener('abort', onAbort);
  });
}

export type { CaptureResult };
