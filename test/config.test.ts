import { spawn } from 'node:child_process';
import { describe, expect, it, vi } from 'vitest';
import { ConfigError, loadConfig } from '../src/config/load.js';
import { settingNames } from '../src/config/schema.js';
import { rolesOf, settingDocs } from '../src/config/setting-docs.js';
import { nodeStatus, request } from './helpers/node-client.js';
import { cliEntry, repoRoot, startShotfleet } from './helpers/processes.js';

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `shotfleet ...args` to its end (bounded), with only PATH, HOME and `env`. */
function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliEntry, ...args], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, SHOTFLEET_HOST: '127.0.0.1', SHOTFLEET_PORT: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`shotfleet ${args.join(' ')} did not exit within ${timeoutMs} ms; stderr:\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Runs `shotfleet serve ...args` in this process (the command's own run(), as main.ts calls it): what it prints and
 * its exit code, or what it throws (main.ts prints that as "shotfleet: <message>" and exits 1 — runCli checks that
 * path once). Starting the CLI as a process for each case cost seconds of CPU apiece.
 */
async function runInProcess(command: 'serve' | 'hub', args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const { run } = command === 'serve' ? await import('../src/cli/serve-command.js') : await import('../src/cli/hub-command.js');
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...parts) => void out.push(parts.join(' ')));
  const error = vi.spyOn(console, 'error').mockImplementation((...parts) => void err.push(parts.join(' ')));
  try {
    const code = await run(args, { SHOTFLEET_HOST: '127.0.0.1', SHOTFLEET_PORT: '0', SHOTFLEET_LOG_LEVEL: 'silent', ...env });
    return { code, stdout: out.join('\n'), stderr: err.join('\n') };
  } catch (thrown) {
    return { code: 1, stdout: out.join('\n'), stderr: `shotfleet: ${(thrown as Error).message}` };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

const runServe = (args: string[], env: Record<string, string> = {}) => runInProcess('serve', args, env);

const envName = (key: string) => `SHOTFLEET_${key}`;
const flagName = (key: string) => `--${key.toLowerCase().replace(/_/g, '-')}`;

/** One bad value per kind of setting; each must be refused naming its variable and flag. */
const badValues: Record<string, string> = {
  PORT: '70000',
  PAGES: 'abc',
  QUEUE_MAX: '-1',
  TIMEOUT_MS: '1.5',
  MAX_TIMEOUT_MS: '0',
  MAX_VIEWPORT: 'huge',
  MAX_PAGE_HEIGHT: '8',
  MAX_BODY_BYTES: '10',
  MAX_PIXELS: 'lots',
  CHROME_SANDBOX: 'maybe',
  DNS_SERVERS: 'not an address',
  DNS_TIMEOUT_MS: '0',
  DNS_LOOKUPS_PER_PAGE: '0',
  HEADERS_TIMEOUT_MS: '5',
  REQUEST_TIMEOUT_MS: 'never',
  MAX_CONNECTIONS: '0',
  RECYCLE_AFTER: '0',
  MAX_MEMORY_BYTES: '1000',
  UPLOADS: '0',
  UPLOAD_QUEUE_MAX: 'many',
  UPLOAD_BACKLOG_BYTES: '1',
  S3_ENDPOINT: 'ftp://s3.example',
  S3_FORCE_PATH_STYLE: 'perhaps',
  S3_PRESIGN_TTL_S: '0',
  S3_PUBLIC_URL: 'not a url',
  TOKEN_FILE: '/nonexistent/shotfleet-token',
  HUB_TOKEN_FILE: '/nonexistent/shotfleet-hub-token',
  ALLOW_PRIVATE: 'maybe',
  SESSION_COOKIE: 'bad cookie;name',
  SESSION_IDLE_MS: '10',
  MAX_SESSIONS: '-3',
  AGENT_PORT: '65536',
  SHUTDOWN_GRACE_MS: '-1',
  HUB_URL: 'http://hub:4000,hub:4001',
  HAPROXY_SOCKET: '0.0.0.0:9999',
  HAPROXY_SLOTS: '0',
  ADVERTISE_URL: 'file:///x',
  PING_INTERVAL_MS: '1',
  PING_FAILURES: '0',
  HEARTBEAT_INTERVAL_MS: 'soon',
  TARGET_SATURATION: '2',
  CACHE_TTL: '2592001',
  CACHE_MEMORY_BYTES: '-1',
  LOG_LEVEL: 'loud',
  ADAPTIVE_CONCURRENCY: 'sometimes',
  ADMISSION: 'kinda',
  KEYS_FILE: '/nonexistent/keys.json',
  FAIR_SHARES: 'perhaps',
  ASSET_CACHE: 'sometimes',
};

describe('configuration (loadConfig)', () => {
  it.each(Object.entries(badValues))('a bad SHOTFLEET_%s is refused naming the variable and its flag', (key, value) => {
    const env = { [envName(key)]: value, ...(key.startsWith('S3_') ? { SHOTFLEET_S3_BUCKET: 'b' } : {}) };
    expect(() => loadConfig('serve', {}, env)).toThrow(ConfigError);
    try {
      loadConfig('serve', {}, env);
    } catch (err) {
      expect((err as Error).message).toContain(envName(key));
      expect((err as Error).message).toContain(flagName(key));
    }
    // The same value as a flag is refused the same way.
    expect(() => loadConfig('serve', { [flagName(key).slice(2)]: value }, key.startsWith('S3_') ? { SHOTFLEET_S3_BUCKET: 'b' } : {})).toThrow(envName(key));
  });

  it('covers every setting of the schema with a bad value except free-form strings', () => {
    const freeForm = [
      'HOST',
      'CHROME_PATH',
      'S3_BUCKET',
      'S3_REGION',
      'S3_PREFIX',
      'CACHE_S3_PREFIX',
      'TOKEN',
      'METRICS_TOKEN',
      'SIGNING_KEY',
      'ALLOW_HOSTS',
      'DENY_HOSTS',
      'NODE_ID',
      'HUB_TOKEN',
    ];
    expect(settingNames.filter((k) => !(k in badValues) && !freeForm.includes(k))).toEqual([]);
  });

  it('flags override the environment; defaults derive from the pool size', () => {
    const config = loadConfig('serve', { pages: '3', 'allow-private': 'true' }, { SHOTFLEET_PAGES: '7', SHOTFLEET_ALLOW_PRIVATE: 'false' });
    expect(config.PAGES).toBe(3);
    expect(config.ALLOW_PRIVATE).toBe(true);
    expect(config.QUEUE_MAX).toBe(6);
    expect(config.MAX_SESSIONS).toBe(6);
    expect(config.TIMEOUT_MS).toBe(30_000);
  });

  it('contradictions between settings are refused', () => {
    expect(() => loadConfig('serve', {}, { SHOTFLEET_TIMEOUT_MS: '70000' })).toThrow(/SHOTFLEET_TIMEOUT_MS.*SHOTFLEET_MAX_TIMEOUT_MS/);
    expect(() => loadConfig('serve', {}, { SHOTFLEET_S3_ENDPOINT: 'http://127.0.0.1:9000' })).toThrow(/SHOTFLEET_S3_BUCKET/);
    expect(() => loadConfig('serve', {}, { SHOTFLEET_MAX_MEMORY_BYTES: String(2 ** 30), SHOTFLEET_CACHE_MEMORY_BYTES: String(2 ** 30) })).toThrow(
      /SHOTFLEET_CACHE_MEMORY_BYTES.*SHOTFLEET_MAX_MEMORY_BYTES/,
    );
  });

  it("the result cache's S3 tier is cache/ in the bucket unless set; an empty prefix turns it off; no bucket, no tier", () => {
    const bucket = { SHOTFLEET_S3_BUCKET: 'shots' };
    expect(loadConfig('serve', {}, bucket).CACHE_S3_PREFIX).toBe('cache');
    expect(loadConfig('serve', {}, { ...bucket, SHOTFLEET_CACHE_S3_PREFIX: '/results/' }).CACHE_S3_PREFIX).toBe('results');
    expect(loadConfig('serve', {}, { ...bucket, SHOTFLEET_CACHE_S3_PREFIX: '' }).CACHE_S3_PREFIX).toBe('');
    expect(loadConfig('serve', { 'cache-s3-prefix': '' }, bucket).CACHE_S3_PREFIX).toBe('');
    expect(loadConfig('serve', {}, {}).CACHE_S3_PREFIX).toBe('');
    expect(loadConfig('serve', {}, {}).CACHE_TTL).toBe(0);
  });
});

describe('configuration through the shotfleet CLI', () => {
  it('a bad env value exits non-zero with a message naming the variable', async () => {
    // Once through the binary, the rest in process.
    const binary = await runCli(['serve'], { SHOTFLEET_PAGES: 'abc' });
    expect(binary.code, binary.stderr).toBe(2);
    expect(binary.stderr).toContain('SHOTFLEET_PAGES');
    expect(binary.stderr).not.toMatch(/\n\s+at /);
    for (const [name, value] of [
      ['SHOTFLEET_PAGES', 'abc'],
      ['SHOTFLEET_ALLOW_PRIVATE', 'maybe'],
      ['SHOTFLEET_LOG_LEVEL', 'loud'],
    ]) {
      const run = await runServe([], { [name]: value });
      expect(run.code, run.stderr).toBe(2);
      expect(run.stderr).toContain(name);
      expect(run.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('a bad flag value names the flag; an unknown flag or argument is refused with a pointer to --help', async () => {
    const bad = await runServe(['--pages', 'abc']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--pages');
    const unknown = await runServe(['--pagez', '2']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/--pagez.*--help/);
    const positional = await runServe(['extra']);
    expect(positional.code).toBe(2);
    expect(positional.stderr).toContain('--help');
  });

  it('missing Chromium (SHOTFLEET_CHROME_PATH=/nonexistent) exits with the install command', async () => {
    const run = await runServe([], { SHOTFLEET_CHROME_PATH: '/nonexistent' });
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('SHOTFLEET_CHROME_PATH');
    expect(run.stderr).toContain('apt-get install -y chromium');
  });

  it('a binary that is not a working Chromium makes the node exit (not hang) with the fix in the message', async () => {
    const run = await runCli(['serve'], { SHOTFLEET_CHROME_PATH: '/bin/false' });
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('/bin/false');
    expect(run.stderr).toContain('SHOTFLEET_CHROME_PATH');
  });

  it('shotfleet --help and shotfleet serve --help print usage and exit 0', async () => {
    const top = await runCli(['--help']);
    expect(top.code).toBe(0);
    for (const command of ['serve', 'hub', 'haproxy-config', 'shoot']) expect(top.stdout).toContain(command);
    const serve = await runServe(['--help']);
    expect(serve.code).toBe(0);
    expect(serve.stdout).toMatch(/usage: shotfleet serve/);
    const hub = await runInProcess('hub', ['--help']);
    expect(hub.code).toBe(0);
    for (const key of settingNames.filter((k) => !settingDocs[k].benchmarkOnly)) {
      const [help, other] = rolesOf(key).includes('serve') ? [serve.stdout, hub.stdout] : [hub.stdout, serve.stdout];
      expect(help).toContain(`${flagName(key)} (${envName(key)})`);
      // Each setting line says what it does and its default.
      expect(help).toContain(settingDocs[key].meaning);
      if (!rolesOf(key).includes('hub')) expect(other, `${key} is not the hub's`).not.toContain(`${flagName(key)} (`);
    }
    const version = await runServe(['--version']);
    expect(version.stdout.trim()).toMatch(/^shotfleet \d+\.\d+\.\d+/);
  });

  it('refuses a boolean flag followed by a stray word, and a flag of the other role, naming it', async () => {
    const stray = await runServe(['--allow-private', 'extra']);
    expect(stray.code).toBe(2);
    expect(stray.stderr).toContain('unexpected argument "extra"');
    const off = await runServe(['--allow-private=maybe']);
    expect(off.stderr).toContain('--allow-private is true or false');
    const hubFlag = await runInProcess('hub', ['--pages', '2']);
    expect(hubFlag.code).toBe(2);
    expect(hubFlag.stderr).toContain('--pages is a setting of shotfleet serve, not of hub');
  });

  it('--flag equivalents configure a real node, over the environment', async () => {
    const node = await startShotfleet(
      'serve',
      { SHOTFLEET_PAGES: '3', SHOTFLEET_ALLOW_HOSTS: '127.0.0.1' },
      { args: ['--pages', '1', '--queue-max=5', '--max-body-bytes', '4096', '--token', 'flag-token'], timeoutMs: 60_000 },
    );
    try {
      const status = await nodeStatus(node.url);
      expect(status.body.pages.max).toBe(1);
      expect(status.body.queue.max).toBe(5);
      const headers = { 'content-type': 'application/json' };
      expect((await request(`${node.url}/screenshot`, { method: 'POST', headers, body: '{}' })).status).toBe(401);
      const big = JSON.stringify({ html: 'x'.repeat(5000) });
      expect((await request(`${node.url}/screenshot`, { method: 'POST', headers: { ...headers, token: 'flag-token' }, body: big })).status).toBe(413);
    } finally {
      expect(await node.stop()).toBe(0);
    }
  });
});
