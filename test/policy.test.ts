import { describe, expect, it } from 'vitest';
import { ShotError } from '../src/errors/shot-error.js';
import { forbiddenRange } from '../src/policy/ip-ranges.js';
import { createUrlPolicy, type UrlPolicyOptions } from '../src/policy/url-policy.js';

/** A resolver from a table; a name not in it does not resolve. Records every name asked. */
function fakeDns(table: Record<string, string[]>) {
  const asked: string[] = [];
  const resolve = async (host: string) => {
    asked.push(host);
    const addresses = table[host];
    if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return addresses;
  };
  return { resolve, asked };
}

const dns = fakeDns({
  'public.test': ['93.184.215.14'],
  'public6.test': ['2606:2800:21f:cb07:6820:80da:af6b:8b2c'],
  'internal.test': ['10.1.2.3'],
  'metadata.test': ['169.254.169.254'],
  'loop.test': ['127.0.0.1'],
  'mixed.test': ['93.184.215.14', '192.168.1.1'],
  'ula.test': ['fd12:3456:789a::1'],
  'mapped.test': ['::ffff:127.0.0.1'],
});

const defaults: UrlPolicyOptions = { allowPrivate: false, allowHosts: [], denyHosts: [] };
const policyWith = (opts: Partial<UrlPolicyOptions> = {}) => createUrlPolicy({ ...defaults, ...opts }, dns.resolve);

async function pageError(url: string, opts: Partial<UrlPolicyOptions> = {}): Promise<ShotError | undefined> {
  try {
    await policyWith(opts).checkPageUrl(url, 'url');
    return undefined;
  } catch (err) {
    if (err instanceof ShotError) return err;
    throw err;
  }
}

describe('the WHATWG URL parser normalises IPv4 spellings before the policy sees them', () => {
  it.each([
    ['http://2130706433/', '127.0.0.1'],
    ['http://0177.0.0.1/', '127.0.0.1'],
    ['http://0x7f.1/', '127.0.0.1'],
    ['http://0x7f000001/', '127.0.0.1'],
    ['http://127.1/', '127.0.0.1'],
    ['http://0/', '0.0.0.0'],
    ['http://[::ffff:127.0.0.1]/', '[::ffff:7f00:1]'],
    ['http://[0:0:0:0:0:ffff:7f00:1]/', '[::ffff:7f00:1]'],
    ['HTTP://LOCALHOST./', 'localhost.'],
  ])('%s has hostname %s', (url, hostname) => {
    expect(new URL(url).hostname).toBe(hostname);
  });
});

describe('forbiddenRange', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.5.4', 'private'],
    ['192.168.0.1', 'private'],
    ['169.254.169.254', 'linkLocal'],
    ['100.64.0.1', 'carrierGradeNat'],
    ['100.127.255.255', 'carrierGradeNat'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['0.0.0.0', 'unspecified'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['fc00::1', 'uniqueLocal'],
    ['fd00:ec2::254', 'uniqueLocal'],
    ['fe80::1', 'linkLocal'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'ipv4Mapped of loopback'],
    ['::ffff:7f00:1', 'ipv4Mapped of loopback'],
    ['::ffff:a9fe:a9fe', 'ipv4Mapped of linkLocal'],
    ['::ffff:0:10.0.0.1', 'rfc6145 of private'],
    ['64:ff9b::127.0.0.1', 'rfc6052 of loopback'],
    ['64:ff9b::a9fe:a9fe', 'rfc6052 of linkLocal'],
    ['2002:7f00:1::', '6to4 of loopback'],
    ['2002:c0a8:101::1', '6to4 of private'],
    ['64:ff9b:1::a00:1', 'rfc8215'],
    ['::7f00:1', 'reserved'],
    ['::127.0.0.1', 'reserved'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'teredo'],
    ['2001:db8::1', 'reserved'],
  ])('%s is %s', (address, range) => {
    expect(forbiddenRange(address)).toBe(range);
  });

  it.each([
    '93.184.215.14',
    '8.8.8.8',
    '100.63.255.255',
    '100.128.0.0',
    '172.32.0.1',
    '2606:4700::1111',
    '::ffff:8.8.8.8',
    '64:ff9b::808:808',
    '2002:808:808::1',
  ])('%s is public', (address) => {
    expect(forbiddenRange(address)).toBeUndefined();
  });

  it('refuses what is not an address at all', () => {
    expect(forbiddenRange('example.com')).toBe('not an IP address');
  });
});

