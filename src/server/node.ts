import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { createAdaptorServer } from '@hono/node-server';
import { createAdmission, createMemoryProbe } from '../admission/index.js';
import { startAgent } from '../agent/agent.js';
import type { Config } from '../config/load.js';
import type { ShedReason } from '../errors/shot-error.js';
import { createKeyLimits } from '../keys/key-limits.js';
import { createKeyRegistry } from '../keys/key-registry.js';
import { noKeyName } from '../keys/key-set.js';
import type { Logger } from '../log/logger.js';
import { createNodeMetrics } from '../metrics/node-metrics.js';
import { chromeEnvironment, createBoundedResolver, createUrlPolicy, startPolicyProxy } from '../policy/index.js';
import { createPagePool } from '../render-pool/page-pool.js';
import { decideSandbox } from '../render-pool/sandbox.js';
import { createRenderService } from '../pipeline/render-service.js';
import { createSessionStore } from '../sessions/session-store.js';
import { createApp } from './app.js';
import { createNodeResultCache } from './node-result-cache.js';
import { capConnections, httpServerOptions } from './http-limits.js';
import type { NodeStatus } from './health-routes.js';
import type { Membership } from './membership.js';
import { closingReserveMs, exitMarginMs, killProcesses, settledBy } from './stop-budget.js';

export interface RunningNode {
  url: string;
  nodeId: string;
  /**
   * Settles once the node has fully started (pages warm, agent listening, hub membership begun): only then does
   * /status answer 200. Rejects when the start fails; resolves early if shutdown came first.
   */
  started: Promise<void>;
  /**
   * Drains (in-flight renders and uploads finish, up to the grace period) and closes everything. Safe at any
   * moment, also while the node is still starting: what started is closed, what did not is never started.
   */
  shutdown(reason: string): Promise<void>;
  /**
   * Rereads SHOTFLEET_KEYS_FILE (on SIGHUP): added keys work at once, removed ones get 401, renders in flight finish.
   * A bad file is refused and logged, naming the problem; the keys before it stay.
   */
  reloadKeys(): void;
}

/** Before the node has started, only /livez says yes; everything else is told to come back. */
function answerWhileStarting(req: Request): Response {
  if (new URL(req.url).pathname === '/livez') return Response.json({ status: 'alive' });
  return Response.json({ status: 'starting' }, { status: 503, headers: { 'Retry-After': '1' } });
}

/**
 * The composition root of a node: builds each part from the one Config and wires them together. Resolves as soon
 * as the node listens (answering 503 `starting`), so the caller can hand `shutdown` to its signal handlers before
 * the slow part — Chromium and the warm pages — has begun.
 */
