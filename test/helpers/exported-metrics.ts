import { createHubMetrics } from '../../src/fleet/hub-metrics.js';
import { createNodeMetrics } from '../../src/metrics/node-metrics.js';

/**
 * Every series name a node or hub exports, read from their real registries (a histogram's `_bucket`, `_sum`
 * and `_count` included), so a dashboard or alert that names a metric nobody exports is caught.
 */
export async function exportedMetricNames(): Promise<Set<string>> {
  const registries = [createNodeMetrics().registry, createHubMetrics(() => [], 0.7).registry];
  const names = new Set<string>();
  for (const registry of registries) {
    for (const metric of await registry.getMetricsAsJSON()) {
      names.add(metric.name);
      if (String(metric.type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(metric.name + suffix);
    }
  }
  return names;
}

/** Metric names a PromQL expression names: ours and the process metrics beside them. */
export function metricNamesIn(expr: string): string[] {
  return [...new Set(expr.match(/\b(?:shotfleet|process|nodejs)_[a-zA-Z0-9_]+/g) ?? [])];
}
