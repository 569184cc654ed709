import http from 'node:http';
import net from 'node:net';
import type { LookupFunction } from 'node:net';
import type { Logger } from '../log/logger.js';
import { unbracket } from './ip-ranges.js';
import { createLookupLimit } from './lookup-limit.js';
import type { HostVerdict, UrlPolicy } from './url-policy.js';

/**
 * A forward proxy on loopback that every request of one browser context goes through: plain HTTP is forwarded,
 * HTTPS and WebSockets are tunnelled with CONNECT. It resolves each host itself, checks every address against the
 * URL policy and connects to exactly those addresses, so a DNS answer that changes between the check and the
 * connection (rebinding) can't reach a forbidden address, and neither can a redirect, an iframe or a fetch.
 */
export interface PolicyProxy {
  /** e.g. "http://127.0.0.1:41234", for browser.createBrowserContext({ proxyServer, proxyBypassList: ['<-loopback>'] }). */
  readonly proxyServer: string;
  /** Hosts refused since the last call, so a render can tell a refused page or redirect from a network failure. */
  takeRefusals(): string[];
  close(): Promise<void>;
}

/** On the 403 a refused plain-HTTP request gets, so the renderer can tell it from the site's own 403. */
export const refusedHeader = 'X-Shotfleet-Refused';

/** On the 502 the proxy itself answers (a host that does not resolve or cannot be reached): the reason, for the renderer. */
export const unreachableHeader = 'X-Shotfleet-Unreachable';

/** A tunnel or upstream socket silent this long is closed; a render's own deadline is far shorter. */
const idleMs = 120_000;
/** DNS answers are reused this long within one proxy (one render), sparing a lookup per sub-resource. */
const lookupTtlMs = 5_000;

const hopByHop = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

export interface ProxyLookupLimits {
  /** Lookups one page may have outstanding at once (SHOTFLEET_DNS_LOOKUPS_PER_PAGE). */
  lookupsInFlight: number;
  /** Longest a lookup may take, its wait for a free slot included (SHOTFLEET_DNS_TIMEOUT_MS). */
  lookupTimeoutMs: number;
}

