import { Resolver as AresResolver } from 'node:dns/promises';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { withTimeout } from '../async/timeout.js';
import type { Resolver } from './url-policy.js';

export interface DnsOptions {
  /** Name servers (ip or ip:port); empty: the system's, from /etc/resolv.conf. */
  servers: string[];
  /** A lookup that has not answered by then fails with ETIMEOUT. */
  timeoutMs: number;
  /** Read for names it lists, as getaddrinfo would before asking DNS. */
  hostsFile?: string;
}

/**
 * Lookups for the URL policy, bounded in time and off libuv's thread pool. dns.lookup (getaddrinfo) runs on
 * that pool's 4 threads with no timeout: a page naming dozens of hosts under a slow name server held every
 * thread, stalling every other render's lookups, S3 and file I/O. c-ares queries are sockets on the event loop,
 * and each one here gives up after `timeoutMs`. /etc/hosts is honoured first, as Chromium's own resolver would.
 */
export interface BoundedResolver {
  resolve: Resolver;
  /** Cancels lookups still waiting: an unanswered query would otherwise keep a stopping process alive. */
  close(): void;
}

export function createBoundedResolver(opts: DnsOptions): BoundedResolver {
  // Two tries, the second after twice the first's wait (c-ares backs off): about timeoutMs in all.
  const ares = new AresResolver({ timeout: Math.max(50, Math.floor(opts.timeoutMs / 3)), tries: 2 });
  if (opts.servers.length > 0) ares.setServers(opts.servers);
  const hosts = hostsTable(opts.hostsFile ?? '/etc/hosts');

  const resolve: Resolver = async (host) => {
    const listed = (await hosts()).get(host.toLowerCase());
    if (listed) return listed;
    const [v4, v6] = await withTimeout(Promise.allSettled([ares.resolve4(host), ares.resolve6(host)]), opts.timeoutMs, () => {
      throw dnsError('ETIMEOUT', host, `no answer within ${opts.timeoutMs} ms (SHOTFLEET_DNS_TIMEOUT_MS)`);
    });
    const addresses = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
    if (addresses.length > 0) return addresses;
    const timedOut = [v4, v6].some((r) => r.status === 'rejected' && (r.reason as NodeJS.ErrnoException).code === 'ETIMEOUT');
    throw timedOut ? dnsError('ETIMEOUT', host, 'the name server did not answer') : dnsError('ENOTFOUND', host, 'no address');
  };
  return { resolve, close: () => ares.cancel() };
}

function dnsError(code: string, host: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code} ${host}: ${message}`), { code });
}

/** /etc/hosts as name → addresses, re-read at most every 5 s (it rarely changes; a missing file is empty). */
function hostsTable(file: string): () => Promise<Map<string, string[]>> {
  let cached: { at: number; table: Promise<Map<string, string[]>> } | undefined;
  return () => {
    if (!cached || Date.now() - cached.at > 5000) cached = { at: Date.now(), table: readHosts(file) };
    return cached.table;
  };
}

async function readHosts(file: string): Promise<Map<string, string[]>> {
  const table = new Map<string, string[]>();
  const text = await readFile(file, 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const [address, ...names] = line.replace(/#.*/, '').trim().split(/\s+/);
    if (!address || net.isIP(address) === 0) continue;
    for (const name of names) {
      const key = name.toLowerCase();
      const list = table.get(key) ?? [];
      if (!list.includes(address)) list.push(address);
      table.set(key, list);
    }
  }
  return table;
}
