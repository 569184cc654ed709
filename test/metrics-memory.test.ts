import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { metricValues, request } from './helpers/node-client.js';
import { repoRoot, startShotfleet, type RunningProcess } from './helpers/processes.js';

/**
 * Memory shedding counts the node and its browsers; the dashboard must show that figure, not the node's RSS
 * alone (Chromium's renderers are most of it), or a node shedding `memory` looks half empty.
 */
describe('shotfleet_memory_bytes', () => {
  let node: RunningProcess | undefined;
  afterAll(async () => {
    await node?.stop();
  });

  it("a node exports it: its own RSS plus its browsers' memory, the figure memory shedding compares", { timeout: 150_000 }, async () => {
    node = await startShotfleet('serve', { SHOTFLEET_PAGES: '1' });
    // Read after the memory probe's first pass over the browsers (every second).
    await new Promise((r) => setTimeout(r, 2500));
    const text = (await request(`${node.url}/metrics`)).bytes.toString('utf8');
    const memory = metricValues(text, 'shotfleet_memory_bytes')[''];
    const rss = metricValues(text, 'process_resident_memory_bytes')[''];
    expect(memory, 'shotfleet_memory_bytes in /metrics').toBeGreaterThan(0);
    // Chromium's browser, GPU and renderer processes take tens of MB at least.
    expect(memory - rss).toBeGreaterThan(20 * 2 ** 20);
  });

  it('the dashboard charts it', () => {
    const dashboard = fs.readFileSync(path.join(repoRoot, 'deploy/grafana/shotfleet.json'), 'utf8');
    const exprs = [...dashboard.matchAll(/"expr": "([^"\\]*(?:\\.[^"\\]*)*)"/g)].map((m) => JSON.parse(`"${m[1]}"`) as string);
    expect(exprs.some((e) => /\bshotfleet_memory_bytes\b/.test(e))).toBe(true);
  });
});
