import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.js';
import { defaultPages, usableMemoryBytes } from '../src/config/schema.js';
import { createHubMetrics } from '../src/fleet/hub-metrics.js';
import { createNodeMetrics } from '../src/metrics/node-metrics.js';
import { repoRoot } from './helpers/processes.js';

const GiB = 1024 ** 3;

describe('memory the node may use', () => {
  it('is the cgroup limit when there is one below RAM, else RAM', () => {
    expect(usableMemoryBytes(2 * GiB, 24 * GiB)).toBe(2 * GiB);
    // How Node 20 reports "no limit": 2^64, 0 or undefined.
    expect(usableMemoryBytes(2 ** 64, 24 * GiB)).toBe(24 * GiB);
    expect(usableMemoryBytes(0, 24 * GiB)).toBe(24 * GiB);
    expect(usableMemoryBytes(undefined, 24 * GiB)).toBe(24 * GiB);
  });

  it('sets the SHOTFLEET_MAX_MEMORY_BYTES default (80 %) and bounds the default pool size', () => {
    const config = loadConfig('hub', {}, {});
    expect(config.MAX_MEMORY_BYTES).toBe(Math.floor(usableMemoryBytes() * 0.8));
    // A 1 GiB pod gets at most 3 pages (~300 MB each), whatever the host's RAM.
    expect(defaultPages(1 * GiB)).toBeLessThanOrEqual(3);
  });
});

describe('SHOTFLEET_TOKEN_FILE', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shotfleet-token-'));

  it('reads the token from the file, without its trailing newline', () => {
    const file = path.join(dir, 'token');
    fs.writeFileSync(file, 's3cret-from-file\n');
    expect(loadConfig('hub', {}, { SHOTFLEET_TOKEN_FILE: file }).TOKEN).toBe('s3cret-from-file');
    expect(loadConfig('hub', { 'token-file': file }, {}).TOKEN).toBe('s3cret-from-file');
  });

  it('refuses a missing or empty file, and a token given twice, naming the variable', () => {
    const empty = path.join(dir, 'empty');
    fs.writeFileSync(empty, '\n');
    expect(() => loadConfig('hub', {}, { SHOTFLEET_TOKEN_FILE: path.join(dir, 'absent') })).toThrow(/SHOTFLEET_TOKEN_FILE.*cannot read/);
    expect(() => loadConfig('hub', {}, { SHOTFLEET_TOKEN_FILE: empty })).toThrow(/SHOTFLEET_TOKEN_FILE.*empty/);
    expect(() => loadConfig('hub', {}, { SHOTFLEET_TOKEN_FILE: empty, SHOTFLEET_TOKEN: 'x' })).toThrow(/not both/);
  });
});

describe('shotfleet_build_info', () => {
  const version = (JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;

  it('node and hub export it as 1 with the package version, Node version and role', async () => {
    const node = await createNodeMetrics().registry.metrics();
    const hub = await createHubMetrics(() => [], 0.7).registry.metrics();
    expect(node).toContain(`shotfleet_build_info{version="${version}",node_version="${process.version}",role="node"} 1`);
    expect(hub).toContain(`shotfleet_build_info{version="${version}",node_version="${process.version}",role="hub"} 1`);
  });
});

describe('Dockerfile HEALTHCHECK', () => {
  // Continuation lines joined, as Docker reads them.
  const dockerfile = fs.readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8').replace(/\\\n\s*/g, ' ');
  const exec = /^HEALTHCHECK .*CMD (\[.*\])\s*$/m.exec(dockerfile);

  /** Runs the HEALTHCHECK's exec-form command as Docker would, with SHOTFLEET_PORT pointing at `port`. */
  function runHealthcheck(port: number) {
    const [cmd, ...args] = JSON.parse(exec![1]) as string[];
    return new Promise<number | null>((resolve) => {
      const child = spawn(cmd === 'node' ? process.execPath : cmd, args, { env: { SHOTFLEET_PORT: String(port) }, stdio: 'ignore' });
      child.on('exit', (code) => resolve(code));
    });
  }

  it('exits 0 when /livez answers 200 and 1 when it does not', async () => {
    expect(exec, 'HEALTHCHECK … CMD ["node", …] in exec form').not.toBeNull();
    const paths: string[] = [];
    let healthy = true;
    const server = http.createServer((req, res) => {
      paths.push(req.url ?? '');
      res.writeHead(healthy ? 200 : 500).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      expect(await runHealthcheck(port)).toBe(0);
      healthy = false;
      expect(await runHealthcheck(port)).toBe(1);
      expect(paths).toEqual(['/livez', '/livez']);
    } finally {
      server.close();
    }
    // Nothing listening on the port: unhealthy, not a hang.
    expect(await runHealthcheck(port)).toBe(1);
  });
});
