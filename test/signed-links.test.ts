import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run as signCommand } from '../src/cli/sign-command.js';
import { createOptionsSchema } from '../src/request/options.js';
import { queryParameters, queryToBody as toBody } from '../src/request/query-parameters.js';

const getParameters = queryParameters(createOptionsSchema({ maxViewport: 4096, maxTimeoutMs: 60_000, defaultTimeoutMs: 30_000, maxPixels: 100_000_000 }));
const queryToBody = (query: Record<string, string>) => toBody(getParameters, query);
import { canonicalQuery, signLink, verifySignedQuery } from '../src/signing/signature.js';
import { runCommandInProcess } from './helpers/cli-in-process.js';
import { assertColor, decodePng } from './helpers/images.js';
import { page, startTestSite, type TestSite } from './helpers/pages.js';
import { cliEntry, repoRoot, startShotfleet, type RunningProcess } from './helpers/processes.js';

const run = promisify(execFile);
const key = 'test-signing-key';
/** `shotfleet sign …` through its run() in this process (signProcess runs it once as a process). */
const sign = (args: string[], env: Record<string, string> = { SHOTFLEET_SIGNING_KEY: key }) => runCommandInProcess(signCommand, args, env);

const green: [number, number, number] = [20, 180, 40];
const blue: [number, number, number] = [30, 40, 210];

/** `shotfleet sign …` as its own process, from source; resolves with its exit code and output. */
async function signProcess(args: string[], env: Record<string, string> = { SHOTFLEET_SIGNING_KEY: key }) {
  try {
    const { stdout, stderr } = await run(process.execPath, [cliEntry, 'sign', ...args], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('signing (no browser)', () => {
  it('covers every parameter but signature, sorted by name then value, each encodeURIComponent-ed', () => {
    const params = new URLSearchParams('width=800&url=https%3A%2F%2Fexample.com%2Fa+b%3Fc%3Dd&a=2&a=10&signature=zz&expires=99');
    expect(canonicalQuery(params)).toBe('a=10&a=2&expires=99&url=https%3A%2F%2Fexample.com%2Fa%20b%3Fc%3Dd&width=800');
    // What any client can compute from the rule alone.
    const expected = createHmac('sha256', key).update('a=10&a=2&expires=99&url=https%3A%2F%2Fexample.com%2Fa%20b%3Fc%3Dd&width=800').digest('hex');
    const signed = signLink(new URL(`http://node/screenshot?${params}`), key, 99);
    expect(signed.searchParams.get('signature')).toBe(expected);
  });

  it('refuses a changed parameter, an added one, another key, a malformed or expired link', () => {
    const link = signLink(new URL('http://node/screenshot?url=https%3A%2F%2Fexample.com&width=800'), key, 2000);
    expect(verifySignedQuery(link.searchParams, key, 1000)).toEqual({ ok: true });
    const changed = (edit: (p: URLSearchParams) => void) => {
      const p = new URLSearchParams(link.searchParams);
      edit(p);
      return verifySignedQuery(p, key, 1000).ok;
    };
    expect(changed((p) => p.set('width', '801'))).toBe(false);
    expect(changed((p) => p.set('fullPage', 'true'))).toBe(false);
    expect(changed((p) => p.set('expires', '3000'))).toBe(false);
    expect(changed((p) => p.set('signature', 'ab'))).toBe(false);
    expect(changed((p) => p.append('signature', p.get('signature')!))).toBe(false);
    expect(verifySignedQuery(link.searchParams, 'another-key', 1000).ok).toBe(false);
    expect(verifySignedQuery(link.searchParams, key, 2000).ok).toBe(false);
  });

  it("GET /screenshot takes the new scalar options as query parameters and leaves out the link's own", () => {
    expect(
      queryToBody({
        url: 'https://example.com',
        timezone: 'Asia/Tokyo',
        locale: 'fr-CH',
        scrollPage: 'true',
        blockAds: '1',
        blockCookieBanners: 'false',
        bestEffort: 'true',
        failOnHttpStatus: '404,500',
        expires: '99',
        signature: 'ab',
      }),
    ).toEqual({
      url: 'https://example.com',
      timezone: 'Asia/Tokyo',
      locale: 'fr-CH',
      scrollPage: true,
      blockAds: true,
      blockCookieBanners: false,
      bestEffort: true,
      failOnHttpStatus: [404, 500],
    });
    expect(queryToBody({ failOnHttpStatus: 'true' })).toEqual({ failOnHttpStatus: true });
    expect(() => queryToBody({ failOnHttpStatus: '404,x' })).toThrow(/failOnHttpStatus/);
  });
});

describe('signed GET links on a node', () => {
  let site: TestSite;
  let guarded: RunningProcess;

  beforeAll(async () => {
    site = await startTestSite({
      '/tz': page(
        '',
        `<style>html,body{height:100%}</style><script>document.documentElement.style.background =
          Intl.DateTimeFormat().resolvedOptions().timeZone === 'Asia/Tokyo' ? 'rgb(20,180,40)' : 'rgb(30,40,210)'</script>`,
      ),
    });
    const env = { SHOTFLEET_PAGES: '1', SHOTFLEET_ALLOW_HOSTS: '127.0.0.1', SHOTFLEET_SIGNING_KEY: key };
    guarded = await startShotfleet('serve', { ...env, SHOTFLEET_TOKEN: 'node-token' }, { timeoutMs: 90_000 });
  });

  afterAll(async () => {
    await guarded?.stop();
    await site?.close();
  });

  const link = (base: string, extra = '') =>
    `${base}/screenshot?url=${encodeURIComponent(`${site.url}/tz`)}&width=300&height=200&timezone=Asia%2FTokyo${extra}`;

  it('`shotfleet sign` prints a link the node serves without its token', async () => {
    const signed = await signProcess([link(guarded.url), '--expires-in', '600']);
    expect(signed.code).toBe(0);
    const url = signed.stdout.trim();
    expect(signed.stdout.trim().split('\n')).toHaveLength(1);
    const expires = Number(new URL(url).searchParams.get('expires'));
    expect(expires).toBeGreaterThan(Date.now() / 1000 + 500);
    expect(expires).toBeLessThan(Date.now() / 1000 + 700);

    const res = await fetch(url);
    expect(res.status).toBe(200);
    const image = decodePng(Buffer.from(await res.arrayBuffer()));
    expect([image.width, image.height]).toEqual([300, 200]);
    // The link's own option (timezone) was applied.
    assertColor(image, 10, 10, green);

    // Without the link's signature the token is needed, as before.
    expect((await fetch(link(guarded.url))).status).toBe(401);
  });

  // Each way a link is refused (changed, another key, expired, no key on the node, no token on the node) is checked
  // in process in test/http-app.test.ts.
  it("a tampered link is a 401; a plain GET (with the token) shows the browser's own zone on the same page", async () => {
    const url = (await sign([link(guarded.url)])).stdout.trim();
    const res = await fetch(url.replace('width=300', 'width=301'));
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    const plain = await fetch(link(guarded.url).replace('&timezone=Asia%2FTokyo', ''), { headers: { token: 'node-token' } });
    expect(plain.status).toBe(200);
    assertColor(decodePng(Buffer.from(await plain.arrayBuffer())), 10, 10, blue);
  });

  it('`shotfleet sign` says what is missing', async () => {
    const noKey = await sign([link(guarded.url)], {});
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toContain('SHOTFLEET_SIGNING_KEY');
    expect((await sign(['not a url'])).code).toBe(2);
    expect((await sign([link(guarded.url), '--expires-in', '0'])).code).toBe(2);
    const help = await sign(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--expires-in');
  });
});
