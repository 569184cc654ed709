import net from 'node:net';
import os from 'node:os';
import { z } from 'zod';

/**
 * Every setting in the README's configuration table, keyed by its env var name without the `SHOTFLEET_` prefix.
 * The matching flag is the same name in kebab case: SHOTFLEET_QUEUE_MAX ↔ --queue-max.
 * Defaults that depend on other settings (QUEUE_MAX = 2 × PAGES, …) are filled in by `resolveDefaults`.
 */

const bool = z.union([z.boolean(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'boolean') return v;
  const s = v.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(s)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(s)) return false;
  ctx.addIssue({ code: 'custom', message: `expected true or false, got "${v}"` });
  return z.NEVER;
});

const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce
    .number({ error: 'expected a whole number' })
    .int({ error: 'expected a whole number' })
    .min(min, { error: `must be at least ${min}` })
    .max(max, { error: `must be at most ${max}` });

const ratio = z.coerce.number({ error: 'expected a number' }).gt(0, { error: 'must be above 0' }).max(1, { error: 'must be at most 1' });

const list = z.string().transform((s) =>
  s
    .split(',')
    .map((x) => x.trim().toLowerCase())
    .filter(Boolean),
);

/** A name server as c-ares takes it: an IP, or ip:port / [v6]:port. */
const dnsServer = (s: string) => {
  const m = /^\[([0-9a-f:.]+)\](?::(\d{1,5}))?$/i.exec(s) ?? /^([0-9.]+)(?::(\d{1,5}))?$/.exec(s) ?? /^([0-9a-f:]+)()$/i.exec(s);
  return !!m && net.isIP(m[1]) !== 0 && (!m[2] || (Number(m[2]) > 0 && Number(m[2]) < 65536));
};

const httpUrl = z
  .string()
  .trim()
  .refine((s) => /^https?:\/\/[^/]/i.test(s) && URL.canParse(s), { error: 'expected an http(s) URL' });

const optionalString = z.string().trim().min(1).optional();

/** A comma list of http(s) URLs, kept as the list. */
const httpUrlList = z
  .string()
  .transform((s) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean),
  )
  .refine((urls) => urls.length > 0 && urls.every((u) => /^https?:\/\/[^/]/i.test(u) && URL.canParse(u)), {
    error: 'expected an http(s) URL, or a comma list of them',
  });

/**
 * HAProxy Runtime API sockets (a comma list): a unix socket path, or host:port on loopback. The admin socket
 * can change where HAProxy sends every request and has no authentication, so it never listens on a network.
 */
const haproxySockets = z
  .string()
  .transform((s) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean),
  )
  .superRefine((sockets, ctx) => {
    if (sockets.length === 0) ctx.addIssue({ code: 'custom', message: 'expected a unix socket path or a loopback host:port' });
    for (const socket of sockets) {
      const problem = runtimeSocketProblem(socket);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }
  });

/** Why a Runtime API socket address is refused, or undefined when it is a unix path or a loopback host:port. */
export function runtimeSocketProblem(socket: string): string | undefined {
  if (socket.includes('/')) return /[\s;#]/.test(socket) ? `"${socket}": a socket path must not hold spaces, ";" or "#"` : undefined;
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(socket);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!m || !host || port < 1 || port > 65535) return `"${socket}" is neither a unix socket path nor host:port`;
  if (!isLoopbackHost(host)) {
    return `"${socket}" is not on loopback: HAProxy's admin socket has no authentication; use a unix socket path or 127.0.0.1:PORT`;
  }
  return undefined;
}

