import client from 'prom-client';
import { registerBuildInfo } from './build-info.js';

/** Live figures the gauges read at scrape time; each part of the node supplies its own. */
export interface GaugeSources {
  saturation(): number;
  pagesInUse(): number;
  pagesMax(): number;
  renderQueueLength(): number;
  concurrencyLimit(): number;
  uploadsInFlight(): number;
  uploadsMax(): number;
  uploadQueueLength(): number;
  uploadBacklogBytes(): number;
  sessionsActive(): number;
  resultCacheMemoryBytes(): number;
  /** The node and its browsers, as memory shedding counts them (SHOTFLEET_MAX_MEMORY_BYTES). */
  memoryBytes(): number;
}

const zeroSources: GaugeSources = {
  saturation: () => 0,
  pagesInUse: () => 0,
  pagesMax: () => 0,
  renderQueueLength: () => 0,
  concurrencyLimit: () => 0,
  uploadsInFlight: () => 0,
  uploadsMax: () => 0,
  uploadQueueLength: () => 0,
  uploadBacklogBytes: () => 0,
  sessionsActive: () => 0,
  resultCacheMemoryBytes: () => 0,
  memoryBytes: () => process.memoryUsage.rss(),
};

/**
 * prom-client's default metrics minus the three gauges whose names end in `_total`:
 * promtool 2.42 rejects them (only counters may end in _total) and cannot be told otherwise.
 * The event loop's delay is sampled every 100 ms, not prom-client's 10 ms: at 10 ms that timer was half of an idle
 * node's CPU (30–34 against 18 ticks in 20 s, PAGES 1); a stall that matters to a render lasts longer than 100 ms.
 */
export function collectDefaultMetricsPromtoolSafe(registry: client.Registry): void {
  client.collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    registry.removeSingleMetric(name);
  }
}

const secondsBuckets = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export function createNodeMetrics() {
  const registry = new client.Registry();
  collectDefaultMetricsPromtoolSafe(registry);
  registerBuildInfo(registry, 'node');
  let sources = zeroSources;
  const gauge = (name: string, help: string, read: (s: GaugeSources) => number) =>
    new client.Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read(sources));
      },
    });

  gauge('shotfleet_saturation_ratio', 'How much of the node is in use, 0..1 (see README: saturation)', (s) => s.saturation());
  gauge('shotfleet_pages_in_use', 'Pages rendering now', (s) => s.pagesInUse());
  gauge('shotfleet_pages_max', 'Size of the page pool', (s) => s.pagesMax());
  gauge('shotfleet_render_queue_length', 'Renders waiting for a page', (s) => s.renderQueueLength());
  gauge('shotfleet_concurrency_limit', 'Renders allowed at once now (adaptive, at most pages_max)', (s) => s.concurrencyLimit());
  gauge('shotfleet_uploads_in_flight', 'S3 uploads running now', (s) => s.uploadsInFlight());
  gauge('shotfleet_uploads_max', 'Size of the upload pool', (s) => s.uploadsMax());
  gauge('shotfleet_upload_queue_length', 'Uploads waiting for the upload pool', (s) => s.uploadQueueLength());
  gauge('shotfleet_upload_backlog_bytes', 'Image bytes held in memory for uploads', (s) => s.uploadBacklogBytes());
  gauge('shotfleet_sessions_active', 'Sticky sessions holding a browser context', (s) => s.sessionsActive());
  gauge('shotfleet_memory_bytes', 'Memory of the node and its browsers, the figure memory shedding compares with SHOTFLEET_MAX_MEMORY_BYTES', (s) =>
    s.memoryBytes(),
  );

  gauge('shotfleet_result_cache_memory_bytes', "Bytes the result cache's memory tier holds (part of the node's memory)", (s) => s.resultCacheMemoryBytes());

  // Per key: the label's values are the names of the keys file (and the fixed name of requests without a key).
  let keyPages: () => Iterable<readonly [string, number]> = () => [];
  new client.Gauge({
    name: 'shotfleet_key_pages_in_use',
    help: 'Pages rendering now, by API key',
    labelNames: ['key'] as const,
    registers: [registry],
    collect() {
      // Reset first, so a key removed by a reload leaves the scrape instead of staying at its last value.
      this.reset();
      for (const [key, pages] of keyPages()) this.set({ key }, pages);
    },
  });

  return {
    registry,
    bindSources(next: Partial<GaugeSources>) {
      sources = { ...sources, ...next };
    },
    /** Pages in use for every key the node knows (0 included), read at scrape time. */
    bindKeyPages(read: () => Iterable<readonly [string, number]>) {
      keyPages = read;
    },
    keyRequestsTotal: new client.Counter({
      name: 'shotfleet_key_requests_total',
      help: 'Screenshot requests answered, by API key and HTTP status',
      labelNames: ['key', 'code'] as const,
      registers: [registry],
    }),
    shedTotal: new client.Counter({
      name: 'shotfleet_shed_total',
      help: 'Requests refused with 503 before any work, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    requestsTotal: new client.Counter({
      name: 'shotfleet_requests_total',
      help: 'Screenshot requests answered, by HTTP status',
      labelNames: ['code'] as const,
      registers: [registry],
    }),
    renderDuration: new client.Histogram({
      name: 'shotfleet_render_duration_seconds',
      help: 'Time a render held a page (navigation, waits, capture)',
      labelNames: ['format'] as const,
      buckets: secondsBuckets,
      registers: [registry],
    }),
    queueWait: new client.Histogram({
      name: 'shotfleet_queue_wait_seconds',
      help: 'Time an admitted render waited for a page',
      buckets: secondsBuckets,
      registers: [registry],
    }),
    uploadDuration: new client.Histogram({
      name: 'shotfleet_upload_duration_seconds',
      help: 'Time an upload took, retries included',
      buckets: secondsBuckets,
      registers: [registry],
    }),
    uploadFailures: new client.Counter({
      name: 'shotfleet_upload_failures_total',
      help: 'Uploads S3 did not confirm after the retries (answered 502 upload_failed); cancelled ones not counted',
      registers: [registry],
    }),
    resultCacheRequests: new client.Counter({
      name: 'shotfleet_result_cache_requests_total',
      help: 'Requests with a cacheTtl above 0, by how they were answered: hit (kept result), miss (rendered), coalesced (an identical render in flight)',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    resultCacheS3Failures: new client.Counter({
      name: 'shotfleet_result_cache_s3_failures_total',
      help: 'Result cache S3 tier calls that failed or ran out of time (answered as misses), by operation',
      labelNames: ['operation'] as const,
      registers: [registry],
    }),
    assetCacheResponses: new client.Counter({
      name: 'shotfleet_asset_cache_responses_total',
      help: "Responses to renders' http(s) requests, by where Chromium took them from (cache, network)",
      labelNames: ['source'] as const,
      registers: [registry],
    }),
    browserRestarts: new client.Counter({
      name: 'shotfleet_browser_restarts_total',
      help: 'Browsers replaced, by reason (crash, recycle)',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
  };
}

export type NodeMetrics = ReturnType<typeof createNodeMetrics>;
