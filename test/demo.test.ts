import { spawn } from 'node:child_process';
import readline from 'node:readline';
import { describe, expect, it } from 'vitest';
import { freePort } from './helpers/haproxy.js';
import { alive, nodeChromiumPids } from './helpers/node-client.js';
import { cliEntry, repoRoot } from './helpers/processes.js';

describe('shotfleet demo', () => {
  it('starts hub, two nodes, HAProxy and S3, serves a render and a stored render through HAProxy, and Ctrl-C stops every process', {
    timeout: 240_000,
  }, async () => {
    const ports = { port: await freePort(), stats: await freePort(), hub: await freePort(), nodes: [await freePort(), await freePort()], s3: await freePort() };
    const demo = spawn(
      process.execPath,
      [
        cliEntry,
        'demo',
        '--port',
        String(ports.port),
        '--stats-port',
        String(ports.stats),
        '--hub-port',
        String(ports.hub),
        '--node-ports',
        ports.nodes.join(','),
        '--s3-port',
        String(ports.s3),
      ],
      { cwd: repoRoot, env: { PATH: process.env.PATH, HOME: process.env.HOME }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    demo.stderr.on('data', (d) => (output += d));
    const exited = new Promise<number | null>((resolve) => demo.once('exit', (code) => resolve(code)));
    try {
      const pids = await new Promise<Record<string, number>>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the demo did not say it is ready; output:\n${output}`)), 200_000);
        readline.createInterface({ input: demo.stdout }).on('line', (line) => {
          output += `${line}\n`;
          if (line.includes('"demo ready"')) {
            clearTimeout(timer);
            resolve((JSON.parse(line) as { pids: Record<string, number> }).pids);
          }
        });
        void exited.then((code) => reject(new Error(`the demo exited with ${code}; output:\n${output}`)));
      });
      const front = `http://127.0.0.1:${ports.port}`;
      for (const url of [front, `${front}/docs`, `http://127.0.0.1:${ports.hub}/nodes`, `http://127.0.0.1:${ports.stats}/`]) expect(output).toContain(url);
      expect(Object.keys(pids).sort()).toEqual(['haproxy', 'hub', 'node-1', 'node-2']);

      const nodes = (await (await fetch(`http://127.0.0.1:${ports.hub}/nodes`)).json()) as { state: string }[];
      expect(nodes.map((n) => n.state)).toEqual(['up', 'up']);
      const shot = await fetch(`${front}/screenshot`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ html: '<p>demo</p>' }),
      });
      expect(shot.status).toBe(200);
      expect(shot.headers.get('content-type')).toBe('image/png');
      const stored = await fetch(`${front}/screenshot`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ html: '<p>demo</p>', store: true }),
      });
      expect(stored.status).toBe(200);
      const link = (await stored.json()) as { bucket: string; url: string };
      expect(link.bucket).toBe('shots');
      expect((await fetch(link.url)).status).toBe(200);
      expect((await fetch(`${front}/docs`)).status).toBe(200);

      const browsers = [...(await nodeChromiumPids(pids['node-1'])), ...(await nodeChromiumPids(pids['node-2']))];
      expect(browsers.length).toBeGreaterThan(0);

      demo.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(output).toContain('stopped: HAProxy, nodes, hub and S3');
      for (const [name, pid] of Object.entries(pids)) expect(await alive(pid), `${name} (${pid}) still running`).toBe(false);
      for (const pid of browsers) expect(await alive(pid), `Chromium ${pid} still running`).toBe(false);
    } finally {
      if (demo.exitCode === null) demo.kill('SIGKILL');
    }
  });
});