/** 127.0.0.0/8, ::1 and localhost: addresses no other machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  return !!v4?.slice(1).every((octet) => Number(octet) <= 255);
}

export const settingsSchema = z.object({
  HOST: z.string().default('0.0.0.0'),
  PORT: int(0, 65535).optional(),
  CHROME_PATH: optionalString,
  PAGES: int(1, 256).optional(),
  QUEUE_MAX: int(0, 100000).optional(),
  TIMEOUT_MS: int(100, 3600000).default(30000),
  MAX_TIMEOUT_MS: int(100, 3600000).default(60000),
  MAX_VIEWPORT: int(16, 16384).default(4096),
  MAX_PAGE_HEIGHT: int(16, 1000000).default(20000),
  MAX_BODY_BYTES: int(1024, 1024 * 1024 * 1024).default(2097152),
  MAX_PIXELS: int(1024, 1_000_000_000).default(100_000_000),
  RECYCLE_AFTER: int(1, 10000000).default(1000),
  /** Renders reuse static sub-resources earlier renders on the same page fetched (README: Asset cache). */
  ASSET_CACHE: bool.default(true),
  CHROME_SANDBOX: z.enum(['auto', 'on', 'off'], { error: 'expected auto, on or off' }).default('auto'),
  /** DNS servers for the URL policy's lookups (ip or ip:port, comma list); empty: the system's (/etc/resolv.conf). */
  DNS_SERVERS: list.refine((servers) => servers.every(dnsServer), { error: 'expected IP addresses, each optionally with :port ([v6]:port)' }).default([]),
  DNS_TIMEOUT_MS: int(100, 60000).default(5000),
  DNS_LOOKUPS_PER_PAGE: int(1, 256).default(8),
  HEADERS_TIMEOUT_MS: int(100, 600000).default(10000),
  REQUEST_TIMEOUT_MS: int(100, 3600000).default(30000),
  MAX_CONNECTIONS: int(1, 1_000_000).default(1024),
  MAX_MEMORY_BYTES: int(64 * 1024 * 1024).optional(),
  UPLOADS: int(1, 1024).default(8),
  UPLOAD_QUEUE_MAX: int(0, 100000).default(64),
  UPLOAD_BACKLOG_BYTES: int(1024).default(268435456),
  S3_BUCKET: optionalString,
  S3_ENDPOINT: httpUrl.optional(),
  S3_REGION: optionalString,
  S3_FORCE_PATH_STYLE: bool.default(false),
  S3_PREFIX: z.string().trim().default(''),
  S3_PRESIGN_TTL_S: int(1, 604800).default(3600),
  S3_PUBLIC_URL: httpUrl.optional(),
  TOKEN: optionalString,
  /** A file holding the token (a mounted Kubernetes or Docker secret), read once at start; excludes TOKEN. */
  TOKEN_FILE: optionalString,
  METRICS_TOKEN: optionalString,
  /** API keys (a JSON file), validated at start and reread on SIGHUP; with SHOTFLEET_TOKEN it is one more key. */
  KEYS_FILE: optionalString,
  SIGNING_KEY: optionalString,
  ALLOW_PRIVATE: bool.default(false),
  ALLOW_HOSTS: list.default([]),
  DENY_HOSTS: list.default([]),
  SESSION_COOKIE: z
    .string()
    .regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, { error: 'must be a valid cookie name' })
    .default('shot_session'),
  SESSION_IDLE_MS: int(1000).default(60000),
  MAX_SESSIONS: int(0, 100000).optional(),
  AGENT_PORT: int(0, 65535).optional(),
  SHUTDOWN_GRACE_MS: int(0, 3600000).default(30000),
  NODE_ID: optionalString,
  HUB_URL: httpUrlList.optional(),
  /** Defaults to TOKEN (filled in by resolveDefaults). */
  HUB_TOKEN: optionalString,
  /** A file holding the hub token (its own mounted secret, apart from the clients'), read once at start; excludes HUB_TOKEN. */
  HUB_TOKEN_FILE: optionalString,
  ADVERTISE_URL: httpUrl.optional(),
  PING_INTERVAL_MS: int(100).default(4000),
  PING_FAILURES: int(1, 1000).default(5),
  HEARTBEAT_INTERVAL_MS: int(100).default(10000),
  HAPROXY_SOCKET: haproxySockets.optional(),
  HAPROXY_SLOTS: int(1, 100000).default(64),
  TARGET_SATURATION: ratio.default(0.7),
  CACHE_TTL: int(0, 2_592_000).default(0),
  CACHE_MEMORY_BYTES: int(0).default(134_217_728),
  /** `cache/` when S3 is configured (filled in by resolveDefaults); empty: no S3 tier. */
  CACHE_S3_PREFIX: z.string().trim().optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /**
   * Not in the README's configuration table: the adaptive concurrency limit. Off by default: the overload
   * bench could not show a gain on this machine, and its probe at limit 1 lets one stuck page stall the node.
   */
  ADAPTIVE_CONCURRENCY: bool.default(false),
  /** Not in the README's configuration table: switches admission control off, for the overload benchmark's baseline. */
  ADMISSION: bool.default(true),
  /**
   * Not in the README's configuration table: false serves the wait queue first come, first served whatever the key
   * (the fairness benchmark's baseline; README: Benchmarks).
   */
  FAIR_SHARES: bool.default(true),
});

export type Settings = z.output<typeof settingsSchema>;
export const settingNames = Object.keys(settingsSchema.shape) as (keyof Settings)[];

/** Chromium binaries tried in order when SHOTFLEET_CHROME_PATH is not set. */
export const chromeCandidates = [
  '/usr/lib/chromium/chromium',
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome-stable',
  '/usr/bin/google-chrome',
];

/**
 * The memory this process may use: its cgroup limit when it has one (a container's), else the machine's RAM.
 * In a pod, RAM is the host's: shedding at 80 % of it would never fire before the OOM killer does.
 * Node 20 reports "no limit" as 0, undefined or 2^64, so anything not below RAM counts as none.
 */
export function usableMemoryBytes(constrained = process.constrainedMemory?.(), total = os.totalmem()): number {
  return constrained !== undefined && constrained > 0 && constrained < total ? constrained : total;
}

/** One page per core, at least 2, and no more than memory allows at ~300 MB a page. */
export function defaultPages(memoryBytes = usableMemoryBytes()): number {
  const byCpu = Math.max(2, os.availableParallelism());
  const byMemory = Math.max(1, Math.floor(memoryBytes / (300 * 1024 * 1024)));
  return Math.min(byCpu, byMemory);
}
