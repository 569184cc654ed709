import { TimeoutError } from 'puppeteer-core';
import type { Admission } from '../admission/index.js';
import { abortable, deadlineSignal } from '../async/abortable.js';
import { withTimeout } from '../async/timeout.js';
import { ShotError } from '../errors/shot-error.js';
import type { Logger } from '../log/logger.js';
import type { ClientKey } from '../keys/key-set.js';
import type { NodeMetrics } from '../metrics/node-metrics.js';
import type { UrlPolicy } from '../policy/index.js';
import type { PagePool } from '../render-pool/page-pool.js';
import type { RenderPage } from '../render-pool/page-slot.js';
import type { SessionStore } from '../sessions/session-store.js';
import type { Storage, StoredObject, UploadReservation } from '../storage/index.js';
import { capture, type CaptureResult } from '../render/capture.js';
import { imageSize } from 'image-size';
import type { RenderOptions } from '../request/options.js';
import { loadAdBlocker, type AdBlocker } from '../render/ad-blocking.js';
import type { RenderReport } from '../render/best-effort.js';
import { effectiveViewport } from '../request/viewport.js';

export interface Timings {
  queueMs: number;
  renderMs: number;
  uploadMs?: number;
}

export type ScreenshotResult = (
  | { kind: 'image'; image: Buffer; contentType: string; truncated: boolean; timings: Timings; session?: 'new' | 'reused' }
  | {
      kind: 'stored';
      /** The stored image itself, for the result cache. */
      image: Buffer;
      contentType: string;
      body: Omit<StoredObject, 'uploadMs'> & { format: string; width: number; height: number; timings: Timings };
      truncated: boolean;
      timings: Timings;
      session?: 'new' | 'reused';
    }
) &
  RenderReport;

export interface ScreenshotRequest {
  options: RenderOptions;
  /** When the request arrived (epoch ms): the deadline counts from here. */
  arrivedAt: number;
  /** Aborted when the client disconnects (the render's waits also end at the deadline: see screenshot()). */
  signal: AbortSignal;
  sessionId?: string;
  /** The key the request came with: its share of the pages (admission's fair shares). */
  client?: ClientKey;
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

  /**
   * What the node refuses before any work: store without S3, a bad key, a page the URL policy forbids. Asked of a
   * request answered from the result cache as well, so a cached result is only ever what a render would give.
   */
  async function check(options: RenderOptions): Promise<void> {
    if (options.store && !storage) {
      throw new ShotError('storage_not_configured', 'store: true needs S3: set SHOTFLEET_S3_BUCKET (and endpoint/region) on the node');
    }
    if (options.key !== undefined) storage!.validateKey(options.key);
    if (options.url !== undefined) await policy.checkPageUrl(options.url, 'url');
  }

  async function screenshot(req: ScreenshotRequest): Promise<ScreenshotResult> {
    const { options } = req;
    const deadlineAt = req.arrivedAt + options.timeout;
    await check(options);

    const viewport = effectiveViewport(options);
    const pixels = viewport.width * viewport.height * viewport.deviceScaleFactor ** 2;
    const reservation: UploadReservation | null = options.store ? storage!.reserve(options.format, pixels) : null;
    const report: RenderReport = { bestEffort: false };
    // One signal for every wait of the render — a session's turn, admission, a page, the capture: the client
    // leaving or the deadline passing. The upload is not under the render's deadline and gets the client's alone.
    const deadline = deadlineSignal(req.signal, deadlineAt, deadlinePassed);
    try {
      const rendered = await render(req, deadline.signal, deadlineAt, report)
        .catch((err: unknown) => {
          throw withReportHeaders(err, report);
        })
        .finally(() => deadline.dispose());
      if (!reservation) {
        return { kind: 'image', ...rendered.capture, timings: rendered.timings, session: rendered.session, ...report };
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
        image: rendered.capture.image,
        contentType: rendered.capture.contentType,
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
        ...report,
      };
    } finally {
      reservation?.release();
    }
  }

  /**
   * A session request first waits for the session's own earlier request (bounded by its deadline), holding no
   * admission permit meanwhile: a page it cannot use yet must not keep another client from a free one. Then
   * admission, then the render; a render whose page or browser died under it is tried again on a fresh page.
   */
  async function render(req: ScreenshotRequest, signal: AbortSignal, deadlineAt: number, report: RenderReport) {
    // Loaded (once per process) before a page is taken, so no page waits on it.
    const adBlocker = req.options.blockAds ? await loadAdBlocker() : null;
    const takeLease = (): Promise<Lease> => (req.sessionId ? sessions.checkout(req.sessionId, signal) : poolLease(signal));
    let lease: Lease | null = req.sessionId ? await takeLease() : null;
    let ok = false;
    try {
      const permit = await admission.admit({ costClass: costClass(req.options), client: req.client, deadlineAt, signal });
      const started = Date.now();
      try {
        for (let attempt = 1, skipped = 0; ; attempt++) {
          lease ??= await takeLease();
          // A retry must run on a page that is alive: one caught by the same wave of deaths is swapped, not used.
          if (attempt > 1 && skipped < 4 && !(await lease.slot.answers())) {
            lease.slot.markBroken();
            lease.release(false);
            lease = null;
            skipped++;
            attempt--;
            continue;
          }
          try {
            const result = await renderOn(lease, req, signal, deadlineAt, report, adBlocker);
            ok = true;
            return result;
          } catch (err) {
            if (!(err instanceof RenderLostError)) throw err;
            // Renderers killed together (an OOM kill, a killed process group) are reported one by one, and
            // Chromium's spare renderer can be among them: a retry can land on a process that is already dead.
            // Three tries ride out such a wave; a page that crashes its renderer every time stops there.
            if (attempt >= maxAttempts || signal.aborted) {
              throw new ShotError('render_failed', `the page's renderer crashed ${attempt} times during this render; try again, or check the page`, {
                cause: err.message,
              });
            }
            req.log.warn({ cause: err.message, attempt }, 'the render lost its page; retrying on a fresh one');
            lease.release(false);
            lease = null;
          }
        }
      } finally {
        permit.done({ ok, renderMs: Date.now() - started });
      }
    } finally {
      lease?.release(ok);
    }
  }

