import { serve, type ServerType } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { ConfigError, type Config } from '../config/load.js';
import { isLoopbackHost } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { createFleet, type FleetOptions } from './fleet.js';
import { createHubApp } from './hub-app.js';
import { createHubMetrics } from './hub-metrics.js';

export interface RunningHub {
  url: string;
  stop(): Promise<void>;
}

export type HubConfig = Pick<
  Config,
  | 'HOST'
  | 'PORT'
  | 'HUB_TOKEN'
  | 'METRICS_TOKEN'
  | 'PING_INTERVAL_MS'
  | 'PING_FAILURES'
  | 'HEARTBEAT_INTERVAL_MS'
  | 'HAPROXY_SOCKET'
  | 'HAPROXY_SLOTS'
  | 'TARGET_SATURATION'
  | 'SESSION_COOKIE'
  | 'AGENT_PORT'
>;

/**
 * Anyone who can POST /nodes decides where HAProxy sends clients' requests (with their cookies and tokens),
 * so a hub reachable from the network must have a token.
 */
export function checkHubExposure(config: Pick<HubConfig, 'HOST' | 'HUB_TOKEN'>): void {
  if (config.HUB_TOKEN || isLoopbackHost(config.HOST)) return;
  throw new ConfigError(
    `the hub would listen on ${config.HOST} with no token: anyone who reaches it could add a backend to HAProxy.\n` +
      '  Set SHOTFLEET_HUB_TOKEN (--hub-token) or SHOTFLEET_TOKEN (--token), or listen on loopback only with SHOTFLEET_HOST=127.0.0.1 (--host).',
  );
}

/** Starts the registry, its ping rounds, the HAProxy sync and the HTTP API; resolves once listening. */
export async function startHub(config: HubConfig, log: Logger, test: Pick<FleetOptions, 'lookup'> = {}): Promise<RunningHub> {
  checkHubExposure(config);
  let metrics: ReturnType<typeof createHubMetrics> | undefined;
  const fleet = createFleet({
    pingIntervalMs: config.PING_INTERVAL_MS,
    pingFailures: config.PING_FAILURES,
    heartbeatIntervalMs: config.HEARTBEAT_INTERVAL_MS,
    slots: config.HAPROXY_SLOTS,
    haproxySockets: config.HAPROXY_SOCKET,
    onSync: (socket, outcome) => metrics?.recordSync(socket, outcome),
    lookup: test.lookup,
    log,
  });
  metrics = createHubMetrics(() => fleet.registry.list(), config.TARGET_SATURATION);
  await fleet.start();
  const app = createHubApp(
    fleet,
    metrics.registry,
    {
      token: config.HUB_TOKEN,
      metricsToken: config.METRICS_TOKEN,
      pingIntervalMs: config.PING_INTERVAL_MS,
      heartbeatIntervalMs: config.HEARTBEAT_INTERVAL_MS,
      slots: config.HAPROXY_SLOTS,
      sessionCookie: config.SESSION_COOKIE,
      agentPort: config.AGENT_PORT,
      haproxySockets: config.HAPROXY_SOCKET ?? [],
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
