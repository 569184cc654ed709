/**
 * The whole stop — drain, closing pages and browsers, exit — fits in SHOTFLEET_SHUTDOWN_GRACE_MS: the orchestrator
 * kills the container at the end of its own grace, and anything still running then dies uncleanly. Closing a
 * browser whose page is stuck in a script can take seconds (puppeteer's close, then the 5 s kill bound), so the
 * drain ends early enough to leave that time, and what is still closing at the end is killed.
 */

/** The share of the grace kept for closing (a quarter, between 0.5 s and 5 s). */
export function closingReserveMs(graceMs: number): number {
  return Math.min(5000, Math.max(500, Math.floor(graceMs / 4)));
}

/** Time kept at the end of the grace for the process's own exit once everything is closed or killed. */
export const exitMarginMs = 500;

/** How long a stopped process may take to exit by itself before it is made to (within exitMarginMs). */
export const exitFallbackMs = 100;

/** Waits for `work` until `deadline` (epoch ms): true when it settled in time, false when the deadline came first. */
export async function settledBy(work: Promise<unknown> | undefined, deadline: number): Promise<boolean> {
  if (!work) return true;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([
      work.then(
        () => true,
        () => true,
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** SIGKILL for browser processes still there when the grace runs out; their helpers exit with them. */
export function killProcesses(pids: number[]): number {
  let killed = 0;
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
      killed++;
    } catch {
      // Already gone.
    }
  }
  return killed;
}