export async function startNode(config: Config, log: Logger): Promise<RunningNode> {
  const chromeEnv = chromeEnvironment(config.env);
  const sandbox = await decideSandbox(config.CHROME_SANDBOX, { chromePath: config.CHROME_PATH, env: chromeEnv, uid: process.getuid?.() ?? -1 }, log);
  if (sandbox.on) log.info({ sandbox: true }, 'Chromium runs in its sandbox');
  else
    log.warn(
      { sandbox: false, reason: sandbox.reason },
      "Chromium runs WITHOUT its sandbox: a renderer exploit gets the node user's rights (see the README, Security)",
    );
  // The adapter's env ({ incoming, outgoing }) is passed on: the 413 path reads the rest of a too-large body from it.
  let handler: (req: Request, env: unknown) => Response | Promise<Response> = answerWhileStarting;
  const httpLimits = { headersTimeoutMs: config.HEADERS_TIMEOUT_MS, requestTimeoutMs: config.REQUEST_TIMEOUT_MS, maxConnections: config.MAX_CONNECTIONS };
  const server = createAdaptorServer({
    fetch: (req: Request, env: unknown) => handler(req, env),
    serverOptions: httpServerOptions(httpLimits),
  }) as http.Server;
  capConnections(server, httpLimits);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(`cannot listen on ${config.HOST}:${config.PORT} (${err.code ?? err.message}); set SHOTFLEET_PORT to a free port`)),
    );
    server.listen(config.PORT, config.HOST, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const nodeId = config.NODE_ID.endsWith(':0') ? `${os.hostname()}:${port}` : config.NODE_ID;
  const urlHost = config.HOST === '0.0.0.0' || config.HOST === '::' ? os.hostname() : config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST;
  const url = `http://${urlHost}:${port}`;

  const metrics = createNodeMetrics();
  const dns = createBoundedResolver({ servers: config.DNS_SERVERS, timeoutMs: config.DNS_TIMEOUT_MS });
  const policy = createUrlPolicy({ allowPrivate: config.ALLOW_PRIVATE, allowHosts: config.ALLOW_HOSTS, denyHosts: config.DENY_HOSTS }, dns.resolve);
  const lookupLimits = { lookupsInFlight: config.DNS_LOOKUPS_PER_PAGE, lookupTimeoutMs: config.DNS_TIMEOUT_MS };
  const pool = createPagePool({
    chromePath: config.CHROME_PATH,
    pages: config.PAGES,
    recycleAfter: config.RECYCLE_AFTER,
    assetCache: config.ASSET_CACHE,
    launch: { sandbox: sandbox.on, env: chromeEnv, protocolTimeoutMs: Math.max(120_000, config.MAX_TIMEOUT_MS + 30_000) },
    policy,
    startProxy: () => startPolicyProxy(policy, log, lookupLimits),
    log,
    metrics,
  });
  const memory = createMemoryProbe(() => pool.browserPids());
  // The S3 client (hundreds of modules, ~0.25 s of CPU to load) only for a node that stores.
  const storage = config.S3_BUCKET ? (await import('../storage/index.js')).createStorage(config, log, metrics) : null;
  const admission = createAdmission(
    {
      pages: config.PAGES,
      queueMax: config.QUEUE_MAX,
      maxMemoryBytes: config.MAX_MEMORY_BYTES,
      adaptive: config.ADAPTIVE_CONCURRENCY,
      enabled: config.ADMISSION,
      fairShares: config.FAIR_SHARES,
    },
    { now: Date.now, memoryBytes: memory.bytes, uploads: storage ? () => storage.stats() : undefined, metrics },
  );
  const sessions = createSessionStore({
    pool,
    maxSessions: config.MAX_SESSIONS,
    idleMs: config.SESSION_IDLE_MS,
    log,
    onShed: (reason) => metrics.shedTotal.inc({ reason }),
  });
  // Pages in use and their maximum are admission's figures: it is the one gate renders pass (admission.ts).
  metrics.bindSources({ sessionsActive: () => sessions.active(), memoryBytes: memory.bytes });
  for (const source of ['cache', 'network'] as const) metrics.assetCacheResponses.inc({ source }, 0);
  for (const reason of ['queue_full', 'queue_timeout', 'deadline', 'upload_backlog', 'memory', 'draining'] satisfies ShedReason[]) {
    metrics.shedTotal.inc({ reason }, 0);
  }

  const keys = createKeyRegistry({ file: config.KEYS_FILE, initial: config.KEYS, defaultToken: config.TOKEN });
  const keyLimits = createKeyLimits({ now: Date.now, busyRetryAfterSeconds: () => admission.retryAfterSeconds() });
  metrics.bindKeyPages(() => {
    const inUse = admission.pagesInUseByKey();
    return [...new Set([...keys.current().names, ...inUse.keys(), noKeyName])].map((name) => [name, inUse.get(name) ?? 0] as const);
  });

  let draining = false;
  let started = false;
  const render = createRenderService({
    pool,
    admission,
    policy,
    storage,
    sessions,
    metrics,
    maxPageHeight: config.MAX_PAGE_HEIGHT,
    maxPixels: config.MAX_PIXELS,
    nodeId,
  });

  const resultCache = await createNodeResultCache(config, { storage, metrics, log, nodeId });

  function status(): NodeStatus {
    const a = admission.snapshot();
    const u = storage?.stats();
    return {
      status: draining ? 'draining' : !started ? 'starting' : pool.ready() ? 'ready' : 'no_browser',
      node: nodeId,
      saturation: a.saturation,
      pages: { max: config.PAGES, inUse: a.inUse, limit: a.limit },
      queue: { length: a.queued, max: a.queueMax },
      uploads: { inFlight: u?.inFlight ?? 0, max: u?.max ?? config.UPLOADS, queued: u?.queued ?? 0, backlogBytes: u?.backlogBytes ?? 0 },
      sessions: sessions.active(),
      shedPerSecond: a.shedPerSecond,
      renderSecondsAvg: a.renderSecondsAvg,
      chrome: { sandbox: sandbox.on },
    };
  }

  const app = createApp({
    nodeId,
    keys,
    keyLimits,
    metricsToken: config.METRICS_TOKEN,
    signingKey: config.SIGNING_KEY,
    maxBodyBytes: config.MAX_BODY_BYTES,
    log,
    metrics,
    health: { status },
    render,
    limits: {
      maxViewport: config.MAX_VIEWPORT,
      maxTimeoutMs: config.MAX_TIMEOUT_MS,
      defaultTimeoutMs: config.TIMEOUT_MS,
      maxPixels: config.MAX_PIXELS,
      defaultCacheTtl: config.CACHE_TTL,
    },
    sessionCookie: config.SESSION_COOKIE,
    resultCache,
    // Draining is admission's too (startDraining below), so one question covers every refusal.
    refusalForAnyRequest: (client) => admission.refusalForAnyRequest(client),
    draining: () => draining,
  });
  handler = (req, env) => app.fetch(req, env);

  // HAProxy's agent check is answered from the start: `drain` until the node has started, not a refused connection.
  let agent: { port: number; close(): Promise<void> } | null = null;
  let membership: Membership | null = null;
  const advertiseUrl = config.ADVERTISE_URL ?? url;

  /** Aborted by a shutdown that comes while the node is still starting: the wait for warm pages ends at once. */
  const startAbort = new AbortController();

  /** The slow part of the start, step by step; each step is skipped once a shutdown has begun. */
  async function finishStart(): Promise<void> {
    if (config.AGENT_PORT !== undefined) {
      agent = await startAgent({
        port: config.AGENT_PORT,
        host: config.HOST,
        state: () => {
          const a = admission.snapshot();
          return { draining: draining || !started || !pool.ready(), freeShare: Math.max(0, a.limit - a.inUse) / Math.max(1, a.limit) };
        },
        log,
      });
    }
    if (draining) return;
    try {
      await pool.warm(startAbort.signal);
    } catch (err) {
      if (draining) return;
      const cause = (err instanceof Error ? err.message : String(err)).split('\n')[0];
      throw new Error(
        `could not start Chromium at ${config.CHROME_PATH} (${cause}); check that it runs (apt-get install -y chromium) or point SHOTFLEET_CHROME_PATH at a working Chrome`,
      );
    }
    if (draining) return;
    if (storage) {
      storage.check().then(
        () => log.info({ bucket: storage.bucket }, 'S3 bucket reachable and writable'),
        (err) => log.error({ err: err instanceof Error ? err.message : String(err) }, 'S3 check failed: store requests will fail until this is fixed'),
      );
    }
    if (config.HUB_URL) {
      membership = (await import('./membership.js')).startMembership({
        hubUrl: config.HUB_URL,
        token: config.HUB_TOKEN,
        nodeId,
        advertiseUrl,
        capacity: config.PAGES,
        heartbeatIntervalMs: config.HEARTBEAT_INTERVAL_MS,
        log,
      });
    }
    if (draining) {
      await membership?.stop();
      return;
    }
    // Said before /status can answer 200, so a reader of the log never sees traffic before the line.
    log.info({ url, nodeId, pages: config.PAGES, queueMax: config.QUEUE_MAX, agentPort: agent?.port, chromeSandbox: sandbox.on }, 'listening');
    started = true;
  }

  const starting = finishStart();
  starting.catch(() => undefined);

  /** Closes every part; each close is safe on a part that never started. */
  async function closeAll(graceEnds: number): Promise<void> {
    await closeHttp(server, Math.max(0, graceEnds - Date.now()));
    await agent?.close();
    memory.stop();
    await sessions.close();
    await pool.close();
    dns.close();
  }

  let shuttingDown: Promise<void> | null = null;
  return {
    url,
    nodeId,
    started: starting,
    reloadKeys() {
      const verdict = keys.reload();
      if (verdict.ok) log.info({ keys: verdict.names }, 'API keys reloaded');
      else log.error({ keysFile: config.KEYS_FILE, problem: verdict.problem }, 'API keys NOT reloaded: the file is refused, the previous keys stay');
    },
    shutdown(reason) {
      shuttingDown ??= (async () => {
        log.info({ reason, graceMs: config.SHUTDOWN_GRACE_MS, started }, 'draining');
        draining = true;
        admission.startDraining();
        const stopBy = Date.now() + config.SHUTDOWN_GRACE_MS - exitMarginMs;
        const graceEnds = stopBy - closingReserveMs(config.SHUTDOWN_GRACE_MS);
        // A start in progress stops at its next step (Chromium still launching is closed by pool.close()).
        startAbort.abort();
        await settledBy(starting, graceEnds);
        await settledBy((membership as Membership | null)?.stop(), graceEnds);
        await waitFor(() => {
          const a = admission.snapshot();
          return a.inUse === 0 && a.queued === 0;
        }, graceEnds);
        await storage?.drain(Math.max(0, graceEnds - Date.now()));
        if (!(await settledBy(closeAll(graceEnds), stopBy))) {
          const killed = killProcesses(pool.browserPids());
          log.warn({ killed, graceMs: config.SHUTDOWN_GRACE_MS }, 'closing the browsers outlasted the grace; killed them');
        }
        log.info('stopped');
      })();
      return shuttingDown;
    },
  };
}

async function waitFor(done: () => boolean, until: number): Promise<void> {
  while (!done() && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
}

/** Stops accepting, lets responses in flight finish, then cuts idle keep-alive connections. */
function closeHttp(server: http.Server, boundMs: number): Promise<void> {
  return new Promise((resolve) => {
    // Answers sent once the drain began close their own connections (app.ts), so idle ones are cut here once.
    const timer = setTimeout(() => {
      server.closeAllConnections();
      finish();
    }, boundMs);
    function finish() {
      clearTimeout(timer);
      resolve();
    }
    server.close(finish);
    server.closeIdleConnections();
  });
}
