import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertColor, css, decodePng } from './helpers/images.js';
import { keyRequestCounts, request, shoot, sleep, solidPage, startSite, waitFor, type Answer, type Site } from './helpers/node-client.js';
import { startShotfleet, type RunningProcess } from './helpers/processes.js';

/**
 * API keys on a real node with Chromium: the keys file reread on SIGHUP, and fair shares of a saturated node — a
 * light key's renders succeed (pixel-checked) while a heavy key's flood is shed.
 */

const heavyToken = 'heavy-token-0123456789';
const lightToken = 'light-token-0123456789';
const laterToken = 'later-token-0123456789';
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** A colour per request number, so each image can be checked against the page it asked for. */
const colorOf = (n: number): [number, number, number] => [(n * 53) % 200, (n * 97) % 200, 120];

describe('API keys on a real node', () => {
  let site: Site;
  let node: RunningProcess;
  let keysFile: string;
  const writeKeys = (keys: unknown) => fs.writeFileSync(keysFile, typeof keys === 'string' ? keys : JSON.stringify({ keys }));
  /** Sends SIGHUP and waits for the node's log line about it. */
  const hup = async (logged: (line: Record<string, unknown>) => boolean) => {
    const before = node.logs.length;
    node.proc.kill('SIGHUP');
    await waitFor('the reload log line', () => node.logs.slice(before).some(logged), 10_000, 50);
  };
  const render = (n: number, token: string, delayMs = 300) =>
    shoot(node.url, { url: `${site.url}/page?n=${n}&delay=${delayMs}`, viewport: { width: 200, height: 150 } }, { headers: bearer(token) });
  const expectColor = (answer: Answer, n: number) => {
    expect(answer.status, answer.json?.error?.message).toBe(200);
    assertColor(decodePng(answer.bytes), 100, 75, colorOf(n));
  };

  beforeAll(async () => {
    site = await startSite((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const n = Number(url.searchParams.get('n'));
      setTimeout(() => res.writeHead(200, { 'content-type': 'text/html' }).end(solidPage(css(colorOf(n)))), Number(url.searchParams.get('delay')));
    });
    keysFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'shotfleet-keys-node-')), 'keys.json');
    writeKeys([
      { name: 'heavy', token: heavyToken },
      { name: 'light', token: lightToken },
    ]);
    node = await startShotfleet(
      'serve',
      {
        SHOTFLEET_PAGES: '1',
        SHOTFLEET_QUEUE_MAX: '2',
        SHOTFLEET_KEYS_FILE: keysFile,
        SHOTFLEET_ALLOW_HOSTS: '127.0.0.1',
        SHOTFLEET_ADAPTIVE_CONCURRENCY: 'false',
      },
      { timeoutMs: 90_000 },
    );
  });

  afterAll(async () => {
    await node?.stop();
    await site?.close();
  });

  it("a light key's renders succeed while a heavy key floods the node and is shed", async () => {
    let flooding = true;
    const heavy: Answer[] = [];
    let next = 1000;
    // Six heavy clients, each sending again as soon as it is answered (after a short pause on a 503): with renders
    // held 300 ms by the page, a freed place in the queue is taken again long before the next render ends.
    const floods = Array.from({ length: 6 }, async () => {
      while (flooding) {
        const n = next++;
        const answer = await render(n, heavyToken);
        heavy.push(answer);
        if (answer.status === 200) expectColor(answer, n);
        else await sleep(200);
      }
    });
    // The light key comes once the node is full: it has already shed the heavy key.
    await waitFor('the heavy key shed', () => heavy.some((a) => a.status === 503), 30_000, 20);
    const light: Answer[] = [];
    for (let n = 1; n <= 3; n++) {
      const answer = await render(n, lightToken);
      light.push(answer);
      expectColor(answer, n);
    }
    flooding = false;
    await Promise.all(floods);

    expect(light.map((a) => a.status)).toEqual([200, 200, 200]);
    const shed = heavy.filter((a) => a.status === 503);
    expect(shed.length).toBeGreaterThan(0);
    for (const answer of shed) expect(answer.json?.error?.details?.reason).toBe('queue_full');
    expect(heavy.filter((a) => a.status === 200).length).toBeGreaterThan(0);

    const counts = keyRequestCounts((await request(`${node.url}/metrics`)).bytes.toString('utf8'));
    expect(counts['light 200']).toBe(3);
    expect(counts['light 503']).toBeUndefined();
    expect(counts['heavy 503']).toBe(shed.length);
  });

  it('SIGHUP rereads the keys file: an added key works, a removed one gets 401 while its render in flight finishes, a bad file changes nothing', async () => {
    expect((await render(1, laterToken, 0)).status).toBe(401);
    writeKeys([
      { name: 'heavy', token: heavyToken },
      { name: 'light', token: lightToken },
      { name: 'later', token: laterToken },
    ]);
    await hup((line) => line.msg === 'API keys reloaded');
    expectColor(await render(2, laterToken, 0), 2);

    // A slow render of `light` is in flight when the key is removed: it finishes; the key's next request is refused.
    const inFlight = render(3, lightToken, 1500);
    await sleep(500);
    writeKeys([
      { name: 'heavy', token: heavyToken },
      { name: 'later', token: laterToken },
    ]);
    await hup((line) => line.msg === 'API keys reloaded' && Array.isArray(line.keys) && !(line.keys as string[]).includes('light'));
    expect((await render(4, lightToken, 0)).status).toBe(401);
    expectColor(await inFlight, 3);

    writeKeys(`{"keys":[{"name":"later","token":"${laterToken}"},{"name":"Bad Name","token":"x"}]}`);
    await hup((line) => line.msg?.toString().startsWith('API keys NOT reloaded') === true);
    const refusal = node.logs.findLast((line) => String(line.msg).startsWith('API keys NOT reloaded'));
    expect(refusal?.problem).toMatch(/keys\[1\]\.name/);
    expect(JSON.stringify(node.logs)).not.toContain(laterToken);
    expect(JSON.stringify(node.logs)).not.toContain(heavyToken);
    expectColor(await render(5, heavyToken, 0), 5);
    expectColor(await render(6, laterToken, 0), 6);
  });
});
