import dns from 'node:dns/promises';
import net from 'node:net';
import ipaddr from 'ipaddr.js';
import type { Logger } from '../log/logger.js';
import { createRuntimeApi } from '../haproxy/runtime-api.js';
import { createRuntimeSync, type DesiredSlot, type RuntimeSync, type SyncOutcome } from '../haproxy/runtime-sync.js';
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
  /** SHOTFLEET_HAPROXY_SOCKET: every running HAProxy to keep in step through its Runtime API. */
  haproxySockets?: readonly string[];
  /** Told of every sync pass against each socket (for the hub's metrics). */
  onSync?: (socket: string, outcome: SyncOutcome) => void;
  /** Name → address; the system resolver unless a test gives its own. */
  lookup?: (host: string) => Promise<string>;
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

/** The hub's moving parts: registry, the ping rounds, and every HAProxy kept in step with both. */
export function createFleet(o: FleetOptions): Fleet {
  const lookup = o.lookup ?? systemLookup;
  // One sync per HAProxy, each with its own loop: one that is down or slow delays no other.
  const runtimes: RuntimeSync[] = (o.haproxySockets ?? []).map((socket) =>
    createRuntimeSync(createRuntimeApi(socket), o.slots, o.log.child({ haproxy: socket }), (outcome) => o.onSync?.(socket, outcome)),
  );
  const registry = new NodeRegistry(o.slots, () => onFleetChange());
  const pinging = new Set<string>();
  const pingTimeoutMs = Math.min(o.pingIntervalMs, 10_000);
  let timer: NodeJS.Timeout | undefined;
  let adoptionTimer: NodeJS.Timeout | undefined;
  let unroutedBefore = 0;

  function onFleetChange(): void {
    const unrouted = registry.unrouted().length;
    if (unrouted > 0 && unroutedBefore === 0) {
      o.log.warn(
        { unrouted, slots: o.slots, nodes: registry.list().length },
        'more nodes than HAProxy slots: the extra nodes are tracked but HAProxy does not route to them; raise SHOTFLEET_HAPROXY_SLOTS (and reload HAProxy from /haproxy.cfg)',
      );
    } else if (unrouted === 0 && unroutedBefore > 0) {
      o.log.info({ slots: o.slots }, 'every node has an HAProxy slot again');
    }
    unroutedBefore = unrouted;
    syncHaproxy();
  }

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

  function syncHaproxy(): void {
    if (runtimes.length === 0) return;
    const desired = desiredSlots();
    // Slots a previous hub filled stay as they are until their node is verified again (or never returns).
    const keep = registry.slots.adoptedSlots();
    for (const d of desired) keep.delete(d.slot);
    for (const runtime of runtimes) void runtime.sync(desired, keep);
  }

  async function ping(node: NodeRecord): Promise<void> {
    if (pinging.has(node.id)) return;
    pinging.add(node.id);
    try {
      // The address resolved (and checked) at registration, never the name again: HAProxy routes to that address.
      const result = await pingNode(node, node.address, pingTimeoutMs);
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
      const address = await resolveNodeAddress(endpoint.host, lookup);
      const known = registry.get(id);
      const node = registry.register({ id, endpoint, address, capacity });
      if (!known) o.log.info({ node: id, url: endpoint.url, address, slot: node.slot }, 'node registered');
      if (!known && node.slot === undefined) o.log.debug({ node: id, slots: o.slots }, 'no free HAProxy slot for this node; it is tracked but unrouted');
      // Verify a new (or moved) node at once rather than at the next round: that is when HAProxy gets it.
      if (!node.verified) void ping(node);
      return node;
    },
    configServers() {
      return registry
        .list()
        .filter((n) => n.slot !== undefined && n.verified)
        .sort((a, b) => a.slot! - b.slot!)
        .map((n) => ({ slot: n.slot!, host: n.address, port: n.port, maxconn: n.capacity, id: n.id, draining: n.state === 'draining' }));
    },
    async start() {
      if (runtimes.length > 0) {
        const found = await Promise.allSettled(runtimes.map((r) => r.occupiedSlots()));
        for (const [i, f] of found.entries()) {
          if (f.status === 'fulfilled') for (const [endpoint, slot] of f.value) registry.slots.adopt(endpoint, slot);
          else
            o.log.warn(
              { haproxy: o.haproxySockets![i], err: (f.reason as Error).message },
              "could not read HAProxy's slots at start; it is brought in step once it answers",
            );
        }
        // Two heartbeats: every live node has re-announced by then; what is left is gone and gets emptied.
        adoptionTimer = setTimeout(
          () => {
            registry.slots.forgetAdoptions();
            registry.placeSlots();
            onFleetChange();
          },
          2 * o.heartbeatIntervalMs + o.pingIntervalMs,
        );
        adoptionTimer.unref();
      }
      timer = setInterval(() => {
        for (const node of registry.list()) void ping(node);
        // Every round, not only on changes: an HAProxy that restarted or came back is brought in step within one round.
        syncHaproxy();
      }, o.pingIntervalMs);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      clearTimeout(adoptionTimer);
      await Promise.all(runtimes.map((r) => r.idle()));
    },
  };
}

async function systemLookup(host: string): Promise<string> {
  return (await dns.lookup(host)).address;
}

/**
 * HAProxy's Runtime API takes addresses: a node registered by name is resolved once, here, and that address
 * is what the hub pings and HAProxy routes to. Addresses no node can have (unspecified, multicast, broadcast,
 * link-local — the cloud metadata service among them) are refused.
 */
export async function resolveNodeAddress(host: string, lookup: (host: string) => Promise<string>): Promise<string> {
  let address: string;
  if (net.isIP(host)) address = host;
  else {
    try {
      address = await lookup(host);
    } catch {
      throw new TypeError(`node host "${host}" does not resolve; register with an IP address or a name the hub can resolve`);
    }
  }
  let ip = ipaddr.parse(address);
  if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress()) ip = (ip as ipaddr.IPv6).toIPv4Address();
  const range = ip.range();
  if (['unspecified', 'multicast', 'broadcast', 'linkLocal'].includes(range)) {
    throw new TypeError(`node host "${host}" is ${address}, a ${range} address no node can listen on; register the node's own address`);
  }
  return ip.toString();
}
