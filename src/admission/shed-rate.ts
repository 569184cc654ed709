const windowSeconds = 10;

/** Refusals per second over the last ten seconds, from one counter per second (no per-event storage). */
export function createShedRate(now: () => number) {
  const counts = new Array<number>(windowSeconds).fill(0);
  const stamps = new Array<number>(windowSeconds).fill(-1);

  return {
    add(): void {
      const second = Math.floor(now() / 1000);
      const slot = second % windowSeconds;
      if (stamps[slot] !== second) {
        stamps[slot] = second;
        counts[slot] = 0;
      }
      counts[slot]++;
    },
    perSecond(): number {
      const second = Math.floor(now() / 1000);
      let total = 0;
      for (let i = 0; i < windowSeconds; i++) if (stamps[i] > second - windowSeconds) total += counts[i];
      return total / windowSeconds;
    },
  };
}
