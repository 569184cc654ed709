import type { Settings } from './schema.js';

export type Role = 'serve' | 'hub';

export interface SettingDoc {
  /** What the setting does, as `--help` and the README's configuration table say it. */
  meaning: string;
  /** The default in words, where it is derived (from cores, memory, other settings) rather than a fixed value. */
  derivedDefault?: string;
  /** The commands that read it; `serve` alone when omitted. */
  roles?: readonly Role[];
  /** The value is a credential: passing it on the command line shows it to every user of the machine (`ps`). */
  secret?: boolean;
  /** Left out of the README table and `--help`: a switch for benchmarks, not for operators. */
  benchmarkOnly?: boolean;
}

const both: readonly Role[] = ['serve', 'hub'];
const hub: readonly Role[] = ['hub'];

/** Every setting's documentation; `Record` makes the type check fail on a setting added without its line here. */
export const settingDocs: Record<keyof Settings, SettingDoc> = {
  HOST: { meaning: 'listen address', roles: both },
  PORT: { meaning: 'listen port', derivedDefault: '3000 (hub: 4000)', roles: both },
  CHROME_PATH: {
    meaning: 'browser binary; none found → exit with the install command',
    derivedDefault: 'first of /usr/lib/chromium/chromium, /usr/bin/chromium, /usr/bin/chromium-browser, google-chrome-stable, google-chrome',
  },
  PAGES: {
    meaning: 'page pool size: the most renders at once',
    derivedDefault: 'one per core (at least 2), at most one per 300 MB of the memory the process may use',
  },
  QUEUE_MAX: { meaning: 'renders allowed to wait for a page', derivedDefault: '2 × pages' },
  TIMEOUT_MS: { meaning: "a request's deadline when it names none (ms)" },
  MAX_TIMEOUT_MS: { meaning: 'the largest deadline a request may ask (ms)' },
  MAX_VIEWPORT: { meaning: 'largest viewport or clip width/height (CSS px); deviceScaleFactor ≤ 4' },
  MAX_PAGE_HEIGHT: { meaning: 'fullPage cap (CSS px)' },
  MAX_BODY_BYTES: { meaning: 'request body cap' },
  MAX_PIXELS: { meaning: 'device pixels of one image, whatever produced it (viewport, clip, selector box, fullPage)' },
  RECYCLE_AFTER: { meaning: 'renders before a browser is replaced (its successor is up first: no downtime)' },
  CHROME_SANDBOX: {
    meaning:
      "auto: Chromium's own sandbox when it can run (not as root, user namespaces allowed), otherwise off with a warning at start; on: refuse to start without it; off",
  },
  DNS_SERVERS: {
    meaning: "name servers for the URL policy's lookups, ip or ip:port ([v6]:port), comma list",
    derivedDefault: "the system's (/etc/resolv.conf)",
  },
  DNS_TIMEOUT_MS: { meaning: "a lookup's longest wait, its wait for a slot included (ms)" },
  DNS_LOOKUPS_PER_PAGE: { meaning: 'lookups one page may have outstanding' },
  HEADERS_TIMEOUT_MS: { meaning: 'longest a client may take to send its headers (then 408 and the socket closes)' },
  REQUEST_TIMEOUT_MS: { meaning: 'longest a client may take to send its whole request (then 408 and the socket closes)' },
  MAX_CONNECTIONS: { meaning: 'open HTTP connections; past it a new one is closed at once (HAProxy retries it elsewhere)' },
  MAX_MEMORY_BYTES: {
    meaning: 'node + its browsers; above it new work is shed (memory)',
    derivedDefault: '80 % of the memory the process may use: its cgroup limit when it has one, else RAM',
  },
  UPLOADS: { meaning: 'S3 uploads at once' },
  UPLOAD_QUEUE_MAX: { meaning: 'uploads allowed to wait for a slot' },
  UPLOAD_BACKLOG_BYTES: { meaning: 'bytes of images waiting to upload; above it store requests are shed (upload_backlog)' },
  S3_BUCKET: { meaning: 'enables store; the other S3 settings need it' },
  S3_ENDPOINT: { meaning: 'S3-compatible endpoint (MinIO, R2…)' },
  S3_REGION: { meaning: 'S3 region', derivedDefault: "the AWS SDK's" },
  S3_FORCE_PATH_STYLE: { meaning: 'path-style bucket addressing (most S3-compatible servers)' },
  S3_PREFIX: { meaning: 'key prefix of stored images' },
  S3_PRESIGN_TTL_S: { meaning: 'lifetime of the presigned GET link a store answer carries (s)' },
  S3_PUBLIC_URL: { meaning: 'answer this base URL + key instead of a presigned link' },
  TOKEN: { meaning: "clients' token: every route but /status, /livez, /openapi.json, /docs (and /metrics) needs it", roles: both, secret: true },
  TOKEN_FILE: { meaning: 'a file holding the token (a mounted secret), read once at start; instead of SHOTFLEET_TOKEN', roles: both },
  METRICS_TOKEN: { meaning: '/metrics needs this token instead of none', roles: both, secret: true },
  KEYS_FILE: { meaning: 'API keys, a JSON file (see Keys); validated at start, reread on SIGHUP' },
  SIGNING_KEY: { meaning: 'HMAC key of signed GET links; shotfleet sign reads it too', secret: true },
  ALLOW_PRIVATE: { meaning: 'lift the URL policy: pages on private and loopback addresses are allowed' },
  ALLOW_HOSTS: { meaning: 'hosts allowed even when private (comma list, *.example.com wildcards, IP literals)' },
  DENY_HOSTS: { meaning: 'hosts refused whatever they resolve to (comma list)' },
  SESSION_COOKIE: { meaning: 'the session cookie (sticky state, and the key HAProxy hashes on)', roles: both },
  SESSION_IDLE_MS: { meaning: 'a session idle this long is closed (ms)' },
  MAX_SESSIONS: { meaning: 'sessions kept at once (least recently used out)', derivedDefault: '2 × pages' },
  AGENT_PORT: { meaning: "HAProxy agent-check listener (hub: the nodes' port, for the config it serves)", roles: both },
  SHUTDOWN_GRACE_MS: { meaning: 'the longest a stop may take on SIGTERM: drain, browsers closed, exit (ms)' },
  NODE_ID: { meaning: "this node's id in the fleet", derivedDefault: 'hostname:port' },
  HUB_URL: { meaning: 'the hubs to register with: a URL or a comma list (the node registers with every one)' },
  HUB_TOKEN: {
    meaning: "the hub's token: its routes need it, and it is what a node registers with",
    derivedDefault: '= SHOTFLEET_TOKEN',
    roles: both,
    secret: true,
  },
  HUB_TOKEN_FILE: {
    meaning: "a file holding the hub token (its own mounted secret, apart from the clients'), read once at start; instead of SHOTFLEET_HUB_TOKEN",
    roles: both,
  },
  ADVERTISE_URL: { meaning: 'the URL the hub should reach this node at', derivedDefault: 'http://HOST:PORT' },
  PING_INTERVAL_MS: { meaning: "how often the hub GETs each node's /status (ms)", roles: hub },
  PING_FAILURES: { meaning: 'failed pings in a row before the hub drops a node', roles: hub },
  HEARTBEAT_INTERVAL_MS: { meaning: 'how often a node re-posts itself to its hubs (ms)', roles: both },
  HAPROXY_SOCKET: {
    meaning: 'HAProxy Runtime API the hub keeps in sync: a unix socket path or loopback host:port, or a comma list (every HAProxy)',
    roles: hub,
  },
  HAPROXY_SLOTS: { meaning: "server slots per backend in the hub's config and sync; nodes beyond it are tracked but unrouted", roles: hub },
  TARGET_SATURATION: { meaning: 'the saturation autoscaling aims for (shotfleet_hub_desired_nodes)', roles: hub },
  CACHE_TTL: { meaning: 'the cacheTtl of a request that names none (s); 0: results are never served from the result cache' },
  CACHE_MEMORY_BYTES: {
    meaning: "the result cache's memory tier (least recently used out first); part of the node's memory, so below SHOTFLEET_MAX_MEMORY_BYTES",
  },
  CACHE_S3_PREFIX: {
    meaning: "the result cache's shared tier, under SHOTFLEET_S3_PREFIX in the bucket; empty: no S3 tier",
    derivedDefault: 'cache/ when SHOTFLEET_S3_BUCKET is set',
  },
  ASSET_CACHE: {
    meaning: 'on: renders reuse static sub-resources earlier renders on the same page fetched (asset cache); off: every asset is fetched every time',
  },
  LOG_LEVEL: { meaning: 'pino JSON logs on stdout, one line per request with its id', roles: both },
  ADAPTIVE_CONCURRENCY: { meaning: 'an adaptive concurrency limit below the page count', benchmarkOnly: true },
  FAIR_SHARES: { meaning: 'fair shares of the pages between API keys; off gives one first-come queue (the fairness benchmark baseline)', benchmarkOnly: true },
  ADMISSION: { meaning: 'admission control; off gives an unbounded queue (the overload benchmark baseline)', benchmarkOnly: true },
};

export const envName = (key: string) => `SHOTFLEET_${key}`;
export const flagName = (key: string) => `--${key.toLowerCase().replace(/_/g, '-')}`;

export const rolesOf = (key: keyof Settings): readonly Role[] => settingDocs[key].roles ?? ['serve'];
