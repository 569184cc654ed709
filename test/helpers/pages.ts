import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** What one route answers: a string is served as text/html with status 200. */
export type Route =
  | string
  | { body: string | Buffer; type?: string; status?: number; headers?: Record<string, string> }
  | ((req: http.IncomingMessage, res: http.ServerResponse) => void);

export interface SeenRequest {
  method: string;
  /** Path with its query string. */
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface TestSite {
  /** http://127.0.0.1:PORT */
  url: string;
  /** Adds or replaces a route; the path is matched without its query string. */
  route(path: string, answer: Route): void;
  /** How many requests reached `path` (any query string). */
  hits(path: string): number;
  /** Every request that reached `path`, oldest first. */
  requests(path: string): SeenRequest[];
  close(): Promise<void>;
}

/**
 * A small web site on 127.0.0.1 for a node to render: routes answer with the HTML (or bytes) a test
 * hands in, and every request is recorded with its headers and body, so a test can tell what the
 * page asked for — or never asked for. Unknown paths answer 404.
 */
export async function startTestSite(routes: Record<string, Route> = {}, opts: { host?: string } = {}): Promise<TestSite> {
  const host = opts.host ?? '127.0.0.1';
  const table = new Map<string, Route>(Object.entries(routes));
  const seen = new Map<string, SeenRequest[]>();

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0];
      const list = seen.get(path) ?? [];
      list.push({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      seen.set(path, list);
      const answer = table.get(path);
      if (answer === undefined) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('no such test route');
      } else if (typeof answer === 'function') {
        answer(req, res);
      } else if (typeof answer === 'string') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(answer);
      } else {
        res.writeHead(answer.status ?? 200, { 'content-type': answer.type ?? 'text/html; charset=utf-8', ...answer.headers }).end(answer.body);
      }
    });
  });
  // Node closes a kept-alive socket 5 s after its last answer even when a request that never answers (the hostile
  // routes) is waiting on it: the policy proxy then answers that request 502 and the page's load event comes after
  // all. A page's requests must hang as long as the test means them to.
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const url = `http://${host}:${(server.address() as AddressInfo).port}`;

  return {
    url,
    route: (path, answer) => void table.set(path, answer),
    hits: (path) => seen.get(path)?.length ?? 0,
    requests: (path) => [...(seen.get(path) ?? [])],
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A whole page whose body is `body`, with no margins so coordinates in the page are image coordinates. */
export function page(body: string, head = ''): string {
  return `<!doctype html><html><head><meta charset="utf-8"><style>html,body{margin:0;padding:0}</style>${head}</head><body>${body}</body></html>`;
}

/** What a probe page saw of the state a browser keeps for its origin. */
export interface StateSeen {
  /** document.cookie as the page sees it. */
  cookie: string;
  local: string | null;
  session: string | null;
  indexedDb: string[];
  cacheStorage: string[];
  serviceWorkers: number;
  /** Who answered /sw-probe: "network" (the test site) or "worker" (a service worker). */
  swProbe: string;
  windowName: string;
  error?: string;
}

const probeScript = `
async function look() {
  return {
    cookie: document.cookie,
    local: localStorage.getItem('probe'),
    session: sessionStorage.getItem('probe'),
    indexedDb: (await indexedDB.databases()).map((d) => d.name),
    cacheStorage: await caches.keys(),
    serviceWorkers: (await navigator.serviceWorker.getRegistrations()).length,
    swProbe: await (await fetch('/sw-probe', { cache: 'no-store' })).text(),
    windowName: window.name,
  };
}
async function write() {
  document.cookie = 'js_cookie=written; max-age=3600; path=/; SameSite=None; Secure';
  if (!document.cookie.includes('js_cookie')) document.cookie = 'js_cookie=written; max-age=3600; path=/';
  if (parent === window) window.name = 'written';
  localStorage.setItem('probe', 'written');
  sessionStorage.setItem('probe', 'written');
  await new Promise((resolve, reject) => {
    const open = indexedDB.open('probe-db', 1);
    open.onupgradeneeded = () => open.result.createObjectStore('s');
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const tx = open.result.transaction('s', 'readwrite');
      tx.objectStore('s').put('written', 'probe');
      tx.oncomplete = () => { open.result.close(); resolve(); };
      tx.onerror = () => reject(tx.error);
    };
  });
  await (await caches.open('probe-cache')).put('/cached', new Response('written'));
  await navigator.serviceWorker.register('/sw.js');
  await navigator.serviceWorker.ready;
  // ready means active, not yet controlling this page: clients.claim() lands with a controllerchange.
  if (!navigator.serviceWorker.controller) {
    await new Promise((resolve) => {
      navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true });
      setTimeout(resolve, 3000);
    });
  }
}
async function run(phase) {
  let seen;
  try {
    if (phase === 'write') await write();
    seen = await look();
  } catch (err) {
    seen = { error: String(err && err.message || err) };
  }
  await fetch('/report?phase=' + phase, { method: 'POST', body: JSON.stringify(seen) });
  const done = document.createElement('div');
  done.id = 'done';
  document.body.appendChild(done);
  if (parent !== window) parent.postMessage('probe-done', '*');
}`;

const serviceWorker = `
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));
self.addEventListener('fetch', (e) => {
  if (new URL(e.request.url).pathname === '/sw-probe') e.respondWith(new Response('worker'));
});`;

/**
 * Routes for isolation tests: /write stores a cookie (from the server and from script), localStorage,
 * sessionStorage, IndexedDB, Cache Storage and a service worker, then reports what it sees; /read only
 * reports. Reports arrive as POST /report?phase=… and the page adds #done once the report is sent,
 * so a render with waitForSelector '#done' returns after the report is in.
 */
export function stateProbeRoutes(): Record<string, Route> {
  return {
    '/write': {
      body: page('<p>write</p>', `<script>${probeScript}\nrun('write')</script>`),
      headers: { 'set-cookie': 'server_cookie=written; Max-Age=3600; Path=/', 'cache-control': 'no-store' },
    },
    '/read': { body: page('<p>read</p>', `<script>${probeScript}\nrun('read')</script>`), headers: { 'cache-control': 'no-store' } },
    '/sw.js': { body: serviceWorker, type: 'text/javascript' },
    '/sw-probe': { body: 'network', type: 'text/plain', headers: { 'cache-control': 'no-store' } },
    '/report': { body: 'ok', type: 'text/plain' },
    // Cacheable for an hour: a fetch reaching the server proves the HTTP cache did not answer it.
    '/cacheable.css': { body: 'p{color:rgb(1,2,3)}', type: 'text/css', headers: { 'cache-control': 'public, max-age=3600' } },
  };
}

/** The last report a probe page sent for `phase` ('write' or 'read'). */
export function lastReport(site: TestSite, phase: 'write' | 'read'): StateSeen {
  const report = site
    .requests('/report')
    .filter((r) => r.url.endsWith(`phase=${phase}`))
    .at(-1);
  if (!report) throw new Error(`no ${phase} report arrived: the probe page did not run`);
  return JSON.parse(report.body) as StateSeen;
}

/** What a probe reports when the browser kept nothing. */
export const nothingKept: StateSeen = {
  cookie: '',
  local: null,
  session: null,
  indexedDb: [],
  cacheStorage: [],
  serviceWorkers: 0,
  swProbe: 'network',
  windowName: '',
};

/**
 * A page that runs the probe (`phase`) in an iframe from `frameSite` (another origin, which must serve
 * stateProbeRoutes): third-party state is partitioned under the top-level site, and must be wiped too.
 * #done appears in the top page once the frame has reported.
 */
export function embeddingPage(frameSite: string, phase: 'write' | 'read'): string {
  return page(
    `<iframe src="${frameSite}/${phase}" width="100" height="50"></iframe>`,
    `<script>addEventListener('message', (e) => { if (e.data === 'probe-done') { const d = document.createElement('div'); d.id = 'done'; document.body.appendChild(d); } })</script>`,
  );
}
