import type { NodeRecord } from './registry.js';

export interface FleetLoad {
  upNodes: number;
  /** Mean of the up nodes' saturation, 0..1. */
  saturation: number;
  /** Pages the fleet would need busy right now: busy pages plus shed work, in page-seconds per second. */
  demandPages: number;
  desiredNodes: number;
}

/**
 * desired = ceil(Σ(saturation × pages + shedPerSecond × renderSecondsAvg) ÷ (mean pages × target)).
 * Without shedding this is the documented ceil(up × mean saturation ÷ target); the shed term counts the work
 * a saturated fleet turned away, which a usage gauge stuck at 100 % cannot show.
 */
export function fleetLoad(nodes: readonly NodeRecord[], targetSaturation: number): FleetLoad {
  const up = nodes.filter((n) => n.state === 'up' && n.status);
  if (up.length === 0) return { upNodes: 0, saturation: 0, demandPages: 0, desiredNodes: 0 };
  let saturation = 0;
  let demand = 0;
  let pages = 0;
  for (const n of up) {
    const s = n.status!;
    const nodePages = s.pagesMax || n.capacity;
    saturation += s.saturation;
    pages += nodePages;
    demand += s.saturation * nodePages + s.shedPerSecond * s.renderSecondsAvg;
  }
  const meanPages = pages / up.length;
  // The epsilon keeps float noise (2.0000000001) from asking for a whole extra node.
  const desired = Math.ceil(demand / (meanPages * targetSaturation) - 1e-9);
  return { upNodes: up.length, saturation: saturation / up.length, demandPages: demand, desiredNodes: Math.max(0, desired) };
}
