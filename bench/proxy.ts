/**
 * The URL policy's proxy alone: its CPU per request and per MB, for plain http (forwarded) and CONNECT (tunnelled).
 * The proxy runs in a child process of its own, so its CPU is read from /proc apart from the client and the upstream
 * (both here, on 127.0.0.1). Clients keep their connections to the proxy open as Chromium does.
 *
 *   npm run bench:proxy -- [--rounds 3] [--concurrency 4] [--cpu-prof DIR]
 *
 * With --cpu-prof the proxy process writes a V8 CPU profile into DIR (open it in Chrome's DevTools).
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { createLogger } from '../src/log/logger.js';
import { createUrlPolicy, startPolicyProxy } from '../src/policy/index.js';
import { treeCpuMs } from './lib/cpu.js';
import { quantile, round } from './lib/stats.js';

const { values: flags } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '4' },
    'cpu-prof': { type: 'string' },
    'serve-proxy': { type: 'boolean', default: false },
  },
});

if (flags['serve-proxy']) {
  const policy = createUrlPolicy({ allowPrivate: false, allowHosts: ['127.0.0.1'], denyHosts: [] });
  const proxy = await startPolicyProxy(policy, createLogger('silent'));
  console.log(proxy.proxyServer);
  process.on('SIGTERM', () => void proxy.close().then(() => process.exit(0)));
} else {
  await measure();
}

async function measure(): Promise<void> {
  const rounds = Number(flags.rounds);
  const concurrency = Number(flags.concurrency);
  const small = Buffer.alloc(2 * 1024, 'a');
  const big = Buffer.alloc(256 * 1024, 'b');
  const upstream = http.createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    const body = req.url === '/big' ? big : small;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length, 'cache-control': 'max-age=600' }).end(body);
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const upstreamPort = (upstream.address() as AddressInfo).port;

  const child = spawn(
    process.execPath,
    [...(flags['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', flags['cpu-prof']] : []), '--import', 'tsx', new URL(import.meta.url).pathname, '--serve-proxy'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const proxyUrl = new URL(await new Promise<string>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(d.toString().trim()))));
  const proxyPort = Number(proxyUrl.port);

  /** Plain http: absolute-URL requests on kept-alive connections to the proxy. */
  const plainAgent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const plain = (path: string) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: proxyPort, path: `http://127.0.0.1:${upstreamPort}${path}`, agent: plainAgent }, (res) => {
        let bytes = 0;
        res.on('data', (chunk: Buffer) => (bytes += chunk.length));
        res.on('end', () => resolve(bytes));
      });
      req.on('error', reject);
      req.end();
    });

  /** A CONNECT tunnel through the proxy, as an http agent that sends every request down it. */
  const tunnel = () =>
    new Promise<net.Socket>((resolve, reject) => {
      const socket = net.connect(proxyPort, '127.0.0.1', () =>
        socket.write(`CONNECT 127.0.0.1:${upstreamPort} HTTP/1.1\r\nHost: 127.0.0.1:${upstreamPort}\r\n\r\n`),
      );
      socket.once('data', (head: Buffer) => (head.toString().startsWith('HTTP/1.1 200') ? resolve(socket) : reject(new Error(head.toString()))));
      socket.once('error', reject);
    });
  const overTunnel = (socket: net.Socket, path: string) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port: upstreamPort, path, createConnection: () => socket, headers: { connection: 'keep-alive' } },
        (res) => {
          let bytes = 0;
          res.on('data', (chunk: Buffer) => (bytes += chunk.length));
          res.on('end', () => resolve(bytes));
        },
      );
      req.on('error', reject);
      req.end();
    });

  const phases: Record<string, { requests: number; run: () => Promise<number> }> = {
    'http small (2 KB)': { requests: 2000, run: () => inParallel(concurrency, 2000, () => plain('/small')) },
    'http big (256 KB)': { requests: 200, run: () => inParallel(concurrency, 200, () => plain('/big')) },
    'CONNECT, a tunnel per 2 KB request': {
      requests: 400,
      run: () =>
        inParallel(concurrency, 400, async () => {
          const socket = await tunnel();
          const bytes = await overTunnel(socket, '/small');
          socket.destroy();
          return bytes;
        }),
    },
    'CONNECT big (256 KB), kept tunnels': {
      requests: 200,
      run: async () => {
        const sockets = await Promise.all(Array.from({ length: concurrency }, tunnel));
        let next = 0;
        const counts = await Promise.all(
          sockets.map(async (socket) => {
            let bytes = 0;
            while (next < 200) {
              next++;
              bytes += await overTunnel(socket, '/big');
            }
            socket.destroy();
            return bytes;
          }),
        );
        return counts.reduce((a, b) => a + b, 0);
      },
    },
  };

  const results: Record<string, { cpuPerRequestMs: number[]; cpuPerMbMs: number[] }> = {};
  for (let r = 0; r < rounds + 1; r++) {
    for (const [name, phase] of Object.entries(phases)) {
      const before = treeCpuMs(child.pid!);
      const bytes = await phase.run();
      const cpu = treeCpuMs(child.pid!) - before;
      if (r === 0) continue; // warm-up
      results[name] ??= { cpuPerRequestMs: [], cpuPerMbMs: [] };
      const entry = results[name];
      entry.cpuPerRequestMs.push(cpu / phase.requests);
      entry.cpuPerMbMs.push(cpu / (bytes / 1024 / 1024));
    }
  }
  console.log('| traffic | proxy CPU ms per request | proxy CPU ms per MB |\n|---|---|---|');
  for (const [name, entry] of Object.entries(results)) {
    console.log(`| ${name} | ${round(quantile(entry.cpuPerRequestMs, 0.5), 3)} | ${round(quantile(entry.cpuPerMbMs, 0.5), 1)} |`);
  }
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
  plainAgent.destroy();
  upstream.closeAllConnections();
  upstream.close();
}

async function inParallel(concurrency: number, total: number, task: () => Promise<number>): Promise<number> {
  let started = 0;
  let bytes = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (started < total) {
        started++;
        const got = await task();
        bytes += got;
      }
    }),
  );
  return bytes;
}
