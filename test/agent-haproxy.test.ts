import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgent } from '../src/agent/agent.js';
import { createLogger } from '../src/log/logger.js';
import { freePort } from './helpers/processes.js';

/** One Runtime API command over the stats socket. */
function runtime(socketPath: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    let text = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.end(`${command}\n`));
    socket.on('data', (d) => (text += d));
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
  });
}

/** The server's current weight and state from `show stat` (CSV). */
async function serverStat(socketPath: string): Promise<{ weight: number; status: string }> {
  const csv = await runtime(socketPath, 'show stat');
  const header = csv.split('\n')[0].replace(/^# /, '').split(',');
  const row = csv.split('\n').find((line) => line.startsWith('nodes,n1,'));
  if (!row) throw new Error(`no nodes/n1 row in:\n${csv}`);
  const cells = row.split(',');
  return { weight: Number(cells[header.indexOf('weight')]), status: cells[header.indexOf('status')] };
}

async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const started = Date.now();
  let last = await read();
  while (!ok(last) && Date.now() - started < timeoutMs) {
    await new Promise((r) => setTimeout(r, 100));
    last = await read();
  }
  return last;
}

describe('agent with a real HAProxy 2.6', () => {
  const state = { draining: false, freeShare: 0.5 };
  let dir: string;
  let haproxy: ChildProcess | undefined;
  let backend: http.Server;
  let agent: Awaited<ReturnType<typeof startAgent>>;
  let socketPath: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'shotfleet-agent-'));
    socketPath = path.join(dir, 'admin.sock');
    backend = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    agent = await startAgent({ port: 0, host: '127.0.0.1', state: () => state, log: createLogger('silent') });
    const frontendPort = await freePort();
    const config = [
      'global',
      `  stats socket ${socketPath} level admin`,
      'defaults',
      '  mode http',
      '  timeout connect 2s',
      '  timeout client 5s',
      '  timeout server 5s',
      'frontend web',
      `  bind 127.0.0.1:${frontendPort}`,
      '  default_backend nodes',
      'backend nodes',
      `  server n1 127.0.0.1:${(backend.address() as net.AddressInfo).port} weight 100 check inter 200ms agent-check agent-addr 127.0.0.1 agent-port ${agent.port} agent-inter 200ms`,
      '',
    ].join('\n');
    await writeFile(path.join(dir, 'haproxy.cfg'), config);
    haproxy = spawn('haproxy', ['-db', '-f', path.join(dir, 'haproxy.cfg')], { stdio: 'ignore' });
  });

  afterAll(async () => {
    if (haproxy && haproxy.exitCode === null) {
      const exited = new Promise((r) => haproxy!.once('exit', r));
      haproxy.kill('SIGTERM');
      await exited;
    }
    await agent?.close();
    await new Promise((r) => backend?.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  it('HAProxy applies the weight, drains on drain, and returns to ready', async () => {
    const half = await until(
      () => serverStat(socketPath).catch(() => ({ weight: -1, status: '' })),
      (s) => s.weight === 50,
    );
    expect(half).toEqual({ weight: 50, status: 'UP' });

    state.freeShare = 0;
    expect(
      await until(
        () => serverStat(socketPath),
        (s) => s.weight === 1,
      ),
    ).toMatchObject({ weight: 1, status: 'UP' });

    state.draining = true;
    expect(
      (
        await until(
          () => serverStat(socketPath),
          (s) => s.status.startsWith('DRAIN'),
        )
      ).status,
    ).toBe('DRAIN (agent)');

    state.draining = false;
    state.freeShare = 1;
    expect(
      await until(
        () => serverStat(socketPath),
        (s) => s.status === 'UP' && s.weight === 100,
      ),
    ).toEqual({ weight: 100, status: 'UP' });
  });
});
