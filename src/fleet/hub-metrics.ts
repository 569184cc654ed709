import client from 'prom-client';
import { registerBuildInfo } from '../metrics/build-info.js';
import { collectDefaultMetricsPromtoolSafe } from '../metrics/node-metrics.js';
import type { SyncOutcome } from '../haproxy/runtime-sync.js';
import { fleetLoad } from './demand.js';
import { nodeStates } from '../api/node-states.js';
import type { NodeRecord } from './registry.js';

export interface HubMetrics {
  registry: client.Registry;
  /** Records one sync pass against one HAProxy Runtime API socket. */
  recordSync(socket: string, outcome: SyncOutcome): void;
}

/** The hub's /metrics: fleet figures computed at scrape time from the registry, and the HAProxy syncs. */
export function createHubMetrics(nodes: () => readonly NodeRecord[], targetSaturation: number): HubMetrics {
  const registry = new client.Registry();
  collectDefaultMetricsPromtoolSafe(registry);
  registerBuildInfo(registry, 'hub');
  // Only nodes in a slot take traffic: an unrouted node's idle pool says nothing about the fleet's load.
  const routed = () => nodes().filter((n) => n.slot !== undefined);
  new client.Gauge({
    name: 'shotfleet_hub_nodes',
    help: 'Tracked nodes: those in an HAProxy slot by state (up, suspect, draining), and those in none (unrouted: more nodes than SHOTFLEET_HAPROXY_SLOTS)',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      const list = nodes();
      const inSlots = list.filter((n) => n.slot !== undefined);
      for (const state of nodeStates) this.set({ state }, inSlots.filter((n) => n.state === state).length);
      this.set({ state: 'unrouted' }, list.length - inSlots.length);
    },
  });
  new client.Gauge({
    name: 'shotfleet_hub_fleet_saturation_ratio',
    help: 'Mean saturation of the up nodes, 0..1',
    registers: [registry],
    collect() {
      this.set(fleetLoad(routed(), targetSaturation).saturation);
    },
  });
  // The target itself, so alerts compare with what the hub was given instead of a copy of the number.
  new client.Gauge({
    name: 'shotfleet_hub_target_saturation_ratio',
    help: 'SHOTFLEET_TARGET_SATURATION: the fleet saturation the hub sizes the fleet for, 0..1',
    registers: [registry],
  }).set(targetSaturation);
  new client.Gauge({
    name: 'shotfleet_hub_desired_nodes',
    help: 'Nodes needed to run at SHOTFLEET_TARGET_SATURATION, counting shed demand (feed to an HPA or KEDA)',
    registers: [registry],
    collect() {
      this.set(fleetLoad(routed(), targetSaturation).desiredNodes);
    },
  });
  const syncErrors = new client.Counter({
    name: 'shotfleet_hub_haproxy_sync_errors_total',
    help: 'Sync passes against an HAProxy Runtime API socket that failed (unreachable, timed out, or a command refused)',
    labelNames: ['socket'] as const,
    registers: [registry],
  });
  const syncSeconds = new client.Histogram({
    name: 'shotfleet_hub_haproxy_sync_duration_seconds',
    help: 'Time of one sync pass against an HAProxy Runtime API socket (read its slots, send what differs)',
    labelNames: ['socket'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  return {
    registry,
    recordSync(socket, outcome) {
      syncErrors.inc({ socket }, outcome.ok ? 0 : 1);
      syncSeconds.observe({ socket }, outcome.seconds);
    },
  };
}
