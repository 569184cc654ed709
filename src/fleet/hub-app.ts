import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type client from 'prom-client';
import { ShotError } from '../errors/shot-error.js';
import { requireToken } from '../http/auth.js';
import { answerErrors, notFound } from '../http/errors.js';
import { readJsonBody } from '../http/json-body.js';
import type { Logger } from '../log/logger.js';
import { renderHaproxyConfig } from '../haproxy/config.js';
import { maxNodePages } from '../haproxy/layout.js';
import type { Fleet } from './fleet.js';
import { type NodeEndpoint, parseNodeUrl } from './node-url.js';

export interface HubSettings {
  token?: string;
  metricsToken?: string;
  pingIntervalMs: number;
  heartbeatIntervalMs: number;
  slots: number;
  sessionCookie: string;
  agentPort?: number;
  /** SHOTFLEET_HAPROXY_SOCKET: /haproxy.cfg names one of them (the first unless ?socket= picks another). */
  haproxySockets: readonly string[];
}

const nodeIdPattern = /^[A-Za-z0-9._:@-]{1,200}$/;

/** The hub's HTTP API (README: A fleet: HAProxy and the hub). */
export function createHubApp(fleet: Fleet, metrics: client.Registry, s: HubSettings, log: Logger): Hono {
  const app = new Hono();

  app.onError(answerErrors({ unexpected: 'the hub failed to handle this request; see its log', log: () => log }));
  app.notFound(notFound('see the hub API in the README'));

  // The node's rule: the token everywhere but /livez; /metrics open unless a metrics token is set.
  app.use(requireToken({ token: s.token, metricsToken: s.metricsToken, open: ['/livez'] }));

  app.get('/livez', (c) => c.json({ status: 'alive' }));

  app.get('/metrics', async (c) => c.body(await metrics.metrics(), 200, { 'Content-Type': metrics.contentType }));

  app.post(
    '/nodes',
    bodyLimit({
      maxSize: 16 * 1024,
      onError: () => {
        throw new ShotError('payload_too_large', 'a registration body is a few bytes: {"url","id"?}');
      },
    }),
    async (c) => {
      // biome-ignore lint/suspicious/noExplicitAny: checked field by field below
      const body: any = await readJsonBody(c, 'the registration');
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        throw new ShotError('invalid_request', 'the body must be a JSON object like {"url":"http://10.0.0.5:3000"}');
      }
      let endpoint: NodeEndpoint;
      try {
        endpoint = parseNodeUrl(body.url);
      } catch (err) {
        throw new ShotError('invalid_request', (err as Error).message, { field: 'url' });
      }
      const id = body.id ?? `${endpoint.host}:${endpoint.port}`;
      if (typeof id !== 'string' || !nodeIdPattern.test(id)) {
        throw new ShotError('invalid_request', 'id must be 1–200 characters of letters, digits and . _ : @ -', { field: 'id' });
      }
      const capacity = body.capacity ?? 1;
      if (!Number.isInteger(capacity) || capacity < 1 || capacity > maxNodePages) {
        throw new ShotError('invalid_request', 'capacity must be a whole number of pages ≥ 1', { field: 'capacity' });
      }
      try {
        await fleet.register({ id, endpoint, capacity });
      } catch (err) {
        if (err instanceof TypeError) throw new ShotError('invalid_request', err.message, { field: 'url' });
        throw err;
      }
      return c.json({ id, pingIntervalMs: s.pingIntervalMs, heartbeatIntervalMs: s.heartbeatIntervalMs });
    },
  );

  app.delete('/nodes/:id', (c) => {
    const id = c.req.param('id');
    if (!fleet.registry.remove(id)) throw new ShotError('not_found', `no node "${id}" is registered`);
    log.info({ node: id }, 'node deregistered');
    return c.json({ id, removed: true });
  });

  app.get('/nodes', (c) =>
    c.json(
      fleet.registry.list().map((n) => ({
        id: n.id,
        url: n.url,
        state: n.state,
        saturation: n.status?.saturation ?? 0,
        lastSeen: new Date(n.lastSeen).toISOString(),
        failures: n.failures,
        // null: more nodes than SHOTFLEET_HAPROXY_SLOTS, and HAProxy does not route to this one.
        slot: n.slot ?? null,
        routed: n.slot !== undefined,
      })),
    ),
  );

  app.get('/haproxy.cfg', (c) => {
    // Each HAProxy gets its own admin socket line; only sockets the hub syncs can be named.
    const socket = c.req.query('socket') ?? s.haproxySockets[0];
    if (socket !== undefined && !s.haproxySockets.includes(socket)) {
      throw new ShotError(
        'invalid_request',
        `socket must be one of the hub's SHOTFLEET_HAPROXY_SOCKET entries: ${s.haproxySockets.join(', ') || '(none set)'}`,
        { field: 'socket' },
      );
    }
    try {
      const text = renderHaproxyConfig({
        slots: s.slots,
        servers: fleet.configServers(),
        bind: c.req.query('bind') ?? ':8080',
        statsBind: c.req.query('stats') ?? '127.0.0.1:8404',
        sessionCookie: s.sessionCookie,
        agentPort: s.agentPort,
        runtimeSocket: socket,
        defaultMaxconn: 2,
      });
      return c.body(text, 200, { 'Content-Type': 'text/plain; charset=utf-8' });
    } catch (err) {
      throw new ShotError('invalid_request', (err as Error).message);
    }
  });

  return app;
}