export async function startPolicyProxy(
  policy: UrlPolicy,
  log: Logger,
  limits: ProxyLookupLimits = { lookupsInFlight: 8, lookupTimeoutMs: 5000 },
): Promise<PolicyProxy> {
  const lookupLimit = createLookupLimit(limits.lookupsInFlight, limits.lookupTimeoutMs);
  const agent = new http.Agent({ keepAlive: true, timeout: idleMs });
  const refusals = new Set<string>();
  const tunnels = new Set<net.Socket>();
  const lookups = new Map<string, { expires: number; verdict: Promise<PinnedVerdict> }>();

  function judge(host: string): Promise<PinnedVerdict> {
    const now = Date.now();
    const cached = lookups.get(host);
    if (cached && cached.expires > now) return cached.verdict;
    // The pinned lookup is made once per answer, not once per request.
    const verdict = lookupLimit.run(host, () => policy.resolveHost(host)).then((v): PinnedVerdict => (v.ok ? { ...v, lookup: pinnedLookup(v.addresses) } : v));
    // The proxy lives as long as its pooled page: forget stale answers rather than every host ever seen.
    if (lookups.size >= 256) {
      for (const [name, entry] of lookups) if (entry.expires <= now) lookups.delete(name);
      // A page naming hundreds of hosts within the TTL: the oldest answer goes, the table stays bounded.
      if (lookups.size >= 256) lookups.delete(lookups.keys().next().value!);
    }
    lookups.set(host, { expires: now + lookupTtlMs, verdict });
    verdict.catch(() => lookups.delete(host));
    return verdict;
  }

  function refused(host: string, reason: string) {
    // Only the page's own navigation chain is looked up in it (a few hosts); a flood of refused sub-requests
    // must not grow it until the render ends.
    if (refusals.size < 64) refusals.add(host);
    log.info({ host, reason }, 'url policy refused a request');
  }

  async function forward(req: http.IncomingMessage, res: http.ServerResponse) {
    let target: URL;
    try {
      target = new URL(req.url ?? '');
      if (target.protocol !== 'http:') throw new Error('not http');
    } catch {
      return plainReply(res, 400, 'this is a forward proxy: send absolute http:// request URLs, and CONNECT for https');
    }
    let verdict: PinnedVerdict;
    try {
      verdict = await judge(target.hostname);
    } catch (err) {
      const why = `"${target.hostname}" does not resolve (${(err as NodeJS.ErrnoException).code ?? err})`;
      return plainReply(res, 502, why, { [unreachableHeader]: why });
    }
    if (!verdict.ok) {
      refused(target.hostname, verdict.reason);
      return plainReply(res, 403, `shotfleet's URL policy refused ${target.hostname}: ${verdict.reason}`, { [refusedHeader]: '1' });
    }
    if (res.destroyed) return;

    // Headers pass as the raw name/value lists Node parsed, not rebuilt as objects: a page makes dozens of requests.
    const upstream = http.request({
      host: unbracket(target.hostname),
      port: target.port || 80,
      method: req.method,
      path: target.pathname + target.search,
      headers: endToEnd(req.rawHeaders),
      agent,
      lookup: verdict.lookup,
    });
    upstream.on('response', (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, endToEnd(answer.rawHeaders));
      answer.pipe(res);
      answer.on('error', () => res.destroy());
    });
    // The agent's own socket timeout (idleMs) reports a silent upstream here, with no timer re-armed per request.
    upstream.on('timeout', () => upstream.destroy(new Error('upstream idle')));
    upstream.on('error', (err) => {
      if (res.headersSent) res.destroy();
      else {
        const why = `cannot reach ${target.host} (${(err as NodeJS.ErrnoException).code ?? err.message})`;
        plainReply(res, 502, why, { [unreachableHeader]: why });
      }
    });
    // A client that goes away must not leave the upstream request (and its pooled socket) busy.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.on('error', () => upstream.destroy());
    req.pipe(upstream);
  }

  async function tunnel(req: http.IncomingMessage, client: net.Socket, head: Buffer) {
    client.on('error', () => client.destroy());
    tunnels.add(client);
    client.on('close', () => tunnels.delete(client));

    const authority = parseAuthority(req.url ?? '');
    if (!authority) return rawReply(client, '400 Bad Request');
    let verdict: PinnedVerdict;
    try {
      verdict = await judge(authority.hostname);
    } catch {
      return rawReply(client, '502 Bad Gateway');
    }
    if (!verdict.ok) {
      refused(authority.hostname, verdict.reason);
      return rawReply(client, '403 Forbidden', `${refusedHeader}: 1\r\n`);
    }
    if (client.destroyed) return;

    const upstream = net.connect({
      host: unbracket(authority.hostname),
      port: authority.port,
      lookup: verdict.lookup,
    });
    tunnels.add(upstream);
    let open = false;
    upstream.setTimeout(idleMs, () => upstream.destroy());
    client.setTimeout(idleMs, () => client.destroy());
    upstream.once('connect', () => {
      open = true;
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => {
      if (open) client.destroy();
      else rawReply(client, '502 Bad Gateway');
    });
    upstream.on('close', () => {
      tunnels.delete(upstream);
      if (open) client.destroy();
    });
    client.on('close', () => upstream.destroy());
  }

  const server = http.createServer({ keepAliveTimeout: 30_000 });
  server.on('request', (req, res) => {
    forward(req, res).catch((err) => {
      log.warn({ err }, 'policy proxy failed to forward a request');
      res.destroy();
    });
  });
  server.on('connect', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    tunnel(req, socket, head).catch((err) => {
      log.warn({ err }, 'policy proxy failed to open a tunnel');
      socket.destroy();
    });
  });
  server.on('clientError', (_err, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as net.AddressInfo;

  return {
    proxyServer: `http://127.0.0.1:${port}`,
    takeRefusals() {
      const hosts = [...refusals];
      refusals.clear();
      return hosts;
    },
    async close() {
      lookupLimit.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      for (const socket of tunnels) socket.destroy();
      agent.destroy();
      await closed;
    },
  };
}

type PinnedVerdict = Exclude<HostVerdict, { ok: true }> | (Extract<HostVerdict, { ok: true }> & { lookup: LookupFunction });

/** A lookup that answers with the addresses already checked, so the connection can't go anywhere else. */
function pinnedLookup(addresses: string[]): LookupFunction {
  const entries = addresses.map((address) => ({ address, family: net.isIP(address) }));
  return (_hostname, options, callback) => {
    if (options.all) (callback as (err: null, all: typeof entries) => void)(null, entries);
    else callback(null, entries[0].address, entries[0].family);
  };
}

/** CONNECT's target, "host:port" or "[v6]:port", with the host normalised the way Chromium and the policy see it. */
function parseAuthority(authority: string): { hostname: string; port: number } | undefined {
  if (!/^[^/?#@\s]+:\d{1,5}$/.test(authority)) return undefined;
  try {
    const url = new URL(`http://${authority}`);
    const port = Number(url.port || 80);
    return port > 0 ? { hostname: url.hostname, port } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A raw header list ([name, value, name, value, …]) without the hop-by-hop headers and those its Connection header
 * names. Most requests name none but keep-alive: then no set is built.
 */
function endToEnd(raw: string[]): string[] {
  let named: Set<string> | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length !== 10 || raw[i].toLowerCase() !== 'connection') continue;
    for (const token of raw[i + 1].split(',')) {
      const name = token.trim().toLowerCase();
      if (!name || name === 'keep-alive' || name === 'close') continue;
      named ??= new Set();
      named.add(name);
    }
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (!hopByHop.has(name) && !named?.has(name)) out.push(raw[i], raw[i + 1]);
  }
  return out;
}

function plainReply(res: http.ServerResponse, status: number, message: string, headers: Record<string, string> = {}) {
  if (res.headersSent || res.destroyed) return res.destroy();
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', ...headers });
  res.end(`${message}\n`);
}

function rawReply(socket: net.Socket, status: string, headers = '') {
  if (socket.destroyed) return;
  socket.end(`HTTP/1.1 ${status}\r\n${headers}Content-Length: 0\r\nConnection: close\r\n\r\n`);
}
