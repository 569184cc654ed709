import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricValues, request, shoot, solidPage, startSite, waitFor, type Answer, type Site } from './helpers/node-client.js';
import { repoRoot, startShotfleet, type RunningProcess } from './helpers/processes.js';

/** Every metric the README documents, with its type. */
const contractMetrics: Record<string, 'gauge' | 'counter' | 'histogram'> = {
  shotfleet_saturation_ratio: 'gauge',
  shotfleet_pages_in_use: 'gauge',
  shotfleet_pages_max: 'gauge',
  shotfleet_render_queue_length: 'gauge',
  shotfleet_uploads_in_flight: 'gauge',
  shotfleet_uploads_max: 'gauge',
  shotfleet_upload_queue_length: 'gauge',
  shotfleet_upload_backlog_bytes: 'gauge',
  shotfleet_shed_total: 'counter',
  shotfleet_requests_total: 'counter',
  shotfleet_render_duration_seconds: 'histogram',
  shotfleet_queue_wait_seconds: 'histogram',
  shotfleet_upload_duration_seconds: 'histogram',
  shotfleet_browser_restarts_total: 'counter',
  shotfleet_sessions_active: 'gauge',
  shotfleet_key_requests_total: 'counter',
  shotfleet_key_pages_in_use: 'gauge',
};

/** A few of prom-client's default process metrics, standing for the rest. */
const processMetrics = [
  'process_cpu_user_seconds_total',
  'process_resident_memory_bytes',
  'process_start_time_seconds',
  'nodejs_heap_size_used_bytes',
  'nodejs_eventloop_lag_seconds',
];

function promtool(text: string): { status: number | null; output: string } {
  const run = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  if (run.error) throw new Error(`promtool could not run (${run.error.message}); install it with: apt-get install -y prometheus`);
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

describe('/metrics of a real node', () => {
  let site: Site;
  let node: RunningProcess;

  beforeAll(async () => {
    site = await startSite((req, res) => {
      if (req.url === '/never') return; // holds the render until its deadline
      res.writeHead(200, { 'content-type': 'text/html' }).end(solidPage('rgb(10,20,30)', '<p id="here">x</p>'));
    });
    node = await startShotfleet('serve', { SHOTFLEET_PAGES: '2', SHOTFLEET_ALLOW_HOSTS: '127.0.0.1' }, { timeoutMs: 60_000 });
  });

  afterAll(async () => {
    await node?.stop();
    await site?.close();
  });

  it('passes promtool check metrics with nothing to report, and has every documented metric', async () => {
    const text = (await request(`${node.url}/metrics`)).bytes.toString('utf8');
    const check = promtool(text);
    expect(check.output).toBe('');
    expect(check.status).toBe(0);
    for (const [name, type] of Object.entries(contractMetrics)) expect(text, name).toContain(`# TYPE ${name} ${type}\n`);
    for (const name of processMetrics) expect(text, name).toMatch(new RegExp(`^${name}(\\{[^}]*\\})? `, 'm'));
    // Every shed reason is there from the start, so rate() works before the first shed.
    expect(Object.keys(metricValues(text, 'shotfleet_shed_total', 'reason')).sort()).toEqual([
      'deadline',
      'draining',
      'memory',
      'queue_full',
      'queue_timeout',
      'upload_backlog',
    ]);
    expect(metricValues(text, 'shotfleet_pages_max')['']).toBe(2);
  });

  it('shotfleet_requests_total{code} matches what the clients saw, and renders are counted once each', async () => {
    const page = `${site.url}/page`;
    const seen: Answer[] = [];
    const send = async (answer: Promise<Answer>) => seen.push(await answer);
    await send(shoot(node.url, { url: page }));
    await send(shoot(node.url, { url: page, format: 'jpeg', quality: 50 }));
    await send(request(`${node.url}/screenshot?${new URLSearchParams({ url: page, width: '300', height: '200' })}`));
    await send(shoot(node.url, { url: page, quality: 50 }));
    await send(shoot(node.url, { url: 1 }));
    await send(request(`${node.url}/screenshot`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' }));
    await send(request(`${node.url}/screenshot`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{}' }));
    await send(shoot(node.url, { url: page.replace('127.0.0.1', '127.0.0.2') }));
    await send(shoot(node.url, { url: page, selector: '#absent' }));
    await send(shoot(node.url, { url: `${site.url}/never`, timeout: 3000 }));
    // Health and metrics requests are not screenshot requests.
    await request(`${node.url}/status`);
    await request(`${node.url}/livez`);

    const bySeen: Record<string, number> = {};
    for (const a of seen) bySeen[a.status] = (bySeen[a.status] ?? 0) + 1;
    // The mix covers successes and the client errors the node can tell apart.
    for (const code of ['200', '400', '403', '404', '415', '422']) expect(bySeen[code], `status ${code} in ${JSON.stringify(bySeen)}`).toBeGreaterThan(0);

    const text = (await request(`${node.url}/metrics`)).bytes.toString('utf8');
    expect(metricValues(text, 'shotfleet_requests_total', 'code')).toEqual(bySeen);
    const renders = Object.values(metricValues(text, 'shotfleet_render_duration_seconds_count', 'format')).reduce((a, b) => a + b, 0);
    expect(renders).toBe(bySeen['200']);
    expect(metricValues(text, 'shotfleet_pages_in_use')['']).toBe(0);
    expect(metricValues(text, 'shotfleet_render_queue_length')['']).toBe(0);
    expect(promtool(text).output).toBe('');
  });

  /**
   * Memory shedding counts the node and its browsers; the dashboard must show that figure, not the node's RSS
   * alone (Chromium's renderers are most of it), or a node shedding `memory` looks half empty.
   */
  describe('shotfleet_memory_bytes', () => {
    it("the node exports it: its own RSS plus its browsers' memory, the figure memory shedding compares", async () => {
      // The memory probe passes over the browsers every second: until its first pass the figure is the node's alone.
      const memoryAndRss = async () => {
        const text = (await request(`${node.url}/metrics`)).bytes.toString('utf8');
        return { memory: metricValues(text, 'shotfleet_memory_bytes')[''], rss: metricValues(text, 'process_resident_memory_bytes')[''] };
      };
      // Chromium's browser, GPU and renderer processes take tens of MB at least.
      const browsersCounted = (m: { memory: number; rss: number }) => m.memory - m.rss > 20 * 2 ** 20;
      await waitFor('the browsers in shotfleet_memory_bytes', async () => browsersCounted(await memoryAndRss()), 10_000, 250).catch(() => undefined);
      const { memory, rss } = await memoryAndRss();
      expect(memory, 'shotfleet_memory_bytes in /metrics').toBeGreaterThan(0);
      expect(memory - rss).toBeGreaterThan(20 * 2 ** 20);
    });

    it('the dashboard charts it', () => {
      const dashboard = fs.readFileSync(path.join(repoRoot, 'deploy/grafana/shotfleet.json'), 'utf8');
      const exprs = [...dashboard.matchAll(/"expr": "([^"\\]*(?:\\.[^"\\]*)*)"/g)].map((m) => JSON.parse(`"${m[1]}"`) as string);
      expect(exprs.some((e) => /\bshotfleet_memory_bytes\b/.test(e))).toBe(true);
    });
  });
});
