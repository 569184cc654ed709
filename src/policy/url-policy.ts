import { lookup } from 'node:dns/promises';
import net from 'node:net';
import { ShotError } from '../errors/shot-error.js';
import { parseHostList } from './host-list.js';
import { forbiddenRange, unbracket } from './ip-ranges.js';

export interface UrlPolicyOptions {
  allowPrivate: boolean;
  allowHosts: string[];
  denyHosts: string[];
}

export type Verdict = { ok: true } | { ok: false; reason: string };
export type HostVerdict = { ok: true; addresses: string[] } | { ok: false; reason: string };

export interface UrlPolicy {
  /** false when nothing can be refused (allowPrivate and no denyHosts): the caller then skips the proxy. */
  readonly active: boolean;
  /**
   * The page URL a client sent. ShotError invalid_request (details {field}) unless it is an http(s) URL;
   * url_forbidden when its host is denied or resolves to a forbidden address (every address is checked);
   * navigation_failed when the host does not resolve.
   */
  checkPageUrl(url: string, field: string): Promise<URL>;
  /** Syntactic check of a sub-request (scheme, denied host, forbidden IP literal, localhost); no DNS. */
  quickCheck(url: string): Verdict;
  /**
   * The addresses to connect to for `host` (a URL hostname), each one checked. Rejects with the resolver's
   * error when the name does not resolve. The proxy connects to exactly these, so a second DNS answer can't differ.
   */
  resolveHost(host: string): Promise<HostVerdict>;
}

export type Resolver = (host: string) => Promise<string[]>;

/** getaddrinfo, as Chromium uses: /etc/hosts first, every address in the system's preferred order. */
export const systemResolver: Resolver = async (host) => (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

const passiveSchemes = new Set(['data:', 'blob:', 'about:']);
const networkSchemes = new Set(['http:', 'https:', 'ws:', 'wss:']);

export function createUrlPolicy(opts: UrlPolicyOptions, resolve: Resolver = systemResolver): UrlPolicy {
  const allow = parseHostList(opts.allowHosts, 'SHOTFLEET_ALLOW_HOSTS');
  const deny = parseHostList(opts.denyHosts, 'SHOTFLEET_DENY_HOSTS');

  function checkAddress(address: string, allowedByName: boolean): Verdict {
    if (deny.hasAddress(address)) return { ok: false, reason: 'denied by SHOTFLEET_DENY_HOSTS' };
    if (opts.allowPrivate || allowedByName || allow.hasAddress(address)) return { ok: true };
    const range = forbiddenRange(address);
    return range ? { ok: false, reason: `${range} address` } : { ok: true };
  }

  /** What the host name alone decides; `undefined` when its addresses must be looked at. */
  function checkName(hostname: string): Verdict | undefined {
    const host = unbracket(hostname.toLowerCase()).replace(/\.$/, '');
    if (deny.hasName(host)) return { ok: false, reason: 'denied by SHOTFLEET_DENY_HOSTS' };
    if (net.isIP(host)) return checkAddress(host, false);
    if (allow.hasName(host) || opts.allowPrivate) return deny.hasAddressEntries ? undefined : { ok: true };
    // Chromium answers localhost and *.localhost itself, without asking DNS.
    if (host === 'localhost' || host.endsWith('.localhost')) return { ok: false, reason: 'localhost' };
    return undefined;
  }

  /** A host name (not an IP literal) that SHOTFLEET_ALLOW_HOSTS names. */
  function isAllowedName(hostname: string): boolean {
    const host = unbracket(hostname.toLowerCase()).replace(/\.$/, '');
    return !net.isIP(host) && allow.hasName(host);
  }

  async function resolveHost(hostname: string): Promise<HostVerdict> {
    const host = unbracket(hostname.toLowerCase());
    const byName = checkName(host);
    if (byName && !byName.ok) return byName;
    if (net.isIP(host)) return { ok: true, addresses: [host] };
    const addresses = await resolve(host);
    if (addresses.length === 0) throw Object.assign(new Error(`${host} has no address`), { code: 'ENOTFOUND' });
    if (!byName) {
      const allowedByName = allow.hasName(host);
      for (const address of addresses) {
        const verdict = checkAddress(address, allowedByName);
        if (!verdict.ok) return { ok: false, reason: `resolves to a ${verdict.reason}` };
      }
    }
    return { ok: true, addresses };
  }

  return {
    active: !opts.allowPrivate || !deny.empty,
    resolveHost,

    quickCheck(url) {
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        return { ok: false, reason: 'not a valid URL' };
      }
      if (passiveSchemes.has(parsed.protocol)) return { ok: true };
      if (!networkSchemes.has(parsed.protocol)) return { ok: false, reason: `${parsed.protocol} URLs are not allowed` };
      return checkName(parsed.hostname) ?? { ok: true };
    },

    async checkPageUrl(url, field) {
      let parsed: URL | undefined;
      try {
        parsed = new URL(url);
      } catch {
        // reported below
      }
      if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
        throw new ShotError('invalid_request', `${field} must be an absolute http:// or https:// URL`, { field });
      }
      const host = parsed.hostname;
      const byName = checkName(host);
      let verdict: Verdict = byName ?? { ok: true };
      const doesNotResolve = (err: unknown) => {
        const code = (err as NodeJS.ErrnoException).code ?? 'lookup failed';
        return new ShotError('navigation_failed', `${field} host "${host}" does not resolve (${code}); check the URL`, { field, host });
      };
      if (!byName && (!opts.allowPrivate || deny.hasAddressEntries)) {
        verdict = await resolveHost(host).catch((err) => Promise.reject(doesNotResolve(err)));
      } else if (byName?.ok && isAllowedName(host)) {
        // Allowed by name, so its addresses need no check, but it must still resolve: else the proxy's lookup
        // fails later and Chromium shows the proxy's own error page, which is no screenshot of the site.
        const addresses = await resolve(unbracket(host.toLowerCase())).catch((err) => Promise.reject(doesNotResolve(err)));
        if (addresses.length === 0) throw doesNotResolve({ code: 'ENOTFOUND' });
      }
      if (!verdict.ok) {
        const hint = verdict.reason.includes('DENY_HOSTS') ? '' : "; the node's operator can allow it with SHOTFLEET_ALLOW_HOSTS";
        throw new ShotError('url_forbidden', `${field} host "${host}" is refused by the URL policy (${verdict.reason})${hint}`, {
          field,
          host,
          reason: verdict.reason,
        });
      }
      return parsed;
    },
  };
}