  async function renderOn(lease: Lease, req: ScreenshotRequest, signal: AbortSignal, deadlineAt: number, report: RenderReport, adBlocker: AdBlocker | null) {
    const { slot } = lease;
    // A session's page can have died while this request waited for its turn.
    if (!slot.usable()) throw new RenderLostError('the page was already gone');
    const queueMs = Date.now() - req.arrivedAt;
    const renderStarted = Date.now();
    try {
      const captured = capture(slot, req.options, {
        deadlineAt,
        signal,
        maxPageHeight: deps.maxPageHeight,
        budget: { maxPixels: deps.maxPixels },
        log: req.log,
        report,
        adBlocker,
      });
      captured.catch(() => undefined); // past the deadline nobody waits for it
      const result = await abortable(Promise.race([captured, slot.gone]), signal);
      const renderMs = Date.now() - renderStarted;
      metrics.renderDuration.observe({ format: req.options.format }, renderMs / 1000);
      return { capture: result, timings: { queueMs, renderMs }, session: lease.session };
    } catch (err) {
      const timedOut = err instanceof TimeoutError || (err instanceof ShotError && err.code === 'timeout');
      if (signal.aborted && !timedOut) {
        // The client left: nobody waits for this answer, so the page is not asked what failed (a page held mid-
        // navigation does not answer, and was taken for a crashed renderer after a second and a half). Stopped
        // mid-step, it is not reused. Still an answer of its own, so the request is logged and counted.
        slot.markBroken();
        throw new ShotError('render_failed', 'the client left before its render ended', { cause: String(signal.reason) });
      }
      // A killed renderer fails the call in flight ("Internal error", "Not attached", a navigation net::ERR_ABORTED)
      // a moment before Chromium reports the crash itself: ask the page before deciding what failed. A live page
      // answers in a round trip; a stuck one past its deadline is not asked. A client-facing error stands unless the
      // crash is reported meanwhile (a busy page may be slow to answer); any other error on a page that does not
      // answer is taken for a dead renderer.
      const answered = timedOut || slot.lost() ? true : await slot.answers(1000);
      // A page that does not answer gets a moment more for its crash report.
      if (!answered && !slot.lost()) {
        const crashReported = slot.gone.catch(() => undefined);
        await withTimeout(crashReported, 500, () => undefined);
      }
      if (slot.lost() || (!answered && !(err instanceof ShotError))) {
        slot.markBroken();
        throw new RenderLostError(err instanceof Error ? err.message : String(err));
      }
      // The page's state is unknown (a stuck script, a half-done navigation, no answer to the probe): it is torn
      // down, not reused.
      if (!(err instanceof ShotError) || timedOut || !answered) slot.markBroken();
      // A puppeteer wait that ran out is this render's deadline, whichever step it was.
      if (err instanceof TimeoutError) throw deadlinePassed();
      throw err;
    }
  }

  async function poolLease(signal: AbortSignal): Promise<Lease> {
    const slot = await pool.acquire(signal);
    return { slot, release: () => pool.release(slot) };
  }

  return { check, screenshot };
}

export type RenderService = ReturnType<typeof createRenderService>;

interface Lease {
  slot: RenderPage;
  session?: 'new' | 'reused';
  release(ok: boolean): void;
}

/** The page or its whole browser died under a render: a screenshot is idempotent, so it is tried again. */
class RenderLostError extends Error {}

/**
 * The target's status goes on every answer to a url render whose navigation got a response, errors included
 * (a timeout, a missing selector, a refused status).
 */
function withReportHeaders(err: unknown, report: RenderReport): unknown {
  if (!(err instanceof ShotError) || report.targetStatus === undefined) return err;
  return new ShotError(err.code, err.message, err.details, { ...err.headers, 'X-Shotfleet-Target-Status': String(report.targetStatus) });
}

/** Renders of one request, counting those lost with their page. */
const maxAttempts = 3;

/**
 * Requests of one class take about as long; the admission's estimates are kept per class. Classes are buckets
 * (format, and device pixels rounded to a power of two), not the client's exact figures: a table keyed by any
 * width, height and fractional deviceScaleFactor a client can send would grow without bound.
 */
export function costClass(options: RenderOptions): string {
  const v = effectiveViewport(options);
  const pixels = v.width * v.height * v.deviceScaleFactor ** 2;
  const size = options.fullPage ? 'full' : `2^${Math.round(Math.log2(Math.max(1, pixels)))}px`;
  return `${options.format}${options.optimizeForSpeed ? '-fast' : ''}:${size}`;
}

function deadlinePassed(): ShotError {
  return new ShotError('timeout', 'the render did not finish before its deadline; raise timeout (up to SHOTFLEET_MAX_TIMEOUT_MS) or simplify the page');
}

export type { CaptureResult };
