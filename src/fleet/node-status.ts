import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { hostPort } from '../haproxy/config.js';
import { maxNodePages } from '../haproxy/layout.js';
import type { NodeEndpoint } from './node-url.js';

/** What the hub reads from a node's GET /status (the fields it needs; the rest is ignored). */
export interface NodeStatus {
  status: 'ready' | 'draining' | 'no_browser' | string;
  saturation: number;
  /** 0 when the node did not say: its registered capacity stands. */
  pagesMax: number;
  shedPerSecond: number;
  renderSecondsAvg: number;
}

export type PingResult = { ok: true; httpStatus: number; status: NodeStatus } | { ok: false; reason: string };

const maxStatusBytes = 64 * 1024;
const keepAlive = { http: new http.Agent({ keepAlive: true, maxSockets: 1 }), https: new https.Agent({ keepAlive: true, maxSockets: 1 }) };

/**
 * One health ping to the address the hub resolved at registration — never a fresh lookup of the name, which a
 * rebinding DNS answer could point elsewhere after the check — with the node's name in Host (and TLS SNI).
 * A 503 with a readable body still counts as an answer: draining is not dead.
 */
export function pingNode(endpoint: NodeEndpoint, address: string, timeoutMs: number): Promise<PingResult> {
  const secure = endpoint.url.startsWith('https:');
  return new Promise<PingResult>((resolve) => {
    const req = (secure ? https : http).request(
      {
        host: address,
        port: endpoint.port,
        path: '/status',
        method: 'GET',
        agent: secure ? keepAlive.https : keepAlive.http,
        headers: { Host: hostPort(endpoint.host, endpoint.port), Accept: 'application/json' },
        ...(secure && !net.isIP(endpoint.host) ? { servername: endpoint.host } : {}),
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (d: Buffer) => {
          size += d.length;
          if (size > maxStatusBytes) req.destroy(new Error(`/status body over ${maxStatusBytes} bytes`));
          else chunks.push(d);
        });
        res.on('end', () => {
          const code = res.statusCode ?? 0;
          if (code !== 200 && code !== 503) return resolve({ ok: false, reason: `HTTP ${code}` });
          let body: unknown;
          try {
            body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            return resolve({ ok: false, reason: `HTTP ${code} without a JSON body` });
          }
          const read = readNodeStatus(body);
          resolve(typeof read === 'string' ? { ok: false, reason: read } : { ok: true, httpStatus: code, status: read });
        });
        res.on('error', (err) => resolve({ ok: false, reason: err.message }));
      },
    );
    const deadline = setTimeout(() => req.destroy(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on('error', (err) => resolve({ ok: false, reason: err.message }));
    req.on('close', () => clearTimeout(deadline));
    req.end();
  });
}

/**
 * The figures of a /status body, or why they are refused. Every figure ends up in HAProxy's config or the
 * hub's metrics, so one that is present but malformed (1e21 pages, 0.5 pages, saturation 7) makes the whole
 * answer a failed ping; a figure left out keeps its neutral value.
 */
export function readNodeStatus(body: unknown): NodeStatus | string {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return '/status is not a JSON object';
  const b = body as Record<string, unknown>;
  if (typeof b.status !== 'string' || !/^[a-z_]{1,32}$/.test(b.status)) return '/status has no well-formed "status" field';
  const problems: string[] = [];
  const figure = (name: string, value: unknown, ok: (v: number) => boolean, what: string): number => {
    if (value === undefined) return 0;
    if (typeof value === 'number' && Number.isFinite(value) && ok(value)) return value;
    problems.push(`${name} ${JSON.stringify(value)} is not ${what}`);
    return 0;
  };
  const pages = b.pages;
  if (pages !== undefined && (typeof pages !== 'object' || pages === null)) problems.push('pages is not an object');
  const status: NodeStatus = {
    status: b.status,
    saturation: figure('saturation', b.saturation, (v) => v >= 0 && v <= 1, 'a number from 0 to 1'),
    pagesMax: figure(
      'pages.max',
      (pages as Record<string, unknown> | undefined)?.max,
      (v) => Number.isInteger(v) && v >= 1 && v <= maxNodePages,
      `a whole number from 1 to ${maxNodePages}`,
    ),
    shedPerSecond: figure('shedPerSecond', b.shedPerSecond, (v) => v >= 0 && v <= 1e9, 'a number ≥ 0'),
    renderSecondsAvg: figure('renderSecondsAvg', b.renderSecondsAvg, (v) => v >= 0 && v <= 86_400, 'a number of seconds ≥ 0'),
  };
  return problems.length > 0 ? `malformed /status: ${problems.join('; ')}` : status;
}
