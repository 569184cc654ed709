/**
 * Fixed server slots. A node keeps its slot for as long as it is known, because HAProxy places a server on
 * the consistent-hash ring by its id: moving a node to another slot would move its sessions. The first choice
 * is derived from the node id, so a restarted hub (or `haproxy-config --nodes`) lands on the same slots.
 */
export class SlotTable {
  private readonly byId = new Map<string, number>();
  private readonly taken = new Map<number, string>();
  /** "address:port" → slot a running HAProxy already routes to that address, adopted by the next node there. */
  private readonly adopted = new Map<string, number>();

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`slot count must be a whole number ≥ 1, got ${size}`);
  }

  /** Remember where a running HAProxy already sends traffic, so nodes found there keep their slot. */
  adopt(endpoint: string, slot: number): void {
    if (slot >= 1 && slot <= this.size) this.adopted.set(endpoint, slot);
  }

  /** The node's slot, assigning one on first sight; undefined when every slot is taken. */
  assign(id: string, endpoint?: string): number | undefined {
    const current = this.byId.get(id);
    if (current !== undefined) return current;
    const slot = this.pick(id, endpoint);
    if (slot === undefined) return undefined;
    this.byId.set(id, slot);
    this.taken.set(slot, id);
    return slot;
  }

  release(id: string): void {
    const slot = this.byId.get(id);
    if (slot === undefined) return;
    this.byId.delete(id);
    this.taken.delete(slot);
  }

  /** Slots found in use at start, until forgetAdoptions(). */
  adoptedSlots(): Set<number> {
    return new Set(this.adopted.values());
  }

  /** Once every node had its chance to re-announce, adopted slots are free for anyone. */
  forgetAdoptions(): void {
    this.adopted.clear();
  }

  slotOf(id: string): number | undefined {
    return this.byId.get(id);
  }

  private pick(id: string, endpoint?: string): number | undefined {
    const adopted = endpoint === undefined ? undefined : this.adopted.get(endpoint);
    if (adopted !== undefined && !this.taken.has(adopted)) return adopted;
    const reserved = new Set(this.adopted.values());
    const start = preferredSlot(id, this.size);
    // First pass leaves adopted slots to the nodes HAProxy already knows there; second pass takes anything free.
    for (const skipReserved of [true, false]) {
      for (let i = 0; i < this.size; i++) {
        const slot = ((start - 1 + i) % this.size) + 1;
        if (this.taken.has(slot) || (skipReserved && reserved.has(slot))) continue;
        return slot;
      }
    }
    return undefined;
  }
}

/** 1-based slot from a 32-bit FNV-1a hash of the id. */
export function preferredSlot(id: string, size: number): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(id, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return (hash % size) + 1;
}
