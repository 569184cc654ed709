import { TimeoutError } from 'puppeteer-core';
import { describe, expect, it } from 'vitest';
import { createAdmission } from '../src/admission/index.js';
import { createLogger } from '../src/log/logger.js';
import { createNodeMetrics } from '../src/metrics/node-metrics.js';
import { createOptionsSchema, parseRenderOptions } from '../src/request/options.js';
import { createRenderService } from '../src/pipeline/render-service.js';
import type { PagePool } from '../src/render-pool/page-pool.js';
import type { PageSlot } from '../src/render-pool/page-slot.js';
import type { SessionStore } from '../src/sessions/session-store.js';
import type { UrlPolicy } from '../src/policy/index.js';

/**
 * The render service around a stand-in page (real pages are in the browser tests): how it classifies what a render
 * throws, and that every path gives the page and the admission permit back.
 */
function serviceWith(emulate: () => Promise<void>) {
  const released: string[] = [];
  const slot = {
    id: 1,
    runRender: (_rules: unknown, _signal: AbortSignal, work: () => Promise<unknown>) => work(),
    emulate,
    gone: new Promise<never>(() => undefined),
    broken: false,
    markBroken() {
      slot.broken = true;
    },
    lost: () => false,
    usable: () => !slot.broken,
    answers: async () => true,
  };
  const pool = {
    acquire: async () => slot as unknown as PageSlot,
    release: () => void released.push(slot.broken ? 'broken' : 'clean'),
  } as unknown as PagePool;
  const metrics = createNodeMetrics();
  const admission = createAdmission(
    { pages: 1, queueMax: 2, maxMemoryBytes: 1e12, adaptive: false, enabled: true },
    { now: Date.now, memoryBytes: () => 0, metrics },
  );
  const service = createRenderService({
    pool,
    admission,
    policy: { checkPageUrl: async () => undefined } as unknown as UrlPolicy,
    storage: null,
    sessions: {} as SessionStore,
    metrics,
    maxPageHeight: 16_384,
    maxPixels: 100_000_000,
    nodeId: 'test',
  });
  const schema = createOptionsSchema({ maxViewport: 4096, maxTimeoutMs: 60_000, defaultTimeoutMs: 30_000, maxPixels: 100_000_000 });
  const shoot = () =>
    service.screenshot({
      options: parseRenderOptions(schema, { url: 'http://127.0.0.1:9/', timeout: 5000 }),
      arrivedAt: Date.now(),
      signal: new AbortController().signal,
      log: createLogger('silent'),
    });
  return { shoot, released, admission };
}

describe('the render service', () => {
  it("answers puppeteer's TimeoutError from any step as the deadline's 504, and tears the page down", async () => {
    const { shoot, released, admission } = serviceWith(async () => {
      throw new TimeoutError('Waiting failed: 3000ms exceeded');
    });
    await expect(shoot()).rejects.toMatchObject({ code: 'timeout', status: 504 });
    expect(released).toEqual(['broken']);
    expect(admission.snapshot().inUse).toBe(0);
  });

  it('passes any other error on as it is, for the HTTP layer to answer 500 without its text', async () => {
    const { shoot, released, admission } = serviceWith(async () => {
      throw new Error('Protocol error: something internal');
    });
    await expect(shoot()).rejects.toThrow('Protocol error: something internal');
    expect(released).toEqual(['broken']);
    expect(admission.snapshot().inUse).toBe(0);
  });
});
