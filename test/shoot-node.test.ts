import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifest } from '../src/shoot/manifest.js';
import { startShotfleet, type RunningProcess } from './helpers/processes.js';
import { s3NodeEnv, startS3, type RunningS3 } from './helpers/s3.js';
import { makeBatch, manifestRecords, spawnShoot } from './helpers/shoot-run.js';

// End to end: the real CLI against real nodes (Chromium) rendering pages this test serves, and s3rver.

let pages: http.Server;
let pageBase: string;
const pageHits = new Map<string, number>();
let node: RunningProcess;
let s3: RunningS3;
let root: string;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'shoot-node-'));
  pages = http.createServer((req, res) => {
    pageHits.set(req.url ?? '', (pageHits.get(req.url ?? '') ?? 0) + 1);
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(`<!doctype html><body style="margin:0;background:#2a7"><h1>${req.url}</h1></body>`);
  });
  await new Promise<void>((resolve) => pages.listen(0, '127.0.0.1', resolve));
  pageBase = `http://127.0.0.1:${(pages.address() as AddressInfo).port}`;
  s3 = await startS3();
  node = await startShotfleet('serve', {
    ...s3NodeEnv(s3),
    SHOTFLEET_PAGES: '2',
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

async function shootCli(args: string[]) {
  const run = spawnShoot(args);
  try {
    return { code: await run.exited, output: run.output() };
  } finally {
    run.proc.kill('SIGKILL');
  }
}

const magic = { jpeg: [0xff, 0xd8, 0xff], webp: [0x52, 0x49, 0x46, 0x46] } as const;

/** Throws unless `bytes` are an image of `format`: PNG decoded in full, JPEG and WebP by signature. */
function assertImage(bytes: Buffer, format: string) {
  if (format === 'png') {
    const png = PNG.sync.read(bytes);
    expect(png.width).toBe(400);
    return;
  }
  expect([...bytes.subarray(0, 3)]).toEqual(magic[format as 'jpeg' | 'webp'].slice(0, 3));
  if (format === 'webp') expect(bytes.subarray(8, 12).toString('latin1')).toBe('WEBP');
}

describe('shotfleet shoot against a real node', () => {
  it('turns a 50-line file into 50 images of the asked formats', { timeout: 180_000 }, async () => {
    const formats = ['png', 'jpeg', 'webp'];
    const lines = Array.from({ length: 50 }, (_, i) => JSON.stringify({ url: `${pageBase}/fifty/${i}`, format: formats[i % 3] }));
    const b = await batch(lines);
    const { code, output } = await shootCli([b.input, '--endpoint', node.url, '--out', b.out, '--width', '400', '--height', '300', '--concurrency', '4']);
    expect(code, output).toBe(0);
    const records = [...(await readManifest(b.manifest)).values()];
    expect(records).toHaveLength(50);
    const images = (await fs.readdir(b.out)).filter((f) => f !== 'manifest.jsonl');
    expect(images).toHaveLength(50);
    for (const r of records) {
      expect(r.status).toBe('ok');
      const format = formats[(r.line - 1) % 3];
      expect(r.format).toBe(format);
      expect(r.file).toBe(`${r.line}-127-0-0-1-${new URL(pageBase).port}-fifty-${r.line - 1}.${format === 'jpeg' ? 'jpg' : format}`);
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
    const { code, output } = await shootCli([b.input, '--endpoint', node.url, '--out', b.out, '--width', '400', '--height', '300']);
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
    const lines = Array.from({ length: 24 }, (_, i) => `${pageBase}/resume/${i}`);
    const b = await batch(lines);
    const args = [b.input, '--endpoint', node.url, '--out', b.out, '--width', '400', '--height', '300', '--format', 'jpeg', '--concurrency', '2'];
    const first = spawnShoot(args);
    try {
      for (let i = 0; i < 600; i++) {
        const done = (await fs.readFile(b.manifest, 'utf8').catch(() => '')).split('"ok"').length - 1;
        if (done >= 5 || first.proc.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      first.proc.kill('SIGKILL');
    }
    await first.exited;
    const finished = [...(await readManifest(b.manifest)).values()].filter((r) => r.status === 'ok');
    expect(finished.length).toBeGreaterThanOrEqual(5);
    expect(finished.length).toBeLessThan(lines.length);

    const { code, output } = await shootCli(args);
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
    const b = await batch(Array.from({ length: 4 }, (_, i) => `${pageBase}/store/${i}`));
    const { code, output } = await shootCli([b.input, '--endpoint', node.url, '--out', b.out, '--store', '--width', '400', '--height', '300']);
    expect(code, output).toBe(0);
    const records = [...(await readManifest(b.manifest)).values()];
    expect(records).toHaveLength(4);
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
});

describe('shotfleet shoot against a flooded one-page node', () => {
  let small: RunningProcess;
  beforeAll(async () => {
    small = await startShotfleet('serve', { SHOTFLEET_PAGES: '1', SHOTFLEET_QUEUE_MAX: '1', SHOTFLEET_ALLOW_HOSTS: '127.0.0.1' });
  });
  afterAll(async () => {
    await small?.stop();
  });

  it('waits out the 503s and completes the batch', { timeout: 240_000 }, async () => {
    const lines = Array.from({ length: 40 }, (_, i) => `${pageBase}/flood/${i}`);
    const b = await batch(lines);
    const { code, output } = await shootCli([
      b.input,
      '--endpoint',
      small.url,
      '--out',
      b.out,
      '--format',
      'jpeg',
      '--width',
      '400',
      '--height',
      '300',
      '--concurrency',
      '16',
    ]);
    expect(code, output).toBe(0);
    const final = [...(await readManifest(b.manifest)).values()];
    expect(final.filter((r) => r.status === 'ok')).toHaveLength(40);
    // The node really shed: its own counter, and the extra attempts the client made.
    const metrics = await (await fetch(`${small.url}/metrics`)).text();
    const shed = [...metrics.matchAll(/^shotfleet_shed_total\{[^}]*\} (\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
    expect(shed).toBeGreaterThan(0);
    expect(final.reduce((sum, r) => sum + (r.attempts ?? 0), 0)).toBeGreaterThan(40);
    expect(output).toMatch(/503: [1-9]/);
  });
});
