import { Hono } from 'hono';
import type { NodeMetrics } from '../metrics/node-metrics.js';
import type { AppEnv } from './app-env.js';

export interface NodeStatus {
  status: 'ready' | 'starting' | 'draining' | 'no_browser';
  node: string;
  saturation: number;
  pages: { max: number; inUse: number; limit: number };
  queue: { length: number; max: number };
  uploads: { inFlight: number; max: number; queued: number; backlogBytes: number };
  sessions: number;
  shedPerSecond: number;
  renderSecondsAvg: number;
  /** Whether Chromium runs in its own sandbox (SHOTFLEET_CHROME_SANDBOX). */
  chrome: { sandbox: boolean };
}

export interface HealthSource {
  status(): NodeStatus;
}

/**
 * /status is for HAProxy's httpchk and the hub: 200 while the node can serve — busy or saturated
 * included, so a loaded node is never evicted (and its sessions never moved) — 503 once it drains or
 * has no browser. /livez only says the process answers.
 */
export function healthRoutes(deps: { health: HealthSource; metrics: NodeMetrics }) {
  const app = new Hono<AppEnv>();
  app.get('/status', (c) => {
    const status = deps.health.status();
    return c.json(status, status.status === 'ready' ? 200 : 503);
  });
  app.get('/livez', (c) => c.json({ status: 'alive' }));
  app.get('/metrics', async (c) => {
    const body = await deps.metrics.registry.metrics();
    return c.text(body, 200, { 'Content-Type': deps.metrics.registry.contentType });
  });
  return app;
}
