import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './processes.js';
import { sleep, waitFor } from './wait.js';

export { freePort, sleep, waitFor };

/** `haproxy -c -f` on the text: the exit code and what it printed. */
export function checkHaproxyConfig(text: string): { ok: boolean; output: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shotfleet-haproxy-check-'));
  try {
    const file = path.join(dir, 'haproxy.cfg');
    fs.writeFileSync(file, text);
    const r = spawnSync('haproxy', ['-c', '-f', file], { encoding: 'utf8' });
    return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export interface RunningHaproxy {
  proc: ChildProcess;
  dir: string;
  pid: number;
  /** Output so far (HAProxy logs its warnings and alerts to stderr in -db mode). */
  output(): string;
  stop(): Promise<void>;
}

/** Runs `haproxy -db -f cfg` in the foreground and waits until `waitPort` on 127.0.0.1 accepts connections. */
export async function startHaproxy(config: string, waitPort: number, dir?: string): Promise<RunningHaproxy> {
  const workDir = dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'shotfleet-haproxy-'));
  const file = path.join(workDir, 'haproxy.cfg');
  fs.writeFileSync(file, config);
  const proc = spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const running: RunningHaproxy = {
    proc,
    dir: workDir,
    pid: proc.pid!,
    output: () => out,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      if (!dir) fs.rmSync(workDir, { recursive: true, force: true });
    },
  };
  const deadline = Date.now() + 10_000;
  while (!(await accepts(waitPort))) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      await running.stop();
      throw new Error(`haproxy did not start:\n${out}`);
    }
    await sleep(50);
  }
  return running;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export interface FakeFleetNode {
  id: string;
  url: string;
  port: number;
  /** Requests seen (method and path), /status included. */
  hits: string[];
  /** The Host header of each request, in order. */
  hosts: string[];
  /** What GET /status reports; change it to simulate load or draining. */
  status: { status: string; saturation: number; pagesMax: number; shedPerSecond: number; renderSecondsAvg: number };
  /** When set, every non-/status request is answered 503 saturated. */
  saturated: boolean;
  close(): Promise<void>;
}

/**
 * A fleet member as HAProxy and the hub see it: /status in the node's shape, anything else answers 200 with the
 * node id in X-Shotfleet-Node (or 503 while `saturated`). The batch client's fake, whose answers are scripted
 * per page URL, is startScriptedShotNode in scripted-shot-node.ts.
 */
export async function startFakeFleetNode(id: string, port = 0, host = '127.0.0.1'): Promise<FakeFleetNode> {
  const node: FakeFleetNode = {
    id,
    url: '',
    port: 0,
    hits: [],
    hosts: [],
    status: { status: 'ready', saturation: 0, pagesMax: 2, shedPerSecond: 0, renderSecondsAvg: 0 },
    saturated: false,
    close: async () => undefined,
  };
  const server = http.createServer((req, res) => {
    node.hits.push(`${req.method} ${req.url}`);
    node.hosts.push(req.headers.host ?? '');
    res.setHeader('X-Shotfleet-Node', id);
    if (!req.headers.host) {
      // Like the real node (Hono's Node adapter): no Host header, no request. HAProxy checks must send one.
      res.writeHead(400).end();
      return;
    }
    if (req.url === '/status') {
      const s = node.status;
      res.writeHead(s.status === 'ready' ? 200 : 503, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({
          status: s.status,
          node: id,
          saturation: s.saturation,
          pages: { max: s.pagesMax, inUse: Math.round(s.saturation * s.pagesMax), limit: s.pagesMax },
          queue: { length: 0, max: 2 * s.pagesMax },
          uploads: { inFlight: 0, max: 8, queued: 0, backlogBytes: 0 },
          sessions: 0,
          shedPerSecond: s.shedPerSecond,
          renderSecondsAvg: s.renderSecondsAvg,
        }),
      );
      return;
    }
    req.resume();
    req.on('end', () => {
      if (node.saturated) {
        res.writeHead(503, { 'Content-Type': 'application/json', 'Retry-After': '1' });
        res.end(JSON.stringify({ error: { code: 'saturated', message: 'busy', details: { reason: 'queue_full' } } }));
      } else {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.end(`hello from ${id}`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  node.port = (server.address() as net.AddressInfo).port;
  node.url = `http://${host}:${node.port}`;
  node.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return node;
}