describe('checkPageUrl', () => {
  it.each([
    'file:///etc/passwd',
    'FILE:///etc/passwd',
    'javascript:alert(1)',
    'data:text/html,<h1>hi</h1>',
    'ftp://example.com/',
    'chrome://settings',
    'about:blank',
    'not a url',
    '/relative/path',
    '',
  ])('400 invalid_request naming the field for %j', async (url) => {
    const err = await pageError(url);
    expect(err?.code).toBe('invalid_request');
    expect(err?.status).toBe(400);
    expect(err?.details).toEqual({ field: 'url' });
  });

  it('accepts mixed-case schemes and returns the normalised URL', async () => {
    const url = await policyWith().checkPageUrl('HtTpS://Public.Test/a?b=1', 'url');
    expect(url.href).toBe('https://public.test/a?b=1');
  });

  it.each([
    'http://127.0.0.1/',
    'http://127.0.0.1:8080/',
    'http://2130706433/',
    'http://0177.0.0.1/',
    'http://0x7f.1/',
    'http://0x7f000001/',
    'http://127.1/',
    'http://0.0.0.0/',
    'http://0/',
    'http://[::]/',
    'http://[::1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://[::ffff:7f00:1]/',
    'http://[::ffff:169.254.169.254]/',
    'http://[64:ff9b::7f00:1]/',
    'http://[2002:7f00:1::1]/',
    'http://[fc00::1]/',
    'http://[fd00::1]/',
    'http://[fe80::1]/',
    'http://[ff02::1]/',
    'http://10.0.0.1/',
    'http://172.16.0.1/',
    'http://192.168.1.1/',
    'http://169.254.169.254/latest/meta-data/',
    'http://100.64.0.1/',
    'http://224.0.0.1/',
    'http://255.255.255.255/',
    'http://localhost/',
    'http://LOCALHOST:3000/',
    'http://localhost./',
    'http://admin.localhost/',
    'https://a.b.localhost/',
    'http://internal.test/',
    'http://metadata.test/',
    'http://loop.test/',
    'http://mixed.test/',
    'http://ula.test/',
    'http://mapped.test/',
    'http://user:pass@127.0.0.1/',
  ])('403 url_forbidden for %s', async (url) => {
    const err = await pageError(url);
    expect(err?.code).toBe('url_forbidden');
    expect(err?.status).toBe(403);
    expect(err?.details?.field).toBe('url');
  });

  it.each(['http://public.test/', 'https://public6.test/x', 'http://93.184.215.14/', 'http://[2606:4700::1111]/'])('allows public %s', async (url) => {
    expect(await pageError(url)).toBeUndefined();
  });

  it('checks every address a name resolves to: one private among public ones refuses', async () => {
    const err = await pageError('http://mixed.test/');
    expect(err?.details?.reason).toBe('resolves to a private address');
  });

  it('says the host did not resolve (502) rather than refusing it', async () => {
    const err = await pageError('http://nowhere.test/');
    expect(err?.code).toBe('navigation_failed');
    expect(err?.status).toBe(502);
  });

  it('does not leak the resolved address in the message', async () => {
    const err = await pageError('http://internal.test/');
    expect(err?.message).not.toContain('10.1.2.3');
  });
});

