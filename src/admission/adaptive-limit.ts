/**
 * The number of renders allowed at once, found from observed render times (TCP Vegas as adapted by Netflix's
 * concurrency-limits `VegasLimit`).
 *
 * For each finished render: `excess = inflight × (1 − baseline / renderMs)`, where `inflight` is the most
 * renders that ran at once during it and `baseline` is how long its cost class takes alone. `excess` counts
 * renders that only queued inside Chrome for CPU: on 2 cores a 4th concurrent PNG makes every render slower
 * and none faster (measured: 3.0 png/s at 2 pages, 3.1 at 4). A smoothed excess below `alpha` grows the limit by about one per round of
 * renders, above `beta` shrinks it; between, it holds. Bounds: 1 … max.
 *
 * The baseline needs a render that ran alone, which a busy node never sees; so like BBR's ProbeRTT, every
 * `probeIntervalMs` without one the limit drops to 1 until one render has run alone (about one render time
 * at reduced concurrency — well under 2 % of capacity at the default interval).
 */
export interface AdaptiveLimitOptions {
  max: number;
  now(): number;
  probeIntervalMs?: number;
}

export interface RenderSample {
  costClass: string;
  renderMs: number;
  /** The most renders in flight (this one included) at any moment while it ran. */
  peakInflight: number;
}

const smoothing = 0.25;

export function createAdaptiveLimit(opts: AdaptiveLimitOptions) {
  const probeIntervalMs = opts.probeIntervalMs ?? 30_000;
  const baselines = new Map<string, number>();
  let limit = opts.max;
  let excess = 0;
  let lastAloneAt = Number.NEGATIVE_INFINITY;

  // Tolerances in renders: fixed near the bottom where one render is a large step, proportional above.
  const alpha = () => Math.max(0.5, 0.1 * limit);
  const beta = () => Math.max(1.5, 0.3 * limit);

  return {
    /** The limit the estimate converged to (what the metric and the deadline arithmetic use). */
    estimated(): number {
      return Math.max(1, Math.floor(limit));
    },
    /** The limit admission enforces now: the estimate, or 1 while probing for a fresh baseline. */
    current(): number {
      if (opts.max > 1 && opts.now() - lastAloneAt >= probeIntervalMs) return 1;
      return Math.max(1, Math.floor(limit));
    },
    record(sample: RenderSample): void {
      const { costClass, renderMs, peakInflight } = sample;
      if (!(renderMs > 0)) return;
      const old = baselines.get(costClass);
      if (peakInflight <= 1) {
        lastAloneAt = opts.now();
        baselines.set(costClass, old === undefined ? renderMs : (old + renderMs) / 2);
        return;
      }
      if (old === undefined) return;
      if (renderMs < old) baselines.set(costClass, renderMs);
      const baseline = Math.min(old, renderMs);
      const sampleExcess = peakInflight * (1 - baseline / renderMs);
      excess += smoothing * (sampleExcess - excess);
      const appLimited = peakInflight < Math.floor(limit);
      if (excess < alpha() && !appLimited) limit = Math.min(opts.max, limit + 1 / limit);
      else if (excess > beta()) limit = Math.max(1, limit - 1 / limit);
    },
  };
}
