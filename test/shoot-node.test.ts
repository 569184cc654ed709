import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseShootOptions } from '../src/cli/shoot-options.js';
import { readManifest } from '../src/shoot/manifest.js';
import { shoot } from '../src/shoot/shoot.js';
import { startShotfleet, type RunningProcess } from './helpers/processes.js';
import { s3NodeEnv, startS3, type RunningS3 } from './helpers/s3.js';
import { makeBatch, manifestRecords, shootInProcess, spawnShoot } from './helpers/shoot-run.js';

// End to end: the real CLI against a real node (Chromium) rendering pages this test serves, and s3rver. The CLI runs
// as its own process where a test kills it, and in this process otherwise (the same shoot(), without a process start).

let pages: http.Server;
let pageBase: string;
const pageHits = new Map<string, number>();
let node: RunningProcess;
let s3: RunningS3;
let root: string;

/** Pixels do not matter here: a small viewport keeps each render cheap. */
const size = ['--width', '200', '--height', '150'];
/** The node holds 2 renders and queues 1: at most 3 requests at once are served without a 503. */
const nodeSlots = 3;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'shoot-node-'));
  pages = http.createServer((req, res) => {
    pageHits.set(req.url ?? '', (pageHits.get(req.url ?? '') ?? 0) + 1);
    // The resumed batch's pages arrive slowly, so the run killed after its first few lines cannot have finished them all.
    const delay = req.url?.startsWith('/resume/') ? 150 : 0;
    setTimeout(() => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(`<!doctype html><body style="margin:0;background:#2a7"><h1>${req.url}</h1></body>`);
    }, delay);
  });
  await new Promise<void>((resolve) => pages.listen(0, '127.0.0.1', resolve));
  pageBase = `http://127.0.0.1:${(pages.address() as AddressInfo).port}`;
  s3 = await startS3();
  node = await startShotfleet('serve', {
    ...s3NodeEnv(s3),
    SHOTFLEET_PAGES: '2',
    SHOTFLEET_QUEUE_MAX: String(nodeSlots - 2),
    SHOTFLEET_ALLOW_HOSTS: '127.0.0.1',
  });
});

afterAll(async () => {
  await node?.stop();
  await s3?.stop();
  pages?.closeAllConnections();
  await new Promise((r) => pages?.close(r));
  await fs.rm(root, { recursive: true, force: true });
});

function batch(lines: string[]) {
  return makeBatch(root, lines);
}

/** `shotfleet shoot ARGS` in this process (quick backoff after failures), with its progress and summary as `output`. */
async function shootHere(args: string[]) {
  const { code, stderr } = await shootInProcess(args);
  return { code, output: stderr };
}

/** `shotfleet shoot ARGS` in this process exactly as the command runs it: its own retry policy and throttle. */
async function shootAsShipped(args: string[]) {
  const options = parseShootOptions(args, {});
  if (!options) throw new Error('--help given');
  let output = '';
  const code = await shoot(options, {
    stdin: Readable.from(['']),
    stderr: { write: (text: string) => (output += text) },
    signal: new AbortController().signal,
  });
  return { code, output };
}