describe('ALLOW_HOSTS, DENY_HOSTS, ALLOW_PRIVATE', () => {
  it('an allowed IP literal lifts the block for that address only', async () => {
    const opts = { allowHosts: ['127.0.0.1'] };
    expect(await pageError('http://127.0.0.1:9000/', opts)).toBeUndefined();
    expect(await pageError('http://2130706433/', opts)).toBeUndefined();
    expect(await pageError('http://[::ffff:127.0.0.1]/', opts)).toBeUndefined();
    expect((await pageError('http://127.0.0.2/', opts))?.code).toBe('url_forbidden');
    expect((await pageError('http://[::1]/', opts))?.code).toBe('url_forbidden');
    expect((await pageError('http://10.0.0.1/', opts))?.code).toBe('url_forbidden');
    // a name that resolves to the allowed address reaches nothing an IP literal couldn't
    expect(await pageError('http://loop.test/', opts)).toBeUndefined();
  });

  it('an allowed name is let through whatever it resolves to, and restricts nothing else', async () => {
    const opts = { allowHosts: ['internal.test'] };
    expect(await pageError('http://internal.test/', opts)).toBeUndefined();
    expect(await pageError('http://public.test/', opts)).toBeUndefined();
    expect((await pageError('http://metadata.test/', opts))?.code).toBe('url_forbidden');
  });

  it('*.example wildcards name subdomains, not the bare domain', async () => {
    const policy = createUrlPolicy({ ...defaults, allowHosts: ['*.corp.test'] }, async () => ['10.9.9.9']);
    await expect(policy.checkPageUrl('http://wiki.corp.test/', 'url')).resolves.toBeInstanceOf(URL);
    await expect(policy.checkPageUrl('http://a.b.corp.test/', 'url')).resolves.toBeInstanceOf(URL);
    await expect(policy.checkPageUrl('http://corp.test/', 'url')).rejects.toMatchObject({ code: 'url_forbidden' });
    await expect(policy.checkPageUrl('http://evilcorp.test/', 'url')).rejects.toMatchObject({ code: 'url_forbidden' });
  });

  it('CIDR entries and IPv6 literals (with or without brackets) are understood', async () => {
    expect(await pageError('http://10.1.2.3/', { allowHosts: ['10.0.0.0/8'] })).toBeUndefined();
    expect(await pageError('http://[::1]/', { allowHosts: ['[::1]'] })).toBeUndefined();
    expect(await pageError('http://[::1]/', { allowHosts: ['::1'] })).toBeUndefined();
  });

  it('DENY_HOSTS refuses what it names whatever it resolves to, even when allowed', async () => {
    for (const opts of [{ denyHosts: ['public.test'] }, { denyHosts: ['*.test'] }, { denyHosts: ['93.184.215.14'] }]) {
      const err = await pageError('http://public.test/', opts);
      expect(err?.code).toBe('url_forbidden');
      expect(err?.message).not.toContain('ALLOW_HOSTS');
    }
    expect((await pageError('http://public.test/', { denyHosts: ['public.test'], allowHosts: ['public.test'] }))?.code).toBe('url_forbidden');
    expect((await pageError('http://public.test/', { denyHosts: ['public.test'], allowPrivate: true }))?.code).toBe('url_forbidden');
    expect((await pageError('http://public.test./', { denyHosts: ['public.test'] }))?.code).toBe('url_forbidden');
    expect(await pageError('http://public6.test/', { denyHosts: ['public.test'] })).toBeUndefined();
  });

  it('ALLOW_PRIVATE lifts the private block, and then needs no DNS', async () => {
    const local = fakeDns({});
    const policy = createUrlPolicy({ ...defaults, allowPrivate: true }, local.resolve);
    for (const url of ['http://127.0.0.1/', 'http://localhost/', 'http://[::1]/', 'http://169.254.169.254/', 'http://anything.test/']) {
      await expect(policy.checkPageUrl(url, 'url')).resolves.toBeInstanceOf(URL);
    }
    expect(local.asked).toEqual([]);
    expect(policy.active).toBe(false);
  });

  it('is active unless nothing can be refused', () => {
    expect(policyWith().active).toBe(true);
    expect(policyWith({ allowHosts: ['x.test'] }).active).toBe(true);
    expect(policyWith({ allowPrivate: true, denyHosts: ['x.test'] }).active).toBe(true);
  });

  it('a malformed entry stops startup with a message naming the list and the entry', () => {
    expect(() => policyWith({ allowHosts: ['http://x.test/'] })).toThrow(/SHOTFLEET_ALLOW_HOSTS: "http:\/\/x.test\/"/);
    expect(() => policyWith({ denyHosts: ['a b'] })).toThrow(/SHOTFLEET_DENY_HOSTS/);
  });
});

describe('quickCheck (sub-requests, no DNS)', () => {
  const policy = createUrlPolicy(defaults, async () => {
    throw new Error('quickCheck must not resolve');
  });

  it.each([
    'data:image/png;base64,AAAA',
    'blob:http://public.test/6b1c',
    'about:blank',
    'http://public.test/a.png',
    'https://unknown.test/',
    'wss://public.test/socket',
  ])('lets %s through', (url) => {
    expect(policy.quickCheck(url)).toEqual({ ok: true });
  });

  it.each([
    'file:///etc/passwd',
    'FiLe:///etc/passwd',
    'chrome://gpu',
    'ftp://public.test/',
    'http://127.0.0.1/',
    'http://2130706433/',
    'http://[::ffff:7f00:1]/',
    'http://169.254.169.254/',
    'ws://localhost:9222/devtools',
    'http://x.localhost/',
    'http://[fd00::1]/',
    'not a url',
  ])('refuses %s', (url) => {
    const verdict = policy.quickCheck(url);
    expect(verdict.ok).toBe(false);
  });

  it('refuses denied hosts by name', () => {
    const denying = createUrlPolicy({ ...defaults, denyHosts: ['ads.test'] });
    expect(denying.quickCheck('https://ads.test/pixel.gif')).toEqual({ ok: false, reason: 'denied by SHOTFLEET_DENY_HOSTS' });
  });
});

describe('resolveHost (what the proxy connects to)', () => {
  it('returns exactly the checked addresses', async () => {
    expect(await policyWith().resolveHost('public.test')).toEqual({ ok: true, addresses: ['93.184.215.14'] });
    expect(await policyWith().resolveHost('[2606:4700::1111]')).toEqual({ ok: true, addresses: ['2606:4700::1111'] });
    expect(await policyWith({ allowHosts: ['internal.test'] }).resolveHost('internal.test')).toEqual({ ok: true, addresses: ['10.1.2.3'] });
  });

  it('refuses a name with any forbidden address', async () => {
    expect(await policyWith().resolveHost('mixed.test')).toMatchObject({ ok: false });
    expect(await policyWith().resolveHost('localhost')).toMatchObject({ ok: false, reason: 'localhost' });
  });

  it('rejects when the name does not resolve', async () => {
    await expect(policyWith().resolveHost('nowhere.test')).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });
});
