import fs from 'node:fs';
import os from 'node:os';
import { keysConflict } from '../keys/key-registry.js';
import { readKeysFile, type KeyEntry } from '../keys/keys-file.js';
import { chromeCandidates, defaultPages, settingNames, settingsSchema, usableMemoryBytes, type Settings } from './schema.js';
import { envName, flagName, type Role } from './setting-docs.js';

export type { Role };

/** The settings with every derived default filled in. Passed to modules; nothing else reads the environment. */
export interface Config extends Settings {
  ROLE: Role;
  PORT: number;
  PAGES: number;
  QUEUE_MAX: number;
  MAX_MEMORY_BYTES: number;
  MAX_SESSIONS: number;
  /** The result cache's key prefix in the S3 bucket, without slashes around it; empty: no S3 tier. */
  CACHE_S3_PREFIX: string;
  NODE_ID: string;
  /** SHOTFLEET_HUB_TOKEN, or SHOTFLEET_TOKEN when it is not set. */
  HUB_TOKEN: string | undefined;
  /** Resolved browser binary; empty for the hub, which needs none. */
  CHROME_PATH: string;
  /** The keys of SHOTFLEET_KEYS_FILE as read at start; undefined without the file. */
  KEYS: KeyEntry[] | undefined;
  /** The environment as given, for collaborators that read their own (the AWS SDK's credential chain). */
  env: Readonly<Record<string, string | undefined>>;
}

export class ConfigError extends Error {}

/** Settings whose empty value says something (an empty variable otherwise counts as unset). */
const meaningfulWhenEmpty = new Set<string>(['CACHE_S3_PREFIX']);

/**
 * Reads `SHOTFLEET_*` variables, overridden by matching flags, validates them once and returns the Config.
 * Throws ConfigError naming the variable (and flag) at fault.
 */