async function shedTotal(base: string): Promise<number> {
  const metrics = await (await fetch(`${base}/metrics`)).text();
  return [...metrics.matchAll(/^shotfleet_shed_total\{[^}]*\} (\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
}

const magic = { jpeg: [0xff, 0xd8, 0xff], webp: [0x52, 0x49, 0x46, 0x46] } as const;

/** Throws unless `bytes` are an image of `format`: PNG decoded in full, JPEG and WebP by signature. */
function assertImage(bytes: Buffer, format: string) {
  if (format === 'png') {
    const png = PNG.sync.read(bytes);
    expect([png.width, png.height]).toEqual([200, 150]);
    return;
  }
  expect([...bytes.subarray(0, 3)]).toEqual(magic[format as 'jpeg' | 'webp'].slice(0, 3));
  if (format === 'webp') expect(bytes.subarray(8, 12).toString('latin1')).toBe('WEBP');
}

describe('shotfleet shoot against a real node', () => {
  it('turns a file of lines into one image per line, of the format each line asked for', { timeout: 180_000 }, async () => {
    const formats = ['png', 'jpeg', 'webp'];
    const lines = Array.from({ length: 9 }, (_, i) => JSON.stringify({ url: `${pageBase}/batch/${i}`, format: formats[i % 3] }));
    const b = await batch(lines);
    const { code, output } = await shootHere([b.input, '--endpoint', node.url, '--out', b.out, ...size, '--concurrency', String(nodeSlots)]);
    expect(code, output).toBe(0);
    const records = [...(await readManifest(b.manifest)).values()];
    expect(records).toHaveLength(lines.length);
    const images = (await fs.readdir(b.out)).filter((f) => f !== 'manifest.jsonl');
    expect(images).toHaveLength(lines.length);
    for (const r of records) {
      expect(r.status).toBe('ok');
      const format = formats[(r.line - 1) % 3];
      expect(r.format).toBe(format);
      expect(r.file).toBe(`${r.line}-127-0-0-1-${new URL(pageBase).port}-batch-${r.line - 1}.${format === 'jpeg' ? 'jpg' : format}`);
      const bytes = await fs.readFile(path.join(b.out, r.file!));
      expect(bytes.length).toBe(r.bytes);
      assertImage(bytes, format);
    }
  });

  it('records good and bad lines as they are, and exits 1', { timeout: 120_000 }, async () => {
    const b = await batch([
      `${pageBase}/mixed/good-1`, // 1: ok
      'this is not a url', // 2: invalid line
      // 3: 400 from the node: above its SHOTFLEET_MAX_VIEWPORT (4096), which shoot cannot know beforehand
      JSON.stringify({ url: `${pageBase}/mixed/too-wide`, viewport: { width: 5000, height: 300 } }),
      '# a comment', // 4: skipped
      JSON.stringify({ url: `${pageBase}/mixed/no-such-element`, selector: '#missing' }), // 5: 422
      `${pageBase}/mixed/good-2`, // 6: ok
    ]);
    const { code, output } = await shootHere([b.input, '--endpoint', node.url, '--out', b.out, ...size]);
    expect(code, output).toBe(1);
    const byLine = await readManifest(b.manifest);
    expect([...byLine.keys()].sort((x, y) => x - y)).toEqual([1, 2, 3, 5, 6]);
    expect(byLine.get(1)?.status).toBe('ok');
    expect(byLine.get(6)?.status).toBe('ok');
    expect(byLine.get(2)).toMatchObject({ status: 'failed', error: { code: 'invalid_line' } });
    expect(byLine.get(3)).toMatchObject({ status: 'failed', attempts: 1, error: { status: 400, code: 'invalid_request' } });
    // (a loaded machine may shed line 5 with a 503 first, so only its final answer is asserted)
    expect(byLine.get(5)).toMatchObject({ status: 'failed', error: { status: 422, code: 'selector_not_found' } });
    expect(output).toMatch(/failed\s+2/);
  });

  it('resumes a killed run without redoing what it finished', { timeout: 180_000 }, async () => {
    const lines = Array.from({ length: 9 }, (_, i) => `${pageBase}/resume/${i}`);
    const b = await batch(lines);
    const args = [b.input, '--endpoint', node.url, '--out', b.out, ...size, '--format', 'jpeg', '--concurrency', '2'];
    // The first run is a process of its own: it is killed with SIGKILL once a few lines are done.
    const first = spawnShoot(args);
    try {
      for (let i = 0; i < 1200; i++) {
        const done = (await fs.readFile(b.manifest, 'utf8').catch(() => '')).split('"ok"').length - 1;
        if (done >= 3 || first.proc.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 25));
      }
    } finally {
      first.proc.kill('SIGKILL');
    }
    await first.exited;
    const finished = [...(await readManifest(b.manifest)).values()].filter((r) => r.status === 'ok');
    expect(finished.length).toBeGreaterThanOrEqual(3);
    expect(finished.length).toBeLessThan(lines.length);

    const { code, output } = await shootHere(args);
    expect(code, output).toBe(0);
    expect(output).toContain(`${finished.length} line(s) already ok`);
    for (const r of finished) expect(pageHits.get(new URL(r.url!).pathname)).toBe(1);
    const final = await readManifest(b.manifest);
    expect([...final.values()].filter((r) => r.status === 'ok')).toHaveLength(lines.length);
    const records = await manifestRecords(b.manifest);
    for (const r of finished) expect(records.filter((x) => x.line === r.line)).toHaveLength(1);
    for (const r of final.values()) assertImage(await fs.readFile(path.join(b.out, r.file!)), 'jpeg');
  });

  it('with --store records links whose bytes match the stored objects', { timeout: 120_000 }, async () => {
    const b = await batch(Array.from({ length: 3 }, (_, i) => `${pageBase}/store/${i}`));
    const { code, output } = await shootHere([b.input, '--endpoint', node.url, '--out', b.out, '--store', ...size]);
    expect(code, output).toBe(0);
    const records = [...(await readManifest(b.manifest)).values()];
    expect(records).toHaveLength(3);
    for (const r of records) {
      expect(r).toMatchObject({ status: 'ok', bucket: s3.bucket });
      expect(r.file).toBeUndefined();
      const linked = Buffer.from(await (await fetch(r.url!)).arrayBuffer());
      const stored = await s3.getObject(r.key!);
      expect(linked.equals(stored.body)).toBe(true);
      expect(linked.length).toBe(r.bytes);
      assertImage(linked, 'png');
    }
    expect((await fs.readdir(b.out)).filter((f) => f !== 'manifest.jsonl')).toEqual([]);
  });

  it('a flooded node: waits out the 503s and completes the batch', { timeout: 240_000 }, async () => {
    // Three times as many requests at once as the node holds: most of the first wave is shed. The CLI waits them out
    // with its own retry policy (Retry-After honoured, jittered).
    const lines = Array.from({ length: 3 * nodeSlots }, (_, i) => `${pageBase}/flood/${i}`);
    const b = await batch(lines);
    const shedBefore = await shedTotal(node.url);
    const { code, output } = await shootAsShipped([
      b.input,
      '--endpoint',
      node.url,
      '--out',
      b.out,
      '--format',
      'jpeg',
      ...size,
      '--concurrency',
      String(lines.length),
    ]);
    expect(code, output).toBe(0);
    const final = [...(await readManifest(b.manifest)).values()];
    expect(final.filter((r) => r.status === 'ok')).toHaveLength(lines.length);
    // The node really shed: its own counter, and the extra attempts the client made.
    expect(await shedTotal(node.url)).toBeGreaterThan(shedBefore);
    expect(final.reduce((sum, r) => sum + (r.attempts ?? 0), 0)).toBeGreaterThan(lines.length);
    expect(output).toMatch(/503: [1-9]/);
  });
});
