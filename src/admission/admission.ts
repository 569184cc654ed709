import { timerDelay } from '../async/timeout.js';
import { shed, ShotError, type ShedReason } from '../errors/shot-error.js';
import { noKeyName } from '../keys/key-set.js';
import type { NodeMetrics } from '../metrics/node-metrics.js';
import { createAdaptiveLimit } from './adaptive-limit.js';
import { createFairQueue, type QueueClient } from './fair-queue.js';
import { createRenderEstimates } from './render-estimates.js';
import { saturationRatio, type UploadFigures } from './saturation.js';
import { createShedRate } from './shed-rate.js';

export interface AdmissionOptions {
  /** Size of the page pool: the most renders at once. */
  pages: number;
  /** Renders allowed to wait for a page. */
  queueMax: number;
  /** Longest wait for a page; unset = only the request's own deadline bounds the wait. */
  queueTimeoutMs?: number;
  /** Node + Chromium memory above which new work is refused (`memory`). */
  maxMemoryBytes: number;
  /** Find the effective concurrency (1 … pages) from render times; false = always `pages`. */
  adaptive: boolean;
  /** false = unbounded FIFO, no shedding but draining: the overload benchmark's baseline. */
  enabled: boolean;
  /** Fair shares between keys (fair-queue.ts), the default; false = one first-come-first-served line for all: the fairness benchmark's baseline. */
  fairShares?: boolean;
}

export interface Permit {
  queueMs: number;
  /** Once, when the render finished or failed; later calls are ignored. */
  done(outcome: { ok: boolean; renderMs: number }): void;
}

export interface AdmissionSnapshot {
  inUse: number;
  limit: number;
  pages: number;
  queued: number;
  queueMax: number;
  saturation: number;
  shedPerSecond: number;
  renderSecondsAvg: number;
  draining: boolean;
}

export interface AdmitRequest {
  /** Requests of one class cost about the same, e.g. "png:1280x800". */
  costClass: string;
  /** The request's key; requests without one share one implicit key. */
  client?: QueueClient;
  /** Epoch ms by which the response must be complete (the request's `timeout`). */
  deadlineAt: number;
  /**
   * Aborted when the client goes away or the request's deadline passes (then its reason is a `timeout`
   * ShotError): the request leaves the queue at once; one still queued at its deadline is shed as `queue_timeout`.
   */
  signal: AbortSignal;
}

