import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run as shootCommand } from '../src/cli/shoot-command.js';
import { createAdaptiveThrottle } from '../src/shoot/adaptive-throttle.js';
import { runCommandInProcess } from './helpers/cli-in-process.js';
import { startScriptedShotNode, type ScriptedShotNode } from './helpers/scripted-shot-node.js';
import { makeBatch, manifestRecords, shootInProcess, spawnShoot } from './helpers/shoot-run.js';

let node: ScriptedShotNode;
let root: string;
beforeAll(async () => {
  node = await startScriptedShotNode();
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'shoot-batch-'));
});
afterAll(async () => {
  await node.close();
  await fs.rm(root, { recursive: true, force: true });
});

/** A fresh out dir and input file for one test. */
async function batch(lines: string[]) {
  const b = await makeBatch(root, lines);
  return { ...b, args: [b.input, '--endpoint', node.url, '--out', b.out] };
}

/** A page URL unique to the running test, so the fake node's attempt counts do not mix between tests. */
const testIds = new Map<string, number>();
const page = (behaviour: string, id: string | number) => {
  const name = expect.getState().currentTestName ?? '';
  if (!testIds.has(name)) testIds.set(name, testIds.size + 1);
  return `http://page.test/${behaviour}/${id}-t${testIds.get(name)}`;
};

