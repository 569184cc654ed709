import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { ShotError } from '../errors/shot-error.js';
import { requireToken, type KeySource } from '../http/auth.js';
import { answerErrors, notFound } from '../http/errors.js';
import type { KeyLimits } from '../keys/key-limits.js';
import { noKeyName } from '../keys/key-set.js';
import type { Logger } from '../log/logger.js';
import type { NodeMetrics } from '../metrics/node-metrics.js';
import { apiDescriptionPaths, apiRoutes } from './api-routes.js';
import type { AppEnv } from './app-env.js';
import { enforceKeyLimits } from './enforce-key-limits.js';
import { healthRoutes, type HealthSource } from './health-routes.js';
import { screenshotRoutes, type ScreenshotRouteDeps } from './screenshot-routes.js';

export interface AppDeps extends ScreenshotRouteDeps {
  nodeId: string;
  /** The API keys (SHOTFLEET_KEYS_FILE, SHOTFLEET_TOKEN as `default`); none required when empty. */
  keys: KeySource;
  keyLimits: KeyLimits;
  metricsToken?: string;
  signingKey?: string;
  maxBodyBytes: number;
  log: Logger;
  metrics: NodeMetrics;
  health: HealthSource;
  /** True once the node drains: every answer then closes its connection (see below). */
  draining?(): boolean;
}

/** The node's HTTP surface: request id and log line, node header, auth, body cap, JSON errors, routes. */
export function createApp(deps: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.use(async (c, next) => {
    const requestId = c.req.header('x-request-id')?.slice(0, 128) || randomUUID();
    const log = deps.log.child({ requestId });
    c.set('requestId', requestId);
    c.set('log', log);
    const started = performance.now();
    await next();
    c.header('X-Shotfleet-Node', deps.nodeId);
    c.header('X-Request-Id', requestId);
    // A draining node closes each connection once its answer is sent: a keep-alive socket left idle after the
    // close began would hold the node's exit for keepAliveTimeout (65 s), past its grace. (Cutting idle sockets
    // from outside instead truncated answers still on their way to slow clients.)
    if (deps.draining?.()) c.header('Connection', 'close');
    if (c.req.path === '/screenshot') {
      deps.metrics.requestsTotal.inc({ code: String(c.res.status) });
      deps.metrics.keyRequestsTotal.inc({ key: c.get('client')?.name ?? noKeyName, code: String(c.res.status) });
    }
    if (c.req.path !== '/status' && c.req.path !== '/livez' && c.req.path !== '/metrics') {
      log.info({ method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(performance.now() - started) }, 'request');
    }
  });

  app.use(requireToken({ keys: deps.keys, metricsToken: deps.metricsToken, signingKey: deps.signingKey, open: ['/status', '/livez', ...apiDescriptionPaths] }));
  app.use('/screenshot', enforceKeyLimits(deps.keyLimits));
  app.use(
    '/screenshot',
    bodyLimit({
      maxSize: deps.maxBodyBytes,
      onError: async (c) => {
        // The connection closes after the 413 (the rest of the body is not worth reading as a next
        // request), but a client still streaming its body would see its write fail instead of the 413:
        // let it finish first, within bounds.
        await discardRestOfBody((c.env as { incoming?: IncomingMessage } | undefined)?.incoming, 4 * deps.maxBodyBytes, 2000);
        throw new ShotError('payload_too_large', `the body is over ${deps.maxBodyBytes} bytes (SHOTFLEET_MAX_BODY_BYTES)`, undefined, {
          Connection: 'close',
        });
      },
    }),
  );

  app.route('/', healthRoutes(deps));
  app.route('/', screenshotRoutes(deps));
  app.route('/', apiRoutes(deps));

  app.notFound(notFound('see GET /docs or /openapi.json for POST /screenshot, /status, /livez, /metrics'));
  app.onError(
    answerErrors({
      unexpected: 'the render failed; the node logged the cause under this request id',
      log: (c) => c.get('log'),
      headers: { 'X-Shotfleet-Node': deps.nodeId },
    }),
  );
  return app;
}

function discardRestOfBody(incoming: IncomingMessage | undefined, maxBytes: number, maxMs: number): Promise<void> {
  if (!incoming || incoming.readableEnded || incoming.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    let seen = 0;
    const done = () => {
      clearTimeout(timer);
      incoming.off('data', count).off('pause', keepFlowing).off('end', done).off('close', done).off('error', done);
      resolve();
    };
    // The body's web stream (read by bodyLimit) pauses the request whenever its own queue is full; once the cap is
    // passed nobody reads that queue, so the request is set flowing again each time (what it buffers is bounded by maxBytes).
    const keepFlowing = () => setImmediate(() => incoming.resume());
    const count = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > maxBytes) done();
    };
    const timer = setTimeout(done, maxMs);
    incoming.on('data', count).on('pause', keepFlowing).once('end', done).once('close', done).once('error', done);
    incoming.resume();
  });
}
