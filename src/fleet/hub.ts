import { serve, type ServerType } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config/load.js';
import type { Logger } from '../log/logger.js';
import { defaultSlotCount } from '../haproxy/layout.js';
import { createFleet } from './fleet.js';
import { createHubApp } from './hub-app.js';
import { createHubMetrics } from './hub-metrics.js';

export interface RunningHub {
  url: string;
  stop(): Promise<void>;
}

type HubConfig = Pick<
  Config,
  | 'HOST' | 'PORT' | 'TOKEN' | 'METRICS_TOKEN' | 'PING_INTERVAL_MS' | 'PING_FAILURES' | 'HEARTBEAT_INTERVAL_MS'
  | 'HAPROXY_SOCKET' | 'TARGET_SATURATION' | 'SESSION_COOKIE' | 'AGENT_PORT'
>;

/** Starts the registry, its ping rounds, the HAProxy sync and the HTTP API; resolves once listening. */
export async function startHub(config: HubConfig, log: Logger, slots = defaultSlotCount): Promise<RunningHub> {
  const fleet = createFleet({
    pingIntervalMs: config.PING_INTERVAL_MS,
    pingFailures: config.PING_FAILURES,
    heartbeatIntervalMs: config.HEARTBEAT_INTERVAL_MS,
    slots,
    haproxySocket: config.HAPROXY_SOCKET,
    log,
  });
  await fleet.start();
  const metrics = createHubMetrics(() => fleet.registry.list(), config.TARGET_SATURATION);
  const app = createHubApp(
    fleet,
    metrics,
    {
      token: config.TOKEN,
      metricsToken: config.METRICS_TOKEN,
      pingIntervalMs: config.PING_INTERVAL_MS,
      heartbeatIntervalMs: config.HEARTBEAT_INTERVAL_MS,
      slots,
      sessionCookie: config.SESSION_COOKIE,
      agentPort: config.AGENT_PORT,
      haproxySocket: config.HAPROXY_SOCKET,
    },
    log,
  );

  const server = await new Promise<ServerType>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: config.HOST, port: config.PORT }, () => resolve(s));
    s.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  const host = config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST === '0.0.0.0' ? '127.0.0.1' : config.HOST;
  return {
    url: `http://${host}:${port}`,
    async stop() {
      await fleet.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
    },
  };
}