export interface Admission {
  /**
   * Resolves when the request may take a page. Rejects at once (never touching Chrome) with a ShotError from
   * shed(reason) for queue_full | deadline | memory | draining, later with queue_timeout; with the signal's
   * reason when the client goes away.
   */
  admit(req: AdmitRequest): Promise<Permit>;
  /**
   * The refusal every request would get now, whatever it asks (draining, memory, queue full), or null. Checked
   * before the body is read, so that under overload a 503 is the first thing the node does with a request.
   */
  refusalForAnyRequest(client?: QueueClient): ShotError | null;
  startDraining(): void;
  snapshot(): AdmissionSnapshot;
  /** Estimated seconds until a page frees up, whole and ≥ 1: the Retry-After of every refusal. */
  retryAfterSeconds(): number;
  /** Pages rendering now, by key name (the implicit key's is noKeyName); keys with none are absent. */
  pagesInUseByKey(): ReadonlyMap<string, number>;
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface AdmissionDeps {
  now(): number;
  /** Node + Chromium memory now; must be cheap (a cached probe, see createMemoryProbe). */
  memoryBytes(): number;
  /** The upload pool's figures, for saturation (the pool itself refuses with `upload_backlog`). */
  uploads?: () => UploadFigures;
  metrics?: NodeMetrics;
  timers?: Timers;
  /** Only for tests of the adaptive limit. */
  probeIntervalMs?: number;
}

interface Running {
  costClass: string;
  startedAt: number;
  peakInflight: number;
}

const implicitClient: QueueClient = { name: noKeyName, weight: 1 };

const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * Admission control before any Chrome work: a bounded queue of renders waiting for a page, shared fairly between
 * keys (fair-queue.ts), refusing (503) what cannot be done in time rather than failing it later. Checks, in order:
 * draining, memory, then — when no page is free and the queue is full — queue_full, which sheds the newest request
 * of the key holding the most of the queue (the newcomer itself when that is its own key); then deadline (expected
 * wait + expected render past the request's deadline). A queued request leaves with queue_timeout once it has
 * waited queueTimeoutMs or can no longer finish by its deadline.
 */
export function createAdmission(opts: AdmissionOptions, deps: AdmissionDeps): Admission {
  const { now } = deps;
  const timers = deps.timers ?? realTimers;
  const estimates = createRenderEstimates();
  const shedRate = createShedRate(now);
  const adaptive =
    opts.enabled && opts.adaptive && opts.pages > 1 ? createAdaptiveLimit({ max: opts.pages, now, probeIntervalMs: deps.probeIntervalMs }) : undefined;
  const queue = createFairQueue();
  const running = new Set<Running>();
  const inUseByKey = new Map<string, number>();
  const pagesInUseOf = (name: string) => inUseByKey.get(name) ?? 0;
  /** Whose line a request waits in: its key's, or the one line for all when fair shares are off. */
  const lineOf = (client: QueueClient | undefined): QueueClient => (opts.fairShares === false ? implicitClient : (client ?? implicitClient));
  let draining = false;

  const enforcedLimit = () => adaptive?.current() ?? opts.pages;
  const estimatedLimit = () => adaptive?.estimated() ?? opts.pages;

  /** Time until the earliest running render is expected to finish, from its start and its class estimate. */
  function msUntilPageFrees(): number {
    if (running.size < enforcedLimit()) return 0;
    let soonest = Number.POSITIVE_INFINITY;
    for (const r of running) {
      const expected = estimates.forClass(r.costClass) ?? 0;
      soonest = Math.min(soonest, r.startedAt + expected - now());
    }
    return Math.max(0, soonest);
  }

  function retryAfterSeconds(): number {
    return Math.max(1, Math.ceil(msUntilPageFrees() / 1000));
  }

  function refuse(reason: ShedReason) {
    deps.metrics?.shedTotal.inc({ reason });
    shedRate.add();
    return shed(reason, retryAfterSeconds());
  }

  function refusalForAnyRequest(client?: QueueClient): ShotError | null {
    if (draining) return refuse('draining');
    if (!opts.enabled) return null;
    if (deps.memoryBytes() > opts.maxMemoryBytes) return refuse('memory');
    if (queueFull() && queue.newcomerIsShed(lineOf(client).name)) return refuse('queue_full');
    return null;
  }

  const queueFull = () => !(queue.length === 0 && running.size < enforcedLimit()) && queue.length >= opts.queueMax;

  /** Expected wait for a request joining the queue now: renders ahead of it ÷ limit × the average render. */
  function expectedWaitMs(client: QueueClient): number {
    const limit = estimatedLimit();
    const ahead = Math.max(0, running.size - limit + 1) + queue.aheadOf(client);
    return (ahead / limit) * estimates.overall();
  }

  function start(costClass: string, keyName: string, arrivedAt: number): Permit {
    const entry: Running = { costClass, startedAt: now(), peakInflight: running.size + 1 };
    running.add(entry);
    inUseByKey.set(keyName, pagesInUseOf(keyName) + 1);
    for (const r of running) r.peakInflight = Math.max(r.peakInflight, running.size);
    const queueMs = entry.startedAt - arrivedAt;
    deps.metrics?.queueWait.observe(queueMs / 1000);
    let finished = false;
    return {
      queueMs,
      done({ ok, renderMs }) {
        if (finished) return;
        finished = true;
        running.delete(entry);
        const left = pagesInUseOf(keyName) - 1;
        if (left > 0) inUseByKey.set(keyName, left);
        else inUseByKey.delete(keyName);
        // Failures say little about cost (a refused URL is fast, a hung page is the timeout): only successes teach.
        if (ok) {
          estimates.record(costClass, renderMs);
          adaptive?.record({ costClass, renderMs, peakInflight: entry.peakInflight });
        }
        dispatch();
      },
    };
  }

  function dispatch(): void {
    while (running.size < enforcedLimit() && queue.wakeNext(pagesInUseOf)) {}
  }

  async function enqueue(req: AdmitRequest, arrivedAt: number): Promise<Permit> {
    // Waiting past the point where the render can still finish in time only wastes a page later.
    const giveUp = new AbortController();
    let timer: unknown;
    if (opts.enabled) {
      const lastUsefulStart = req.deadlineAt - (estimates.forClass(req.costClass) ?? 0);
      const waitMs = Math.min(opts.queueTimeoutMs ?? Number.POSITIVE_INFINITY, lastUsefulStart - arrivedAt);
      timer = timers.setTimeout(() => giveUp.abort(refuse('queue_timeout')), timerDelay(waitMs));
    }
    try {
      const keyName = (req.client ?? implicitClient).name;
      return await queue.wait(lineOf(req.client), AbortSignal.any([req.signal, giveUp.signal]), () => start(req.costClass, keyName, arrivedAt));
    } catch (err) {
      // Shed like any wait that can no longer finish in time; without admission (the benchmark's unbounded queue)
      // the deadline's own 504 stands.
      throw opts.enabled && isDeadline(err) ? refuse('queue_timeout') : err;
    } finally {
      if (timer !== undefined) timers.clearTimeout(timer);
    }
  }

  deps.metrics?.bindSources({
    saturation: () => snapshot().saturation,
    pagesInUse: () => running.size,
    pagesMax: () => opts.pages,
    renderQueueLength: () => queue.length,
    concurrencyLimit: estimatedLimit,
  });

  function snapshot(): AdmissionSnapshot {
    return {
      inUse: running.size,
      limit: estimatedLimit(),
      pages: opts.pages,
      queued: queue.length,
      queueMax: opts.queueMax,
      saturation: saturationRatio({
        inUse: running.size,
        limit: estimatedLimit(),
        queued: queue.length,
        queueMax: opts.queueMax,
        uploads: deps.uploads?.(),
        memoryBytes: deps.memoryBytes(),
        maxMemoryBytes: opts.maxMemoryBytes,
      }),
      shedPerSecond: shedRate.perSecond(),
      renderSecondsAvg: estimates.overall() / 1000,
      draining,
    };
  }

  return {
    admit(req) {
      if (req.signal.aborted) return Promise.reject(req.signal.reason);
      const arrivedAt = now();
      const keyName = (req.client ?? implicitClient).name;
      const refusal = refusalForAnyRequest(req.client);
      if (refusal) return Promise.reject(refusal);
      if (!opts.enabled) {
        if (queue.length === 0 && running.size < opts.pages) return Promise.resolve(start(req.costClass, keyName, arrivedAt));
        return enqueue(req, arrivedAt);
      }
      const pageFree = queue.length === 0 && running.size < enforcedLimit();
      const renderMs = estimates.forClass(req.costClass);
      if (renderMs !== undefined) {
        const waitMs = pageFree ? 0 : expectedWaitMs(lineOf(req.client));
        if (arrivedAt + waitMs + renderMs > req.deadlineAt) return Promise.reject(refuse('deadline'));
      }
      if (pageFree) return Promise.resolve(start(req.costClass, keyName, arrivedAt));
      // Full, but another key holds more of the queue than this one (refusalForAnyRequest let it in): its newest goes.
      if (queueFull()) queue.shedNewestOfLargest(refuse('queue_full'));
      return enqueue(req, arrivedAt);
    },

    refusalForAnyRequest,

    startDraining() {
      draining = true;
    },

    snapshot,

    retryAfterSeconds,

    pagesInUseByKey: () => inUseByKey,
  };
}

const isDeadline = (reason: unknown) => reason instanceof ShotError && reason.code === 'timeout';
