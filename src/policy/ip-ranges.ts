import net from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * Why an address must not be reached from a rendered page, or undefined when it is public unicast.
 *
 * An allow-list, not a deny-list: any IPv4 range ipaddr.js names (loopback, private, linkLocal — the cloud
 * metadata address —, carrierGradeNat, multicast, unspecified, broadcast, reserved …) is refused, and IPv6 must be
 * global unicast (2000::/3). IPv6 forms that embed an IPv4 address (mapped, SIIT, NAT64, 6to4) are judged by the
 * IPv4 address they lead to, so `::ffff:7f00:1` is loopback.
 */
export function forbiddenRange(address: string): string | undefined {
  const ip = parseIp(address);
  if (!ip) return 'not an IP address';
  if (ip.kind() === 'ipv4') return ipv4Verdict(ip as ipaddr.IPv4);
  const v6 = ip as ipaddr.IPv6;
  const embedded = embeddedIPv4(v6);
  if (embedded) {
    const verdict = ipv4Verdict(embedded);
    return verdict && `${v6.range()} of ${verdict}`;
  }
  const range = v6.range();
  if (range !== 'unicast') return range;
  // ipaddr.js calls 64:ff9b:1::/48 (local-use NAT64), ::/96 (IPv4-compatible) and unassigned space "unicast".
  if (v6.match(localUseNat64)) return 'rfc8215';
  if (!v6.match(globalUnicast)) return 'reserved';
  return undefined;
}

const globalUnicast = ipaddr.parseCIDR('2000::/3') as [ipaddr.IPv6, number];
const localUseNat64 = ipaddr.parseCIDR('64:ff9b:1::/48') as [ipaddr.IPv6, number];

function ipv4Verdict(ip: ipaddr.IPv4): string | undefined {
  const range = ip.range();
  return range === 'unicast' ? undefined : range;
}

function embeddedIPv4(ip: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  const p = ip.parts;
  switch (ip.range()) {
    case 'ipv4Mapped': // ::ffff:a.b.c.d
    case 'rfc6145': // ::ffff:0:a.b.c.d
    case 'rfc6052': // 64:ff9b::a.b.c.d
      return fromWords(p[6], p[7]);
    case '6to4': // 2002:aabb:ccdd::/48
      return fromWords(p[1], p[2]);
    default:
      return undefined;
  }
}

function fromWords(high: number, low: number): ipaddr.IPv4 {
  return new ipaddr.IPv4([high >> 8, high & 0xff, low >> 8, low & 0xff]);
}

/** `[::1]` → `::1`, as URL.hostname writes IPv6 literals with brackets. */
export function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/**
 * The address as an ipaddr.js object, or undefined when `address` is not one. IPv6 goes through the WHATWG
 * parser first: ipaddr.js reads `::127.0.0.1` as `::ffff:7f00:1`, while Chromium and Node read `::7f00:1`.
 * A zone (`fe80::1%eth0`) does not change the range, so it is dropped.
 */
export function parseIp(address: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  const bare = unbracket(address).replace(/%.*$/, '');
  switch (net.isIP(bare)) {
    case 4:
      return ipaddr.IPv4.parse(bare);
    case 6:
      return ipaddr.IPv6.parse(unbracket(new URL(`http://[${bare}]/`).hostname));
    default:
      return undefined;
  }
}