export function loadConfig(role: Role, flags: Record<string, string | boolean>, env: NodeJS.ProcessEnv = process.env): Config {
  const raw: Record<string, unknown> = {};
  for (const key of settingNames) {
    const fromEnv = env[envName(key)];
    if (fromEnv !== undefined && (fromEnv !== '' || meaningfulWhenEmpty.has(key))) raw[key] = fromEnv;
  }
  const known = new Map(settingNames.map((k) => [flagName(k).slice(2), k]));
  for (const [flag, value] of Object.entries(flags)) {
    const key = known.get(flag);
    if (!key) throw new ConfigError(`unknown option --${flag}; run with --help to list the options`);
    raw[key] = value;
  }

  const parsed = settingsSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const key = String(issue.path[0]);
      return `${envName(key)} (${flagName(key)}): ${issue.message}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  return resolveDefaults(role, parsed.data, env);
}

function resolveDefaults(role: Role, s: Settings, env: NodeJS.ProcessEnv): Config {
  const pages = s.PAGES ?? defaultPages();
  const port = s.PORT ?? (role === 'hub' ? 4000 : 3000);
  if (s.TIMEOUT_MS > s.MAX_TIMEOUT_MS) {
    throw new ConfigError(`invalid configuration:\n  SHOTFLEET_TIMEOUT_MS (${s.TIMEOUT_MS}) is above SHOTFLEET_MAX_TIMEOUT_MS (${s.MAX_TIMEOUT_MS})`);
  }
  if (s.HEADERS_TIMEOUT_MS > s.REQUEST_TIMEOUT_MS) {
    throw new ConfigError(
      `invalid configuration:\n  SHOTFLEET_HEADERS_TIMEOUT_MS (${s.HEADERS_TIMEOUT_MS}) is above SHOTFLEET_REQUEST_TIMEOUT_MS (${s.REQUEST_TIMEOUT_MS}): the headers are part of the request`,
    );
  }
  const s3Partial = [s.S3_ENDPOINT, s.S3_REGION, s.S3_PUBLIC_URL].some(Boolean) || s.S3_PREFIX !== '';
  if (s3Partial && !s.S3_BUCKET) {
    throw new ConfigError('invalid configuration:\n  SHOTFLEET_S3_BUCKET (--s3-bucket): required when other SHOTFLEET_S3_* settings are given');
  }
  const maxMemoryBytes = s.MAX_MEMORY_BYTES ?? Math.floor(usableMemoryBytes() * 0.8);
  if (role === 'serve' && s.CACHE_MEMORY_BYTES >= maxMemoryBytes) {
    throw new ConfigError(
      `invalid configuration:\n  SHOTFLEET_CACHE_MEMORY_BYTES (${s.CACHE_MEMORY_BYTES}) is not below SHOTFLEET_MAX_MEMORY_BYTES (${maxMemoryBytes}): a full result cache would shed every render`,
    );
  }
  const token = s.TOKEN_FILE ? readTokenFile('TOKEN', s.TOKEN, s.TOKEN_FILE) : s.TOKEN;
  const hubToken = s.HUB_TOKEN_FILE ? readTokenFile('HUB_TOKEN', s.HUB_TOKEN, s.HUB_TOKEN_FILE) : s.HUB_TOKEN;
  return {
    ...s,
    TOKEN: token,
    KEYS: s.KEYS_FILE ? readKeys(s.KEYS_FILE, token) : undefined,
    ROLE: role,
    PORT: port,
    PAGES: pages,
    QUEUE_MAX: s.QUEUE_MAX ?? 2 * pages,
    MAX_MEMORY_BYTES: maxMemoryBytes,
    MAX_SESSIONS: s.MAX_SESSIONS ?? 2 * pages,
    NODE_ID: s.NODE_ID ?? `${os.hostname()}:${port}`,
    HUB_TOKEN: hubToken ?? token,
    CHROME_PATH: role === 'serve' ? findChrome(s.CHROME_PATH) : '',
    S3_PREFIX: s.S3_PREFIX.replace(/^\/+|\/+$/g, ''),
    CACHE_S3_PREFIX: s.S3_BUCKET ? (s.CACHE_S3_PREFIX ?? 'cache').replace(/^\/+|\/+$/g, '') : '',
    env,
  };
}

/** A token setting's value from its _FILE twin (a mounted secret): SHOTFLEET_<name>_FILE, which excludes SHOTFLEET_<name>. */
function readTokenFile(name: 'TOKEN' | 'HUB_TOKEN', token: string | undefined, path: string): string {
  const setting = `SHOTFLEET_${name}_FILE (--${name.toLowerCase().replace('_', '-')}-file)`;
  if (token) {
    throw new ConfigError(`invalid configuration:\n  ${setting}: give it or SHOTFLEET_${name} (--${name.toLowerCase().replace('_', '-')}), not both`);
  }
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `invalid configuration:\n  ${setting}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? err}); mount the secret there or fix the path`,
    );
  }
  const fromFile = text.trim();
  if (!fromFile) throw new ConfigError(`invalid configuration:\n  ${setting}: ${path} is empty; write the token into it`);
  return fromFile;
}

function readKeys(path: string, defaultToken: string | undefined): KeyEntry[] {
  const verdict = readKeysFile(path, (p) => fs.readFileSync(p, 'utf8'));
  const problem = verdict.ok ? keysConflict(verdict.keys, defaultToken) : verdict.problem;
  if (problem || !verdict.ok) throw new ConfigError(`invalid configuration:\n  SHOTFLEET_KEYS_FILE (--keys-file): ${problem}`);
  return verdict.keys;
}

function findChrome(configured: string | undefined): string {
  if (configured) {
    if (!isExecutable(configured)) {
      throw new ConfigError(
        `SHOTFLEET_CHROME_PATH (--chrome-path): ${configured} is not an executable file.\n` +
          '  Install Chromium with: apt-get install -y chromium   — or unset SHOTFLEET_CHROME_PATH to use the one found on this machine.',
      );
    }
    return configured;
  }
  const found = chromeCandidates.find(isExecutable);
  if (!found) {
    throw new ConfigError(
      `no Chromium found (looked in ${chromeCandidates.join(', ')}).\n` +
        '  Install it with: apt-get install -y chromium   — or point SHOTFLEET_CHROME_PATH at a Chrome binary.',
    );
  }
  return found;
}

function isExecutable(path: string): boolean {
  try {
    fs.accessSync(path, fs.constants.X_OK);
    return fs.statSync(path).isFile();
  } catch {
    return false;
  }
}
