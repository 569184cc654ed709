import net from 'node:net';
import { domainToASCII } from 'node:url';
import ipaddr from 'ipaddr.js';
import { parseIp, unbracket } from './ip-ranges.js';

/** SHOTFLEET_ALLOW_HOSTS or SHOTFLEET_DENY_HOSTS: host names, `*.example.com` wildcards, IP literals and CIDR ranges. */
export interface HostList {
  /** The host as a URL writes it (lowercase, IPv6 in brackets) is named by an entry. */
  hasName(host: string): boolean;
  /** The address is named by an IP or CIDR entry; IPv4-mapped IPv6 counts as its IPv4 address. */
  hasAddress(address: string): boolean;
  readonly hasAddressEntries: boolean;
  readonly empty: boolean;
}

/** Throws naming the entry when one is neither a host name, a wildcard, an IP address nor a CIDR range. */
export function parseHostList(entries: string[], listName: string): HostList {
  const names = new Set<string>();
  const suffixes: string[] = [];
  const ranges: [ipaddr.IPv4 | ipaddr.IPv6, number][] = [];

  for (const raw of entries) {
    const entry = trimDot(unbracket(raw.trim().toLowerCase()));
    if (!entry) continue;
    if (net.isIP(entry)) {
      const ip = canonical(entry);
      ranges.push([ip, ip.kind() === 'ipv4' ? 32 : 128]);
    } else if (entry.includes('/') && ipaddr.isValidCIDR(entry)) {
      ranges.push(canonicalRange(ipaddr.parseCIDR(entry)));
    } else if (entry.startsWith('*.') && asciiHost(entry.slice(2))) {
      suffixes.push(`.${asciiHost(entry.slice(2))}`);
    } else if (asciiHost(entry)) {
      names.add(asciiHost(entry));
    } else {
      throw new Error(`${listName}: "${raw}" is not a host name, *.wildcard, IP address or CIDR range; fix or remove that entry`);
    }
  }

  const hasAddress = (address: string) => {
    if (ranges.length === 0 || !net.isIP(address)) return false;
    const ip = canonical(address);
    return ranges.some(([base, bits]) => base.kind() === ip.kind() && ip.match(base, bits));
  };

  return {
    hasName(host) {
      const h = trimDot(unbracket(host.toLowerCase()));
      if (net.isIP(h)) return hasAddress(h);
      return names.has(h) || suffixes.some((s) => h.endsWith(s));
    },
    hasAddress,
    hasAddressEntries: ranges.length > 0,
    empty: names.size === 0 && suffixes.length === 0 && ranges.length === 0,
  };
}

/** IPv4-mapped IPv6 becomes IPv4, so `127.0.0.1` in a list also names `[::ffff:127.0.0.1]`. */
function canonical(address: string): ipaddr.IPv4 | ipaddr.IPv6 {
  const ip = parseIp(address)!;
  return ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress() ? (ip as ipaddr.IPv6).toIPv4Address() : ip;
}

function canonicalRange([ip, bits]: [ipaddr.IPv4 | ipaddr.IPv6, number]): [ipaddr.IPv4 | ipaddr.IPv6, number] {
  if (ip.kind() === 'ipv6' && bits >= 96 && (ip as ipaddr.IPv6).isIPv4MappedAddress()) {
    return [(ip as ipaddr.IPv6).toIPv4Address(), bits - 96];
  }
  return [ip, bits];
}

function trimDot(host: string): string {
  return host.endsWith('.') ? host.slice(0, -1) : host;
}

/** Punycode for internationalised names, as URL.hostname gives them; '' when not a valid host name. */
function asciiHost(name: string): string {
  if (!/^[^\s/:@?#[\]\\]+$/.test(name)) return '';
  return domainToASCII(name);
}
