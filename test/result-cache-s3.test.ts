import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/log/logger.js';
import type { NodeMetrics } from '../src/metrics/node-metrics.js';
import { createResultCache } from '../src/result-cache/result-cache.js';
import { createS3Tier } from '../src/result-cache/s3-tier.js';
import { imageResult, inProcessNode } from './helpers/in-process-node.js';
import { tinyPng } from './helpers/images.js';
import { metricValues } from './helpers/node-client.js';
import { deadEndpoint, s3rverClient, startS3, type RunningS3 } from './helpers/s3.js';

/**
 * The result cache's S3 tier against s3rver, behind the real routes in process (a stub render): two nodes sharing a
 * bucket, and an S3 that is down or never answers, which must cost a bounded wait and never an error.
 */

const page = 'http://127.0.0.1:9/page';
let s3: RunningS3;
let silentS3: http.Server;
let silentEndpoint: string;

beforeAll(async () => {
  s3 = await startS3();
  // Accepts connections and never answers: a slow S3.
  silentS3 = http.createServer(() => undefined);
  await new Promise<void>((resolve) => silentS3.listen(0, '127.0.0.1', resolve));
  silentEndpoint = `http://127.0.0.1:${(silentS3.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await s3?.stop();
  silentS3?.closeAllConnections();
  await new Promise((r) => silentS3?.close(r));
});

/**
 * A node whose cache has an S3 tier at `endpoint` and whose stub render gives bytes naming the node and the render.
 * The lookup bound is generous but where a test needs an S3 that is too slow: on a loaded machine s3rver itself can
 * take a second, and a lookup past the bound skips the tier.
 */
function nodeOnS3(name: string, endpoint: string, prefix: string, lookupTimeoutMs = 10_000) {
  let renders = 0;
  const node = inProcessNode({
    resultCache: (metrics: NodeMetrics) => {
      const tier = createS3Tier({
        client: s3rverClient(endpoint, 1),
        bucket: s3.bucket,
        prefix,
        storePrefix: '',
        presignTtlSeconds: 60,
        lookupTimeoutMs,
        putTimeoutMs: 30_000,
        maxPutsInFlight: 4,
        backoffMs: 60_000,
        log: createLogger('silent'),
        metrics,
      });
      return { cache: createResultCache({ memoryBytes: 1024 * 1024, s3: tier, scope: 'test', metrics }), store: null };
    },
    screenshot: () => {
      renders++;
      return imageResult({ image: Buffer.concat([tinyPng, Buffer.from(`${name} render ${renders}`)]) });
    },
  });
  return Object.assign(node, { renderCount: () => renders });
}

async function waitForKeys(prefix: string, count: number): Promise<string[]> {
  for (let i = 0; i < 300; i++) {
    const keys = (await s3.keys()).filter((k) => k.startsWith(`${prefix}/`));
    if (keys.length >= count) return keys;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`S3 never held ${count} result(s) under ${prefix}/`);
}

describe("the result cache's S3 tier", () => {
  it("one node's render is another node's hit: the same bytes, ETag and Age, no second render", async () => {
    const a = nodeOnS3('a', s3.endpoint, 'shared');
    const b = nodeOnS3('b', s3.endpoint, 'shared');
    const rendered = await a.shoot({ url: page, cacheTtl: 600 });
    expect(rendered.headers.get('x-shotfleet-cache')).toBe('miss');
    const [key] = await waitForKeys('shared', 1);
    expect(key).toMatch(/^shared\/[0-9a-f]{64}$/);
    expect((await s3.getObject(key)).body.equals(rendered.bytes)).toBe(true);

    const fromS3 = await b.shoot({ url: page, cacheTtl: 600 });
    expect(fromS3.status).toBe(200);
    expect(fromS3.headers.get('x-shotfleet-cache')).toBe('hit');
    expect(fromS3.headers.get('server-timing')).toMatch(/cache;desc=hit-s3$/);
    expect(fromS3.headers.get('etag')).toBe(rendered.headers.get('etag'));
    expect(fromS3.bytes.equals(rendered.bytes)).toBe(true);
    expect(b.renderCount()).toBe(0);
    // Now in b's memory as well; a result older than the cacheTtl asked is rendered again.
    expect((await b.shoot({ url: page, cacheTtl: 600 })).headers.get('x-shotfleet-cache')).toBe('hit');
    await new Promise((r) => setTimeout(r, 1100));
    expect((await nodeOnS3('c', s3.endpoint, 'shared').shoot({ url: page, cacheTtl: 1 })).headers.get('x-shotfleet-cache')).toBe('miss');
  });

  it('an S3 that is down: every request is still answered 200 by rendering, and the failure is counted', async () => {
    const node = nodeOnS3('down', await deadEndpoint(), 'down');
    for (let i = 0; i < 3; i++) {
      const answer = await node.shoot({ url: `${page}?${i}`, cacheTtl: 600 });
      expect(answer.status).toBe(200);
      expect(answer.headers.get('x-shotfleet-cache')).toBe('miss');
    }
    expect(node.renderCount()).toBe(3);
    // The first failure skips the tier for a while; the memory tier still answers.
    expect((await node.shoot({ url: `${page}?0`, cacheTtl: 600 })).headers.get('x-shotfleet-cache')).toBe('hit');
    const failures = metricValues(await node.metricsText(), 'shotfleet_result_cache_s3_failures_total', 'operation');
    expect(failures.get).toBeGreaterThanOrEqual(1);
  });

  it('an S3 that never answers costs one bounded wait (then it is skipped), never an error', async () => {
    const node = nodeOnS3('slow', silentEndpoint, 'slow', 300);
    const getFailures = async () => metricValues(await node.metricsText(), 'shotfleet_result_cache_s3_failures_total', 'operation').get ?? 0;
    const first = await node.shoot({ url: page, cacheTtl: 600 });
    expect(first.status).toBe(200);
    expect(first.headers.get('x-shotfleet-cache')).toBe('miss');
    expect(await getFailures()).toBe(1);
    const next = await node.shoot({ url: `${page}?next`, cacheTtl: 600 });
    expect(next.status).toBe(200);
    // Not asked again while it is skipped.
    expect(await getFailures()).toBe(1);
  });
});
