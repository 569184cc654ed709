import { defaultLimits } from '../../src/api/readme-options.js';
import type { ShotError } from '../../src/errors/shot-error.js';
import { createKeyLimits } from '../../src/keys/key-limits.js';
import { createKeyRegistry, type KeyRegistry } from '../../src/keys/key-registry.js';
import type { ClientKey } from '../../src/keys/key-set.js';
import { createLogger } from '../../src/log/logger.js';
import { createNodeMetrics, type NodeMetrics } from '../../src/metrics/node-metrics.js';
import type { RenderService, ScreenshotRequest, ScreenshotResult } from '../../src/pipeline/render-service.js';
import { createApp } from '../../src/server/app.js';
import type { ScreenshotRouteDeps } from '../../src/server/screenshot-routes.js';
import type { NodeStatus } from '../../src/server/health-routes.js';
import { tinyPng } from './images.js';
import { readAnswer, type Answer } from './node-client.js';

export const nodeId = 'in-process:1';

/** What the stub render answers when a test does not say otherwise: a 2×2 PNG, as a render of a page would. */
export const imageResult = (extra: Partial<ScreenshotResult> = {}): ScreenshotResult =>
  ({
    kind: 'image',
    image: tinyPng,
    contentType: 'image/png',
    truncated: false,
    timings: { queueMs: 3, renderMs: 42 },
    bestEffort: false,
    ...extra,
  }) as ScreenshotResult;

export const readyStatus = (): NodeStatus => ({
  status: 'ready',
  node: nodeId,
  saturation: 0,
  pages: { max: 1, inUse: 0, limit: 1 },
  queue: { length: 0, max: 2 },
  uploads: { inFlight: 0, max: 8, queued: 0, backlogBytes: 0 },
  sessions: 0,
  shedPerSecond: 0,
  renderSecondsAvg: 0,
  chrome: { sandbox: true },
});

export interface InProcessNodeOptions {
  token?: string;
  /** API keys, as SHOTFLEET_KEYS_FILE would give them (SHOTFLEET_TOKEN, when given too, is `default`). */
  keys?: KeyRegistry;
  /** The clock of the keys' rate limits. */
  now?: () => number;
  metricsToken?: string;
  signingKey?: string;
  maxBodyBytes?: number;
  /** The render service's answer; a thrown error goes through the app's error mapping. */
  screenshot?: (req: ScreenshotRequest) => ScreenshotResult | Promise<ScreenshotResult>;
  status?: () => NodeStatus;
  refusalForAnyRequest?: (client?: ClientKey) => ShotError | null;
  draining?: () => boolean;
  /** The result cache the routes use, made with the node's metrics (none: every request renders). */
  resultCache?: (metrics: NodeMetrics) => ScreenshotRouteDeps['resultCache'];
}

export interface InProcessNode {
  metrics: NodeMetrics;
  /** Every request the HTTP layer let through to the render service, in order. */
  renders: ScreenshotRequest[];
  /** A request to the app, in process (Hono's app.request): `path` like '/screenshot?url=…'. */
  request(path: string, init?: { method?: string; headers?: Record<string, string>; body?: string | Buffer | ReadableStream<Uint8Array> }): Promise<Answer>;
  /** POST /screenshot with a JSON body. */
  shoot(body: unknown, headers?: Record<string, string>): Promise<Answer>;
  /** The text of GET /metrics (the metrics token is sent when one is set). */
  metricsText(): Promise<string>;
}

/**
 * The node's HTTP app (src/server/app.ts) with a stub render service, a stub health source and real metrics: the
 * HTTP surface answers in microseconds, with no browser and no socket. Limits are the configuration's defaults.
 */
export function inProcessNode(opts: InProcessNodeOptions = {}): InProcessNode {
  const metrics = createNodeMetrics();
  // As the real node binds it (one page, as readyStatus says), so /metrics has a value of this node's own.
  metrics.bindSources({ pagesMax: () => 1 });
  const renders: ScreenshotRequest[] = [];
  const render: RenderService = {
    async check() {},
    async screenshot(req) {
      renders.push(req);
      return opts.screenshot ? opts.screenshot(req) : imageResult();
    },
  };
  const app = createApp({
    nodeId,
    keys: opts.keys ?? createKeyRegistry({ defaultToken: opts.token }),
    keyLimits: createKeyLimits({ now: opts.now ?? Date.now, busyRetryAfterSeconds: () => 1 }),
    metricsToken: opts.metricsToken,
    signingKey: opts.signingKey,
    maxBodyBytes: opts.maxBodyBytes ?? 256 * 1024,
    log: createLogger('silent'),
    metrics,
    health: { status: opts.status ?? readyStatus },
    render,
    limits: defaultLimits(),
    sessionCookie: 'shot_session',
    refusalForAnyRequest: opts.refusalForAnyRequest ?? (() => null),
    draining: opts.draining,
    resultCache: opts.resultCache?.(metrics),
  });
  const request: InProcessNode['request'] = async (path, init = {}) => {
    const started = performance.now();
    const body = init.body;
    const res = await app.request(path, {
      method: init.method ?? 'GET',
      headers: init.headers,
      body: body instanceof ReadableStream || typeof body === 'string' || body === undefined ? body : new Uint8Array(body),
      ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
    } as RequestInit);
    return readAnswer(res, started);
  };
  return {
    metrics,
    renders,
    request,
    shoot: (body, headers = {}) =>
      request('/screenshot', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) }),
    async metricsText() {
      const answer = await request('/metrics', { headers: opts.metricsToken ? { authorization: `Bearer ${opts.metricsToken}` } : {} });
      return answer.bytes.toString('utf8');
    },
  };
}
