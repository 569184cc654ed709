import type { Logger } from '../log/logger.js';

export interface Membership {
  /** Stops heartbeats and deregisters from every hub (DELETE /nodes/:id), in bounded time; never throws. */
  stop(): Promise<void>;
}

export interface MembershipOptions {
  /** SHOTFLEET_HUB_URL: one hub, or several (a list, or a comma list in one string). */
  hubUrl: string | readonly string[];
  /** SHOTFLEET_HUB_TOKEN (which defaults to SHOTFLEET_TOKEN): the hubs refuse a registration without it. */
  token?: string;
  nodeId: string;
  advertiseUrl: string;
  capacity: number;
  heartbeatIntervalMs: number;
  log: Logger;
}

const deregisterTimeoutMs = 2000;

/**
 * Keeps this node registered with every hub in its list, each on its own schedule: a hub that is down or slow
 * delays no other. Hubs keep no state a heartbeat cannot rebuild, so any number can run side by side.
 */
export function startMembership(o: MembershipOptions): Membership {
  const hubs = (typeof o.hubUrl === 'string' ? o.hubUrl.split(',') : o.hubUrl).map((u) => u.trim().replace(/\/+$/, '')).filter(Boolean);
  const members = [...new Set(hubs)].map((base) => startHubMembership(base, o));
  return {
    async stop() {
      await Promise.all(members.map((m) => m.stop()));
    },
  };
}

/**
 * One hub: registers at once, re-posts every heartbeat (a restarted hub relearns the fleet that way), and
 * retries a hub that is down with backoff. Nothing here can stop the node.
 */
function startHubMembership(base: string, o: MembershipOptions): Membership {
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  if (o.token) headers.Authorization = `Bearer ${o.token}`;
  const body = JSON.stringify({ url: o.advertiseUrl, id: o.nodeId, capacity: o.capacity });
  const requestTimeoutMs = Math.max(1000, Math.min(o.heartbeatIntervalMs, 5000));
  const firstRetryMs = Math.min(500, o.heartbeatIntervalMs);

  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let inFlight: AbortController | undefined;
  let failures = 0;
  let registeredOnce = false;

  async function announce(): Promise<void> {
    inFlight = new AbortController();
    const signal = AbortSignal.any([inFlight.signal, AbortSignal.timeout(requestTimeoutMs)]);
    let delay = o.heartbeatIntervalMs;
    try {
      const res = await fetch(`${base}/nodes`, { method: 'POST', headers, body, signal });
      await res.body?.cancel();
      if (!res.ok) {
        throw new Error(
          res.status === 401
            ? 'the hub refused our token (401): give node and hub the same SHOTFLEET_HUB_TOKEN (or SHOTFLEET_TOKEN)'
            : `hub answered HTTP ${res.status}`,
        );
      }
      if (failures > 0) o.log.info({ hub: base, after: failures }, 'registered with the hub again');
      else if (!registeredOnce) o.log.info({ hub: base, id: o.nodeId, url: o.advertiseUrl }, 'registered with the hub');
      registeredOnce = true;
      failures = 0;
    } catch (err) {
      if (stopped) return;
      failures++;
      // Backoff from half a second up to one heartbeat: a hub that comes back learns of us quickly.
      delay = Math.min(o.heartbeatIntervalMs, firstRetryMs * 2 ** (failures - 1));
      const log = failures === 1 || failures % 10 === 0 ? o.log.warn.bind(o.log) : o.log.debug.bind(o.log);
      log({ hub: base, failures, retryInMs: delay, err: (err as Error).message }, 'could not reach the hub; serving anyway and retrying');
    } finally {
      inFlight = undefined;
    }
    if (!stopped) {
      timer = setTimeout(() => void announce(), delay);
      timer.unref();
    }
  }

  void announce();

  return {
    async stop() {
      if (stopped) return;
      stopped = true;
      clearTimeout(timer);
      inFlight?.abort();
      try {
        const res = await fetch(`${base}/nodes/${encodeURIComponent(o.nodeId)}`, {
          method: 'DELETE',
          headers,
          signal: AbortSignal.timeout(deregisterTimeoutMs),
        });
        await res.body?.cancel();
        if (res.ok || res.status === 404) o.log.info({ hub: base }, 'deregistered from the hub');
        else o.log.warn({ hub: base, status: res.status }, 'the hub refused deregistration; it will drop this node after its failed pings');
      } catch (err) {
        o.log.warn({ hub: base, err: (err as Error).message }, 'could not deregister; the hub will drop this node after its failed pings');
      }
    },
  };
}
