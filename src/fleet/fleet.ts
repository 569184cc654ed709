import dns from 'node:dns/promises';
import net from 'node:net';
import type { Logger } from '../log/logger.js';
import { createRuntimeApi } from '../haproxy/runtime-api.js';
import { createRuntimeSync, type DesiredSlot, type RuntimeSync } from '../haproxy/runtime-sync.js';
import type { SlotServer } from '../haproxy/config.js';
import type { NodeEndpoint } from './node-url.js';
import { pingNode } from './node-status.js';
import { NodeRegistry, type NodeRecord } from './registry.js';

export interface FleetOptions {
  pingIntervalMs: number;
  pingFailures: number;
  /** Nodes re-announce this often: how long a restarted hub leaves HAProxy's existing slots alone. */
  heartbeatIntervalMs: number;
  slots: number;
  /** SHOTFLEET_HAPROXY_SOCKET: keep a running HAProxy in step through its Runtime API. */
  haproxySocket?: string;
  log: Logger;
}

export interface Fleet {
  registry: NodeRegistry;
  register(input: { id: string; endpoint: NodeEndpoint; capacity: number }): Promise<NodeRecord>;
  /** The nodes the generated config lists: verified ones, in their slots. */
  configServers(): SlotServer[];
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** The hub's moving parts: registry, the ping rounds, and HAProxy kept in step with both. */
export function createFleet(o: FleetOptions): Fleet {
  const runtime: RuntimeSync | undefined = o.haproxySocket ? createRuntimeSync(createRuntimeApi(o.haproxySocket), o.slots, o.log) : undefined;
  const registry = new NodeRegistry(o.slots, () => void syncHaproxy());
  const pinging = new Set<string>();
  const pingTimeoutMs = Math.min(o.pingIntervalMs, 10_000);
  let timer: NodeJS.Timeout | undefined;
  let syncing: Promise<void> = Promise.resolve();
  let adoptionTimer: NodeJS.Timeout | undefined;

  function desiredSlots(): DesiredSlot[] {
    return registry
      .list()
      .filter((n) => n.slot !== undefined && n.verified)
      .map((n) => ({
        slot: n.slot!,
        address: n.address,
        port: n.port,
        maxconn: n.capacity,
        state: n.state === 'draining' ? 'drain' : 'ready',
      }));
  }

  function syncHaproxy(): Promise<void> {
    if (!runtime) return Promise.resolve();
    const desired = desiredSlots();
    // Slots a previous hub filled stay as they are until their node is verified again (or never returns).
    const keep = registry.slots.adoptedSlots();
    for (const d of desired) keep.delete(d.slot);
    syncing = runtime.sync(desired, keep);
    return syncing;
  }

  async function ping(node: NodeRecord): Promise<void> {
    if (pinging.has(node.id)) return;
    pinging.add(node.id);
    try {
      const result = await pingNode(node.url, pingTimeoutMs);
      if (registry.get(node.id) !== node) return; // removed or replaced while we waited
      if (!result.ok || result.status.status === 'no_browser') {
        o.log.warn({ node: node.id, url: node.url, failures: node.failures + 1, reason: result.ok ? 'no_browser' : result.reason }, 'node ping failed');
      }
      registry.recordPing(node.id, result, o.pingFailures);
      if (!registry.get(node.id)) o.log.warn({ node: node.id, url: node.url }, `node removed after ${o.pingFailures} failed pings`);
    } finally {
      pinging.delete(node.id);
    }
  }

  return {
    registry,
    async register({ id, endpoint, capacity }) {
      const address = await resolve(endpoint.host);
      const known = registry.get(id);
      const node = registry.register({ id, endpoint, address, capacity });
      if (!known) o.log.info({ node: id, url: endpoint.url, slot: node.slot }, 'node registered');
      if (node.slot === undefined) o.log.warn({ node: id, slots: o.slots }, 'no free HAProxy slot for this node; it is tracked but HAProxy will not route to it');
      // Verify a new (or moved) node at once rather than at the next round: that is when HAProxy gets it.
      if (!node.verified) void ping(node);
      return node;
    },
    configServers() {
      return registry
        .list()
        .filter((n) => n.slot !== undefined && n.verified)
        .map((n) => ({ slot: n.slot!, host: n.address, port: n.port, maxconn: n.capacity, id: n.id, draining: n.state === 'draining' }));
    },
    async start() {
      if (runtime) {
        try {
          for (const [endpoint, slot] of await runtime.occupiedSlots()) registry.slots.adopt(endpoint, slot);
          // Two heartbeats: every live node has re-announced by then; what is left is gone and gets emptied.
          adoptionTimer = setTimeout(() => {
            registry.slots.forgetAdoptions();
            void syncHaproxy();
          }, 2 * o.heartbeatIntervalMs + o.pingIntervalMs);
          adoptionTimer.unref();
        } catch (err) {
          o.log.warn({ err: (err as Error).message }, 'could not read HAProxy\'s slots at start; nodes may move to other slots');
        }
      }
      timer = setInterval(() => {
        for (const node of registry.list()) void ping(node);
        // Every round, not only on changes: a restarted HAProxy is brought back in step within one round.
        void syncHaproxy();
      }, o.pingIntervalMs);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      clearTimeout(adoptionTimer);
      await syncing.catch(() => undefined);
    },
  };
}

/** HAProxy's Runtime API takes addresses: a node registered by name is resolved once, here. */
async function resolve(host: string): Promise<string> {
  if (net.isIP(host)) return host;
  try {
    return (await dns.lookup(host)).address;
  } catch {
    throw new TypeError(`node host "${host}" does not resolve; register with an IP address or a name the hub can resolve`);
  }
}
