/**
 * Fixed server slots. HAProxy places a server on the consistent-hash ring by its id (the slot), so where a
 * node sits decides which sessions hash to it. The placement is a function of the set of node ids alone — not
 * of the order nodes arrived in — so every hub that sees the same nodes (a restarted one, one running side by
 * side, `haproxy-config --nodes`) puts each node in the same slot, and two HAProxy instances hash a session
 * cookie to the same node.
 *
 * Nodes take slots in rank order (a hash of the id), each the first free slot from its preferred one
 * (linear probing). A node joins without moving anyone unless it outranks a node on its probe path, which is
 * rare while slots outnumber nodes by a wide margin. With more nodes than slots the lowest-ranked ones get
 * none: they are tracked but unrouted.
 */
export function assignSlots(ids: Iterable<string>, size: number, reserved: ReadonlySet<number> = new Set()): Map<string, number | undefined> {
  if (!Number.isInteger(size) || size < 1) throw new Error(`slot count must be a whole number ≥ 1, got ${size}`);
  const ranked = [...new Set(ids)].map((id) => ({ id, hash: fnv1a(id) })).sort((a, b) => a.hash - b.hash || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const taken = new Set<number>([...reserved].filter((s) => s >= 1 && s <= size));
  const result = new Map<string, number | undefined>();
  for (const { id, hash } of ranked) {
    let slot: number | undefined;
    if (taken.size < size) {
      const start = hash % size;
      for (let i = 0; i < size; i++) {
        const candidate = ((start + i) % size) + 1;
        if (!taken.has(candidate)) {
          slot = candidate;
          break;
        }
      }
    }
    if (slot !== undefined) taken.add(slot);
    result.set(id, slot);
  }
  return result;
}

/** 1-based slot a node gets when nothing is in its way. */
export function preferredSlot(id: string, size: number): number {
  return (fnv1a(id) % size) + 1;
}

/** 32-bit FNV-1a of the id's UTF-8 bytes. */
function fnv1a(id: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(id, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/**
 * The hub's slot table: the placement above, plus the slots a running HAProxy already routed to when the hub
 * started. Until the nodes there re-announce (or the adoption window closes) those slots stay reserved, so a
 * restarted hub does not hand a slot to one node while HAProxy still sends another's sessions there.
 */
export class SlotTable {
  /** "address:port" → slot a running HAProxy routes to that address. */
  private readonly adopted = new Map<string, number>();

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`slot count must be a whole number ≥ 1, got ${size}`);
  }

  adopt(endpoint: string, slot: number): void {
    if (slot >= 1 && slot <= this.size) this.adopted.set(endpoint, slot);
  }

  /** Slots found in use at start, until forgetAdoptions(). */
  adoptedSlots(): Set<number> {
    return new Set(this.adopted.values());
  }

  forgetAdoptions(): void {
    this.adopted.clear();
  }

  /** Every node's slot (undefined: unrouted). Adopted slots whose endpoint no node holds yet stay reserved. */
  place(nodes: readonly { id: string; endpoint: string }[]): Map<string, number | undefined> {
    const present = new Set(nodes.map((n) => n.endpoint));
    const reserved = new Set([...this.adopted].filter(([endpoint]) => !present.has(endpoint)).map(([, slot]) => slot));
    return assignSlots(
      nodes.map((n) => n.id),
      this.size,
      reserved,
    );
  }
}
