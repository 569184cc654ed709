import client from 'prom-client';
import { registerBuildInfo } from '../metrics/build-info.js';
import { collectDefaultMetricsPromtoolSafe } from '../metrics/node-metrics.js';
import { fleetLoad } from './demand.js';
import { nodeStates, type NodeRecord } from './registry.js';

/** The hub's /metrics: fleet figures computed at scrape time from the registry. */
export function createHubMetrics(nodes: () => readonly NodeRecord[], targetSaturation: number): client.Registry {
  const registry = new client.Registry();
  collectDefaultMetricsPromtoolSafe(registry);
  registerBuildInfo(registry, 'hub');
  new client.Gauge({
    name: 'shotfleet_hub_nodes',
    help: 'Registered nodes by state (up, suspect, draining)',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      const list = nodes();
      for (const state of nodeStates) this.set({ state }, list.filter((n) => n.state === state).length);
    },
  });
  new client.Gauge({
    name: 'shotfleet_hub_fleet_saturation_ratio',
    help: 'Mean saturation of the up nodes, 0..1',
    registers: [registry],
    collect() {
      this.set(fleetLoad(nodes(), targetSaturation).saturation);
    },
  });
  new client.Gauge({
    name: 'shotfleet_hub_desired_nodes',
    help: 'Nodes needed to run at SHOTFLEET_TARGET_SATURATION, counting shed demand (feed to an HPA or KEDA)',
    registers: [registry],
    collect() {
      this.set(fleetLoad(nodes(), targetSaturation).desiredNodes);
    },
  });
  return registry;
}
