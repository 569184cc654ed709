/** How much a new sample moves an estimate: recent renders matter most, one outlier does not dominate. */
const weight = 0.2;
/** Classes are bucketed by the caller; this bound only keeps a caller's mistake from growing the table forever. */
const maxClasses = 256;

/**
 * Running estimates (EWMA) of how long a render holds a page, per cost class ("png:1280x800") and overall.
 * Measured under whatever concurrency the node runs at, so they already include CPU contention.
 */
export function createRenderEstimates() {
  const byClass = new Map<string, number>();
  let overall = 0;
  let samples = 0;
  const move = (old: number | undefined, sample: number) => (old === undefined ? sample : old + weight * (sample - old));

  return {
    record(costClass: string, renderMs: number): void {
      const old = byClass.get(costClass);
      if (old === undefined && byClass.size >= maxClasses) byClass.delete(byClass.keys().next().value!);
      byClass.set(costClass, move(old, renderMs));
      overall = move(samples === 0 ? undefined : overall, renderMs);
      samples++;
    },
    /** The class's estimate, else the overall one; undefined before the first render finished. */
    forClass(costClass: string): number | undefined {
      return byClass.get(costClass) ?? (samples > 0 ? overall : undefined);
    },
    /** Overall estimate in ms, 0 before any render finished. */
    overall(): number {
      return overall;
    },
  };
}
