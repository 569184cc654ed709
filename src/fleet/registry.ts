import type { NodeState } from '../api/node-states.js';
import { SlotTable } from '../haproxy/slots.js';
import type { NodeEndpoint } from './node-url.js';
import type { NodeStatus, PingResult } from './node-status.js';

export interface NodeRecord extends NodeEndpoint {
  id: string;
  /** IP the host resolved to, for HAProxy's Runtime API (which takes addresses, not names). */
  address: string;
  /** Pool size announced at registration; replaced by /status pages.max once pinged. */
  capacity: number;
  /** New nodes are suspect until their first good ping, and HAProxy gets them only then. */
  state: NodeState;
  /** At least one ping answered "ready": HAProxy may route to it. */
  verified: boolean;
  failures: number;
  lastSeen: number;
  slot: number | undefined;
  status: NodeStatus | undefined;
}

export interface Registration {
  id: string;
  endpoint: NodeEndpoint;
  address: string;
  capacity: number;
}

/** The hub's view of the fleet: who is there, how they answered, and which HAProxy slot each holds. */
export class NodeRegistry {
  private readonly nodes = new Map<string, NodeRecord>();
  readonly slots: SlotTable;

  constructor(
    slotCount: number,
    private readonly onChange: () => void,
    private readonly now = Date.now,
  ) {
    this.slots = new SlotTable(slotCount);
  }

  /** Registration and heartbeat alike. A node that moved to another URL keeps its slot. */
  register(r: Registration): NodeRecord {
    // Another id at the same URL is a restarted node that picked a new id: the old entry is gone for good.
    for (const other of this.nodes.values()) {
      if (other.id !== r.id && other.url === r.endpoint.url) this.remove(other.id);
    }
    const known = this.nodes.get(r.id);
    if (known) {
      const moved = known.url !== r.endpoint.url || known.address !== r.address;
      Object.assign(known, r.endpoint, { address: r.address, lastSeen: this.now() });
      if (!known.status) known.capacity = r.capacity;
      if (moved) {
        known.verified = false;
        known.state = 'suspect';
        this.placeSlots();
        this.onChange();
      }
      return known;
    }
    const record: NodeRecord = {
      ...r.endpoint,
      id: r.id,
      address: r.address,
      capacity: r.capacity,
      state: 'suspect',
      verified: false,
      failures: 0,
      lastSeen: this.now(),
      slot: undefined,
      status: undefined,
    };
    this.nodes.set(r.id, record);
    this.placeSlots();
    this.onChange();
    return record;
  }

  remove(id: string): boolean {
    if (!this.nodes.delete(id)) return false;
    this.placeSlots();
    this.onChange();
    return true;
  }

  /** Nodes tracked without a slot: HAProxy does not route to them. */
  unrouted(): NodeRecord[] {
    return this.list().filter((n) => n.slot === undefined);
  }

  /** Recomputes every node's slot from the current set (adopted slots reserved); call after the set changes. */
  placeSlots(): void {
    const placed = this.slots.place(this.list().map((n) => ({ id: n.id, endpoint: `${n.address}:${n.port}` })));
    for (const node of this.nodes.values()) node.slot = placed.get(node.id);
  }

  get(id: string): NodeRecord | undefined {
    return this.nodes.get(id);
  }

  list(): NodeRecord[] {
    return [...this.nodes.values()];
  }

  /** Applies one ping's outcome; after `maxFailures` failures in a row the node is removed. */
  recordPing(id: string, result: PingResult, maxFailures: number): void {
    const node = this.nodes.get(id);
    if (!node) return;
    const before = `${node.state}/${node.verified}/${node.capacity}`;
    const answeredReady = result.ok && result.status.status === 'ready';
    const answeredDraining = result.ok && result.status.status === 'draining';
    if (answeredReady || answeredDraining) {
      node.status = result.status;
      if (result.status.pagesMax > 0) node.capacity = result.status.pagesMax;
      node.failures = 0;
      node.lastSeen = this.now();
      node.state = answeredReady ? 'up' : 'draining';
      node.verified ||= answeredReady;
    } else {
      // No answer, or an answer that says it cannot serve (no browser): both count towards removal.
      node.failures++;
      node.state = 'suspect';
      if (node.failures >= maxFailures) {
        this.remove(id);
        return;
      }
    }
    if (`${node.state}/${node.verified}/${node.capacity}` !== before) this.onChange();
  }
}
