import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { isPng } from './images.js';
import { chromiumPids } from './processes.js';
import { sleep, waitFor } from './wait.js';

export { sleep, waitFor };

/** What a client saw from one request to a node. */
export interface Answer {
  status: number;
  headers: Headers;
  bytes: Buffer;
  /** The parsed body when the node answered JSON. */
  json?: { error?: { code: string; message: string; details?: Record<string, unknown> } } & Record<string, unknown>;
  /** Wall time from sending to the end of the body. */
  ms: number;
}

/** Any request to a node; the body is sent as given (a string is not re-encoded). */
export async function request(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string | Buffer; timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<Answer> {
  const started = performance.now();
  const res = await fetch(url, {
    method: init.method ?? 'GET',
    headers: init.headers,
    body: init.body,
    signal: AbortSignal.any([AbortSignal.timeout(init.timeoutMs ?? 90_000), ...(init.signal ? [init.signal] : [])]),
  });
  return readAnswer(res, started);
}

/** Reads a whole response into an Answer: what a real node sent over HTTP or an in-process app returned. */
export async function readAnswer(res: Response, started: number): Promise<Answer> {
  const bytes = Buffer.from(await res.arrayBuffer());
  const type = res.headers.get('content-type') ?? '';
  let json: Answer['json'];
  if (type.startsWith('application/json')) json = JSON.parse(bytes.toString('utf8'));
  return { status: res.status, headers: res.headers, bytes, json, ms: performance.now() - started };
}

/** POST /screenshot with a JSON body; `cookie` becomes the request's Cookie header (e.g. a session). */
export function shoot(
  base: string,
  body: unknown,
  opts: { headers?: Record<string, string>; cookie?: string; timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<Answer> {
  return request(`${base}/screenshot`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(opts.cookie ? { cookie: opts.cookie } : {}), ...opts.headers },
    body: JSON.stringify(body),
    timeoutMs: opts.timeoutMs,
    signal: opts.signal,
  });
}

/** GET /screenshot with flat query parameters. */
export function shootGet(base: string, query: Record<string, string>, opts: { headers?: Record<string, string> } = {}): Promise<Answer> {
  return request(`${base}/screenshot?${new URLSearchParams(query)}`, { headers: opts.headers });
}

/** Throws with the node's error body when the answer is not a 200 (of any image format), so a failing test says why. */
export function ok(answer: Answer): Buffer {
  if (answer.status !== 200) throw new Error(`expected 200, got ${answer.status}: ${answer.bytes.toString('utf8').slice(0, 500)}`);
  return answer.bytes;
}

/** Throws with the node's answer unless it is a 200 PNG, so a failing test says what came back. */
export function expectPng(answer: Answer): Buffer {
  if (answer.status !== 200 || !isPng(answer.bytes)) {
    throw new Error(`expected a 200 PNG, got ${answer.status}: ${answer.bytes.toString('utf8').slice(0, 400)}`);
  }
  return answer.bytes;
}

export interface NodeStatusBody {
  status: string;
  pages: { max: number; inUse: number; limit: number };
  queue: { length: number; max: number };
}

export async function nodeStatus(base: string): Promise<{ code: number; body: NodeStatusBody }> {
  const answer = await request(`${base}/status`, { timeoutMs: 10_000 });
  return { code: answer.status, body: answer.json as unknown as NodeStatusBody };
}

/** Sample values of one metric family from Prometheus text, keyed by `label`'s value ('' when unlabelled). */
export function metricValues(text: string, name: string, label?: string): Record<string, number> {
  const out: Record<string, number> = {};
  const pattern = label ? new RegExp(`^${name}\\{${label}="([^"]*)"\\} (\\S+)$`, 'gm') : new RegExp(`^${name}() (\\S+)$`, 'gm');
  for (const m of text.matchAll(pattern)) out[m[1]] = Number(m[2]);
  return out;
}

/** shotfleet_key_requests_total from Prometheus text, as {"<key> <code>": value}. */
export function keyRequestCounts(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^shotfleet_key_requests_total\{key="([^"]*)",code="(\d+)"\} (\S+)$/gm)) out[`${m[1]} ${m[2]}`] = Number(m[3]);
  return out;
}

/** Pids of a node's Chromium processes of any kind (browser, renderers, utilities). */
export const nodeChromiumPids = (nodePid: number) => chromiumPids(`shotfleet-chrome-${nodePid}-`);

/** A node's renderer processes: they hold web content (what the sandbox confines, what a renderer crash takes down). */
export async function rendererPids(nodePid: number): Promise<number[]> {
  const out: number[] = [];
  for (const pid of await nodeChromiumPids(nodePid)) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes('--type=renderer')) out.push(pid);
  }
  return out;
}

/** Pids of a node's top-level browser processes: the ones without a `--type=` (renderer, gpu, …). */
export async function browserPids(nodePid: number): Promise<number[]> {
  const out: number[] = [];
  for (const pid of await nodeChromiumPids(nodePid)) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline && !cmdline.includes('--type=')) out.push(pid);
  }
  return out;
}

/**
 * Pids of chrome_crashpad_handler processes started under an environment holding `marker`: they detach
 * from Chromium (their parent is init) and carry no profile path, but they inherit the node's environment.
 */
export async function crashpadPids(marker: string): Promise<number[]> {
  const { readdir } = await import('node:fs/promises');
  const out: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const comm = await readFile(`/proc/${entry}/comm`, 'utf8').catch(() => '');
    if (!comm.startsWith('chrome_crashpad')) continue;
    const environ = await readFile(`/proc/${entry}/environ`, 'utf8').catch(() => '');
    if (environ.split('\0').includes(marker)) out.push(Number(entry));
  }
  return out;
}

/** True while a process with this pid exists and is not a zombie. */
export async function alive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  if (!stat) return false;
  return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
}

export interface Site {
  url: string;
  close(): Promise<void>;
}

/** A loopback web server for pages under test; the handler decides everything (including never answering). */
export async function startSite(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<Site> {
  const server = http.createServer(handler);
  // As in pages.ts: a request meant to hang must not be cut by Node's 5 s keep-alive timer on its socket.
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A page with no margins whose whole viewport is one colour, so a capture can be checked by pixel. */
export const solidPage = (color: string, body = '') =>
  `<!doctype html><html><head><style>html,body{margin:0;height:100%;background:${color}}</style></head><body>${body}</body></html>`;
