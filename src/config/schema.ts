import os from 'node:os';
import { z } from 'zod';

/**
 * Every setting of the contract, keyed by its env var name without the `SHOTFLEET_` prefix.
 * The matching flag is the same name in kebab case: SHOTFLEET_QUEUE_MAX ↔ --queue-max.
 * Defaults that depend on other settings (QUEUE_MAX = 2 × PAGES, …) are filled in by `resolveDefaults`.
 */

const bool = z
  .union([z.boolean(), z.string()])
  .transform((v, ctx) => {
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

const list = z
  .string()
  .transform((s) => s.split(',').map((x) => x.trim().toLowerCase()).filter(Boolean));

const httpUrl = z
  .string()
  .trim()
  .refine((s) => /^https?:\/\/[^/]/i.test(s) && URL.canParse(s), { error: 'expected an http(s) URL' });

const optionalString = z.string().trim().min(1).optional();

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
  RECYCLE_AFTER: int(1, 10000000).default(1000),
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
  METRICS_TOKEN: optionalString,
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
  HUB_URL: httpUrl.optional(),
  ADVERTISE_URL: httpUrl.optional(),
  PING_INTERVAL_MS: int(100).default(4000),
  PING_FAILURES: int(1, 1000).default(5),
  HEARTBEAT_INTERVAL_MS: int(100).default(10000),
  HAPROXY_SOCKET: optionalString,
  TARGET_SATURATION: ratio.default(0.7),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /**
   * Not in the contract's table: the adaptive concurrency limit (issue 3). Off by default: the overload
   * bench could not show a gain on this machine, and its probe at limit 1 lets one stuck page stall the node.
   */
  ADAPTIVE_CONCURRENCY: bool.default(false),
  /** Not in the contract's table: switches admission control off, for the overload benchmark's baseline. */
  ADMISSION: bool.default(true),
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

/** One page per core, at least 2, and no more than memory allows at ~300 MB a page. */
export function defaultPages(): number {
  const byCpu = Math.max(2, os.availableParallelism());
  const byMemory = Math.max(1, Math.floor(os.totalmem() / (300 * 1024 * 1024)));
  return Math.min(byCpu, byMemory);
}
