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
};

/**
 * prom-client's default metrics minus the three gauges whose names end in `_total`:
 * promtool 2.42 rejects them (only counters may end in _total) and cannot be told otherwise.
 */
export function collectDefaultMetricsPromtoolSafe(registry: client.Registry): void {
  client.collectDefaultMetrics({ register: registry });
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

  return {
    registry,
    bindSources(next: Partial<GaugeSources>) {
      sources = { ...sources, ...next };
    },
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
