import type http from 'node:http';

export interface HttpLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  maxConnections: number;
}

/**
 * Node's defaults (60 s for the headers, 300 s for a whole request, no connection cap) let a few slow or idle
 * clients hold sockets for minutes. Behind HAProxy a request arrives whole in milliseconds, so the bounds can
 * be tight. keepAliveTimeout stays above HAProxy's default keep-alive (so HAProxy closes first and never
 * reuses a socket the node is closing). Node checks the two request timeouts only every
 * connectionsCheckingInterval (30 s by default): it is brought down to match them.
 */
export function httpServerOptions(limits: HttpLimits): http.ServerOptions {
  return {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: 65_000,
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4))),
  };
}

/** Past the cap a new connection is closed at once: HAProxy counts it a connection failure and retries elsewhere. */
export function capConnections(server: http.Server, limits: HttpLimits): void {
  server.maxConnections = limits.maxConnections;
}
