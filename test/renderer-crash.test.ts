import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePng, near } from './helpers/images.js';
import { startTestSite, type TestSite } from './helpers/pages.js';
import { startShotfleet, type RunningProcess } from './helpers/processes.js';
import { rendererPids, metricValues, shoot, type Answer } from './helpers/node-client.js';
import { sleep, waitFor } from './helpers/wait.js';

describe('renderers killed under load: every request is retried on a fresh page, none fails or hangs', () => {
  let site: TestSite;
  let node: RunningProcess;
  let hangs = 0;

  beforeAll(async () => {
    site = await startTestSite({
      '/color': (req, res) => {
        const n = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('n'));
        res
          .writeHead(200, { 'content-type': 'text/html', 'cache-control': 'no-store' })
          .end(`<!doctype html><body style="margin:0;background:rgb(${(n * 37) % 250},120,${(n * 91) % 250})"></body>`);
      },
      // The first load never finishes; the ones after it do. A render waiting on it when its renderer dies is
      // retried at once — and the retry loads — instead of waiting on a dead page until its deadline.
      '/hang-once': (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'no-store' });
        if (hangs++ === 0) return void res.write('<!doctype html><body style="background:rgb(0,0,0)"><p>loading');
        res.end('<!doctype html><body style="margin:0;background:rgb(250,200,0)"></body>');
      },
    });
    // A short stop: after the kill rounds one was seen to outlast the helper's 20 s before its SIGKILL (the default grace is 30 s).
    node = await startShotfleet('serve', {
      SHOTFLEET_PAGES: '2',
      SHOTFLEET_QUEUE_MAX: '20',
      SHOTFLEET_ALLOW_HOSTS: '127.0.0.1',
      SHOTFLEET_SHUTDOWN_GRACE_MS: '5000',
    });
  });

  afterAll(async () => {
    await node?.stop();
    await site?.close();
  });

  it('three rounds of SIGKILL to every renderer while 3 clients render: all 200 with their own page, no 500, no 504', async () => {
    // Rounds far enough apart that a retried render is not caught by the next one (the soak bench kills every 30 s).
    let sending = true;
    const answers: { n: number; shot: Answer }[] = [];
    let next = 0;
    const clients = [0, 1, 2].map(async () => {
      while (sending) {
        const n = next++;
        // The delay keeps renders in flight when the kill lands.
        answers.push({ n, shot: await shoot(node.url, { url: `${site.url}/color?n=${n}`, delay: 700, viewport: { width: 64, height: 48 }, timeout: 20_000 }) });
      }
    });
    let killed = 0;
    for (let round = 0; round < 3; round++) {
      await sleep(round === 0 ? 1500 : 6000);
      for (const pid of await rendererPids(node.proc.pid!)) {
        try {
          process.kill(pid, 'SIGKILL');
          killed++;
        } catch {
          // gone already
        }
      }
    }
    await sleep(1500);
    sending = false;
    await Promise.all(clients);

    expect(killed).toBeGreaterThan(0);
    for (const { n, shot } of answers) {
      if (shot.status !== 200) throw new Error(`request ${n}: ${shot.status} ${shot.bytes.toString('utf8').slice(0, 300)}`);
      const expected: [number, number, number] = [(n * 37) % 250, 120, (n * 91) % 250];
      expect(near(decodePng(shot.bytes).at(5, 5), expected)).toBe(true);
    }
    expect((await (await fetch(`${node.url}/status`)).json()).status).toBe('ready');
  }, 180_000);

  it('a render waiting on a load when its renderer dies is retried on a fresh page at once, not held until its deadline', async () => {
    const codesBefore = metricValues(await (await fetch(`${node.url}/metrics`)).text(), 'shotfleet_requests_total', 'code');
    const retriesBefore = node.logs.filter((l) => l.msg === 'the render lost its page; retrying on a fresh one').length;
    const started = Date.now();
    const pending = shoot(node.url, { url: `${site.url}/hang-once`, timeout: 60_000, viewport: { width: 64, height: 48 } });
    // The page's document has started and will never finish: the render waits on its load from here on.
    await waitFor('the page to ask for its never-ending document', () => hangs >= 1, 20_000, 20);
    for (const pid of await rendererPids(node.proc.pid!)) process.kill(pid, 'SIGKILL');
    const answer = await pending;
    if (answer.status !== 200) throw new Error(`expected 200, got ${answer.status}: ${answer.bytes.toString('utf8').slice(0, 300)}`);
    expect(near(decodePng(answer.bytes).at(5, 5), [250, 200, 0])).toBe(true);
    // Well before the 60 s deadline: the dead page was noticed, not waited on.
    expect(Date.now() - started).toBeLessThan(45_000);
    // The warning is written before the answer; its pipe may still be on its way.
    await waitFor(
      'the retry warning',
      () => node.logs.filter((l) => l.msg === 'the render lost its page; retrying on a fresh one').length > retriesBefore,
      5000,
      20,
    );
    const codes = metricValues(await (await fetch(`${node.url}/metrics`)).text(), 'shotfleet_requests_total', 'code');
    expect(codes['500'] ?? 0).toBe(codesBefore['500'] ?? 0);
    expect(codes['504'] ?? 0).toBe(codesBefore['504'] ?? 0);
  }, 120_000);
});