describe('shoot against a scripted node', () => {
  it('saves every image under its line number and records it in the manifest', async () => {
    const b = await batch(['# pages', page('ok', 1), '', `{"url":"${page('ok', 2)}","format":"jpeg"}`]);
    const { code, stderr } = await shootInProcess(b.args);
    expect(code).toBe(0);
    const records = await manifestRecords(b.manifest);
    expect(records.map((r) => [r.line, r.status]).sort()).toEqual([
      [2, 'ok'],
      [4, 'ok'],
    ]);
    const png = records.find((r) => r.line === 2)!;
    expect(png.file).toBe(`2-page-test-ok-1-t${testIds.size}.png`);
    expect(png).toMatchObject({ url: page('ok', 1), format: 'png', node: 'fake-1', attempts: 1, timings: { queueMs: 3, renderMs: 42.5 } });
    const decoded = PNG.sync.read(await fs.readFile(path.join(b.out, png.file!)));
    expect(decoded.width).toBe(2);
    expect(png.bytes).toBe((await fs.stat(path.join(b.out, png.file!))).size);
    const jpeg = records.find((r) => r.line === 4)!;
    expect(jpeg.file).toMatch(/^4-.*\.jpg$/);
    expect((await fs.readFile(path.join(b.out, jpeg.file!))).subarray(0, 3)).toEqual(Buffer.from([0xff, 0xd8, 0xff]));
    expect(stderr).toContain('finished');
  });

  it.each([
    { title: 'waits out a 503 for its Retry-After, then retries', route: 'shed-once', summary: '503: 1' },
    {
      title: 'waits out a 429 (its key over its own limit) for its Retry-After like a 503, and counts it apart',
      route: 'limited-once',
      summary: '503: 0, 429: 1',
    },
  ])('$title', async ({ route, summary }) => {
    const url = page(route, 1);
    const b = await batch([url]);
    const { code, stderr } = await shootInProcess(b.args);
    expect(code).toBe(0);
    const [first, second] = node.requests.filter((r) => r.pageUrl === url);
    expect(second.at - first.at).toBeGreaterThanOrEqual(1000);
    expect((await manifestRecords(b.manifest))[0]).toMatchObject({ status: 'ok', attempts: 2 });
    expect(stderr).toContain(summary);
  });

  it('retries a connection reset, a 502 and a 504, but never another 4xx', async () => {
    const b = await batch([page('reset-once', 1), page('502-once', 2), page('504-once', 3), page('bad-request', 4)]);
    const { code } = await shootInProcess(b.args);
    expect(code).toBe(1);
    const byLine = new Map((await manifestRecords(b.manifest)).map((r) => [r.line, r]));
    for (const line of [1, 2, 3]) expect(byLine.get(line)).toMatchObject({ status: 'ok', attempts: 2 });
    expect(byLine.get(4)).toMatchObject({ status: 'failed', attempts: 1, error: { status: 400, code: 'invalid_request' } });
    expect(node.attempts(page('bad-request', 4))).toBe(1);
  });

  it('never leaves a torn image behind and retries it', async () => {
    const b = await batch([page('torn-once', 1)]);
    const { code } = await shootInProcess(b.args);
    expect(code).toBe(0);
    const files = await fs.readdir(b.out);
    expect(files.filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const [record] = await manifestRecords(b.manifest);
    expect(record).toMatchObject({ status: 'ok', attempts: 2 });
    PNG.sync.read(await fs.readFile(path.join(b.out, record.file!)));
  });

  it('gives up on an item after --retries or --shed-retries, and on the batch after --retry-budget', async () => {
    const perItem = await batch([page('502-always', 1)]);
    expect((await shootInProcess([...perItem.args, '--retries', '2'], { throttle: neverThrottle() })).code).toBe(1);
    expect(node.attempts(page('502-always', 1))).toBe(3);
    expect((await manifestRecords(perItem.manifest))[0].error?.message).toContain('--retries');

    const shedding = await batch([page('shed-always', 1)]);
    expect((await shootInProcess([...shedding.args, '--retries', '0', '--shed-retries', '1'], { throttle: neverThrottle() })).code).toBe(1);
    expect(node.attempts(page('shed-always', 1))).toBe(2);
    expect((await manifestRecords(shedding.manifest))[0]).toMatchObject({ status: 'failed', error: { status: 503, code: 'saturated' } });
    expect((await manifestRecords(shedding.manifest))[0].error?.message).toContain('--shed-retries');

    const lines = [1, 2, 3, 4, 5].map((i) => page('502-always', `budget-${i}`));
    const budget = await batch(lines);
    expect((await shootInProcess([...budget.args, '--retry-budget', '3', '--concurrency', '1'], { throttle: neverThrottle() })).code).toBe(1);
    expect(lines.reduce((sum, u) => sum + node.attempts(u), 0)).toBe(5 + 3);
  });

  it('holds retries back locally once the fleet turns most requests away', async () => {
    const lines = Array.from({ length: 6 }, (_, i) => page('502-always', `throttle-${i}`));
    const b = await batch(lines);
    // A coin that always lands "reject" whenever the probability is above zero.
    const throttle = createAdaptiveThrottle({ random: () => 0 });
    const { code, stderr } = await shootInProcess([...b.args, '--retries', '3', '--concurrency', '2'], { throttle });
    expect(code).toBe(1);
    const sent = lines.reduce((sum, u) => sum + node.attempts(u), 0);
    expect(sent).toBeLessThan(lines.length * 4);
    expect(stderr).toMatch(/held back by the throttle [1-9]/);
  });

  it('spends no retries on being held back while the fleet accepts work, and fails when it accepts none', async () => {
    const pacing = await batch([page('ok', 'paced')]);
    expect((await shootInProcess([...pacing.args, '--retries', '1'], { throttle: holdBack(4, true) })).code).toBe(0);
    expect((await manifestRecords(pacing.manifest))[0]).toMatchObject({ status: 'ok', attempts: 1 });

    const dead = await batch([page('ok', 'dead')]);
    expect((await shootInProcess([...dead.args, '--retries', '2'], { throttle: holdBack(100, false) })).code).toBe(1);
    expect((await manifestRecords(dead.manifest))[0]).toMatchObject({ status: 'failed', attempts: 0, error: { code: 'throttled' } });
    expect(node.attempts(page('ok', 'dead'))).toBe(0);
  });

  it('records bad lines with their line number and exits 1', async () => {
    const b = await batch([page('ok', 1), 'not a url', `{"url":"${page('ok', 3)}"`, page('bad-request', 4)]);
    const { code, stderr } = await shootInProcess(b.args);
    expect(code).toBe(1);
    const byLine = new Map((await manifestRecords(b.manifest)).map((r) => [r.line, r]));
    expect(byLine.get(1)?.status).toBe('ok');
    expect(byLine.get(2)).toMatchObject({ status: 'failed', error: { code: 'invalid_line' } });
    expect(byLine.get(3)).toMatchObject({ status: 'failed', error: { code: 'invalid_line' } });
    expect(byLine.get(4)).toMatchObject({ status: 'failed', error: { code: 'invalid_request' } });
    expect(stderr).toContain('line 2 skipped');
    expect(stderr).toMatch(/invalid lines\s+2/);
  });

  it('resumes: a second run redoes only what did not succeed', async () => {
    const b = await batch([page('ok', 1), page('bad-request', 2), page('ok', 3)]);
    expect((await shootInProcess(b.args)).code).toBe(1);
    const fileOfLine1 = async () => path.join(b.out, (await manifestRecords(b.manifest)).find((r) => r.line === 1)!.file!);
    const ok1 = await fs.stat(await fileOfLine1());

    const { code, stderr } = await shootInProcess(b.args);
    expect(code).toBe(1);
    expect(stderr).toContain('2 line(s) already ok');
    expect(node.attempts(page('ok', 1))).toBe(1);
    expect(node.attempts(page('ok', 3))).toBe(1);
    expect(node.attempts(page('bad-request', 2))).toBe(2);
    const again = await fs.stat(await fileOfLine1());
    expect(again.mtimeMs).toBe(ok1.mtimeMs);

    // An image deleted since is done again; a line whose URL changed is too.
    await fs.rm(await fileOfLine1());
    await fs.writeFile(b.input, [page('ok', 1), page('ok', 2), page('ok', 3)].join('\n'));
    expect((await shootInProcess(b.args)).code).toBe(0);
    expect(node.attempts(page('ok', 1))).toBe(2);
    expect(node.attempts(page('ok', 2))).toBe(1);
    expect(node.attempts(page('ok', 3))).toBe(1);
  });

  it('sends the token from the env it was given as a bearer token', async () => {
    const b = await batch([page('ok', 'token')]);
    expect((await shootInProcess(b.args, { env: { SHOTFLEET_TOKEN: 's3cret' } })).code).toBe(0);
    expect(node.requests.find((r) => r.pageUrl === page('ok', 'token'))?.authorization).toBe('Bearer s3cret');
  });

  it('reads stdin and applies flag defaults that a JSON line overrides', async () => {
    const b = await batch([]);
    const stdin = `${page('ok', 'in-1')}\n{"url":"${page('ok', 'in-2')}","format":"png","viewport":{"height":200}}\n`;
    const args = ['-', '--endpoint', node.url, '--out', b.out, '--format', 'jpeg', '--quality', '50', '--width', '640'];
    expect((await shootInProcess(args, { stdin })).code).toBe(0);
    expect(node.requests.find((r) => r.pageUrl === page('ok', 'in-1'))?.body).toEqual({
      url: page('ok', 'in-1'),
      format: 'jpeg',
      quality: 50,
      viewport: { width: 640, height: 800 },
    });
    expect(node.requests.find((r) => r.pageUrl === page('ok', 'in-2'))?.body).toEqual({
      url: page('ok', 'in-2'),
      format: 'png',
      viewport: { width: 640, height: 200 },
    });
  });

  it('records the key and link a node returns with --store', async () => {
    const b = await batch([page('store', 'x1')]);
    expect((await shootInProcess([...b.args, '--store'])).code).toBe(0);
    expect(node.requests.find((r) => r.pageUrl === page('store', 'x1'))?.body.store).toBe(true);
    const [record] = await manifestRecords(b.manifest);
    expect(record).toMatchObject({
      status: 'ok',
      bucket: 'b',
      key: `shots/x1-t${testIds.size}.png`,
      url: `http://s3.test/b/x1-t${testIds.size}.png`,
      bytes: 123,
      timings: { uploadMs: 3 },
    });
    expect(record.file).toBeUndefined();
  });

  it('on interruption records what finished, drops what did not, and exits 130', async () => {
    const lines = Array.from({ length: 8 }, (_, i) => page('slow', i + 1));
    const b = await batch(lines);
    const controller = new AbortController();
    const watcher = (async () => {
      for (let i = 0; i < 200; i++) {
        await new Promise((r) => setTimeout(r, 25));
        const text = await fs.readFile(b.manifest, 'utf8').catch(() => '');
        if (text.includes('"ok"')) return controller.abort();
      }
    })();
    const { code, stderr } = await shootInProcess([...b.args, '--concurrency', '2'], { signal: controller.signal });
    await watcher;
    expect(code).toBe(130);
    expect(stderr).toContain('run the same command again to resume');
    const records = await manifestRecords(b.manifest);
    expect(records.length).toBeGreaterThan(0);
    expect(records.length).toBeLessThan(lines.length);
    const files = (await fs.readdir(b.out)).filter((f) => f !== 'manifest.jsonl');
    expect(files.sort()).toEqual(records.map((r) => r.file).sort());

    expect((await shootInProcess([...b.args, '--concurrency', '2'])).code).toBe(0);
    for (const r of records) expect(node.attempts(r.url!)).toBe(1);
    expect(new Set((await manifestRecords(b.manifest)).map((r) => r.line)).size).toBe(lines.length);
  });
});

function neverThrottle() {
  return { tryAcquire: () => true, record: () => {}, rejectProbability: () => 0, fleetAccepting: () => true };
}

/** Holds the first `times` attempts back, whatever happens. */
function holdBack(times: number, fleetAccepting: boolean) {
  let asked = 0;
  return { tryAcquire: () => ++asked > times, record: () => {}, rejectProbability: () => 0.5, fleetAccepting: () => fleetAccepting };
}

describe("shotfleet shoot's command line", () => {
  it('prints usage for --help and exits 2 on a usage error', async () => {
    // Through the command's run() in this process; the SIGINT test below runs it as a process.
    const help = await runCommandInProcess(shootCommand, ['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('usage: shotfleet shoot FILE --endpoint URL');
    const bad = await runCommandInProcess(shootCommand, ['urls.txt']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--endpoint is required');
  });
});

describe('shotfleet shoot as a process', () => {
  it('on SIGINT finishes its manifest writes and exits non-zero', async () => {
    const lines = Array.from({ length: 20 }, (_, i) => page('slow', i + 1));
    const b = await batch(lines);
    const run = spawnShoot([...b.args, '--concurrency', '2']);
    try {
      for (let i = 0; i < 400 && !(await fs.readFile(b.manifest, 'utf8').catch(() => '')).includes('"ok"'); i++) {
        await new Promise((r) => setTimeout(r, 25));
      }
      run.proc.kill('SIGINT');
      expect(await run.exited).toBe(130);
    } finally {
      run.proc.kill('SIGKILL');
    }
    const records = await manifestRecords(b.manifest);
    expect(records.length).toBeGreaterThan(0);
    expect(records.length).toBeLessThan(lines.length);
    expect(records.every((r) => r.status === 'ok')).toBe(true);
    expect(run.output()).toContain('interrupted');
  });
});
