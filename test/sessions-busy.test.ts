import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePng, near, type Rgba } from './helpers/images.js';
import { startTestSite, type TestSite } from './helpers/pages.js';
import { startShotfleet, type RunningProcess } from './helpers/processes.js';
import { metricValues, shoot, type Answer } from './helpers/node-client.js';

/** A colour per page, so each answer can be checked to be the page that was asked for. */
const colorOf = (c: number, i: number): [number, number, number] => [(40 + c * 60) % 250, 30 + i * 20, (450 - c * 40) % 250];

/** Each page paints its colour and counts, in a cookie, how many pages of this session came before it. */
function sessionPage(query: URLSearchParams): string {
  const [r, g, b] = colorOf(Number(query.get('c')), Number(query.get('i')));
  return `<!doctype html><body style="margin:0;background:rgb(${r},${g},${b})"><script>
    const n = Number((document.cookie.match(/seen=(\\d+)/) || [0, 0])[1]) + 1;
    document.cookie = 'seen=' + n + '; path=/';
  </script></body>`;
}

function pixel(shot: Answer): Rgba {
  if (shot.status !== 200) throw new Error(`expected 200, got ${shot.status}: ${shot.bytes.toString('utf8').slice(0, 300)}`);
  return decodePng(shot.bytes).at(10, 10);
}

describe('sessions under ordinary use: more sessions than pages, same-site and cross-site navigations', () => {
  const sites: TestSite[] = [];
  let node: RunningProcess;

  beforeAll(async () => {
    // The same routes on three loopback hosts: three sites, each with its own renderer process in Chromium.
    for (const host of ['127.0.0.1', '127.0.0.2', '127.0.0.3']) {
      sites.push(
        await startTestSite(
          {
            '/p': (req, res) => {
              const query = new URL(req.url ?? '/', 'http://x').searchParams;
              res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'no-store' }).end(sessionPage(query));
            },
          },
          { host },
        ),
      );
    }
    node = await startShotfleet('serve', {
      SHOTFLEET_PAGES: '2',
      SHOTFLEET_MAX_SESSIONS: '4',
      SHOTFLEET_ALLOW_HOSTS: '127.0.0.1,127.0.0.2,127.0.0.3',
    });
  });

  afterAll(async () => {
    await node?.stop();
    await Promise.all(sites.map((s) => s.close()));
  });

  async function client(c: number, requests: number, crossSite: boolean): Promise<Answer[]> {
    const answers: Answer[] = [];
    for (let i = 0; i < requests; i++) {
      const site = crossSite ? sites[i % sites.length] : sites[0];
      answers.push(
        await shoot(node.url, { url: `${site.url}/p?c=${c}&i=${i}`, viewport: { width: 64, height: 48 } }, { cookie: `shot_session=client-${c}-${crossSite}` }),
      );
    }
    return answers;
  }

  function expectSessionRenders(c: number, answers: Answer[]): void {
    answers.forEach((answer, i) => {
      const seen = pixel(answer);
      if (!near(seen, colorOf(c, i))) throw new Error(`client ${c} request ${i}: got ${seen}, expected ${colorOf(c, i)}`);
      // The node's own account of this session (why it closed, a render it retried) says what went wrong, if anything did.
      const story = node.logs.filter((l) => String(l.session).startsWith(`client-${c}-`) || (l.level as number) >= 40);
      expect(answer.headers.get('x-shotfleet-session'), JSON.stringify(story).slice(0, 3000)).toBe(i === 0 ? 'new' : 'reused');
    });
  }

  it('4 sessions × 3 requests on a 2-page node, same site with different query strings: every render is its page, new then reused', async () => {
    const all = await Promise.all([0, 1, 2, 3].map((c) => client(c, 3, false)));
    all.forEach((answers, c) => {
      expectSessionRenders(c, answers);
    });
  }, 180_000);

  it('4 sessions × 4 requests moving between three sites and back: every render succeeds and the session is kept', async () => {
    const all = await Promise.all([0, 1, 2, 3].map((c) => client(c, 4, true)));
    all.forEach((answers, c) => {
      expectSessionRenders(c, answers);
    });
  }, 180_000);

  it('one session, 5 requests back to back: all succeed on the same session', async () => {
    expectSessionRenders(7, await client(7, 5, false));
  }, 120_000);

  it("a session's request waiting for its earlier one holds no page: a session-less request passes it; past its deadline it is shed and counted", async () => {
    const cookie = 'shot_session=waiting-turns';
    const slowSite = sites[0];
    const before = metricValues(await (await fetch(`${node.url}/metrics`)).text(), 'shotfleet_shed_total', 'reason');
    // First request of the session holds its page for a while.
    const first = shoot(node.url, { url: `${slowSite.url}/p?c=1&i=1`, delay: 4000, viewport: { width: 64, height: 48 } }, { cookie });
    await new Promise((r) => setTimeout(r, 500));
    // The second waits for its turn, with a deadline shorter than the first's render.
    const second = shoot(node.url, { url: `${slowSite.url}/p?c=1&i=2`, timeout: 1500, viewport: { width: 64, height: 48 } }, { cookie });
    // Meanwhile a session-less request gets the node's other page at once.
    const third = shoot(node.url, { url: `${slowSite.url}/p?c=2&i=0`, viewport: { width: 64, height: 48 } });
    const order: string[] = [];
    const [a, b, c] = await Promise.all([
      first.then((s) => {
        order.push('first');
        return s;
      }),
      second.then((s) => {
        order.push('second');
        return s;
      }),
      third.then((s) => {
        order.push('third');
        return s;
      }),
    ]);
    expect(pixel(a)).toSatisfy((p: Rgba) => near(p, colorOf(1, 1)));
    expect(pixel(c)).toSatisfy((p: Rgba) => near(p, colorOf(2, 0)));
    expect(order.indexOf('third')).toBeLessThan(order.indexOf('first'));
    expect(b.status).toBe(503);
    expect(b.json?.error?.details?.reason).toBe('queue_timeout');
    expect(b.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
    const after = metricValues(await (await fetch(`${node.url}/metrics`)).text(), 'shotfleet_shed_total', 'reason');
    expect(after.queue_timeout).toBe((before.queue_timeout ?? 0) + 1);
  }, 120_000);

  it('when every session is busy a new one is shed, and that 503 is counted in shotfleet_shed_total', async () => {
    const before = metricValues(await (await fetch(`${node.url}/metrics`)).text(), 'shotfleet_shed_total', 'reason');
    const busy = [0, 1, 2, 3].map((c) =>
      shoot(node.url, { url: `${sites[0].url}/p?c=${c}&i=0`, delay: 3000, viewport: { width: 64, height: 48 } }, { cookie: `shot_session=busy-${c}` }),
    );
    await new Promise((r) => setTimeout(r, 1000));
    const refused = await shoot(node.url, { url: `${sites[0].url}/p?c=0&i=0` }, { cookie: 'shot_session=one-too-many' });
    expect(refused.status).toBe(503);
    expect(refused.json?.error?.details?.reason).toBe('queue_full');
    const after = metricValues(await (await fetch(`${node.url}/metrics`)).text(), 'shotfleet_shed_total', 'reason');
    expect(after.queue_full).toBe((before.queue_full ?? 0) + 1);
    for (const answer of await Promise.all(busy)) expect(answer.status).toBe(200);
  }, 120_000);
});
