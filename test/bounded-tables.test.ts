import { describe, expect, it } from 'vitest';
import { createRenderEstimates } from '../src/admission/render-estimates.js';
import { createOptionsSchema, parseRenderOptions } from '../src/request/options.js';
import { costClass } from '../src/pipeline/render-service.js';

/** No table in the node grows with what clients send: estimates are kept per bucket, and the table is capped. */
describe('bounded memory: per-class render estimates', () => {
  const schema = createOptionsSchema({ maxViewport: 4096, maxTimeoutMs: 60_000, defaultTimeoutMs: 30_000, maxPixels: 100_000_000 });
  const options = (viewport: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    parseRenderOptions(schema, { url: 'http://example.test/', viewport, ...extra });

  it('10 000 different viewports and fractional scale factors fall into a handful of cost classes', () => {
    const classes = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const width = 100 + ((i * 7919) % 3900);
      const height = 100 + ((i * 104729) % 3900);
      const deviceScaleFactor = 1 + (i % 97) / 100;
      classes.add(costClass(options({ width, height, deviceScaleFactor })));
    }
    // Device pixels from 10^4 to ~3·10^7, in powers of two: at most ~13 buckets, one format.
    expect(classes.size).toBeLessThanOrEqual(16);
    expect(classes.size).toBeGreaterThan(5);
  });

  it('sizes that cost about the same share a class; format, speed mode and fullPage keep their own', () => {
    expect(costClass(options({ width: 1280, height: 800 }))).toBe(costClass(options({ width: 1281, height: 799, deviceScaleFactor: 1.001 })));
    expect(costClass(options({ width: 1280, height: 800 }))).not.toBe(costClass(options({ width: 1280, height: 800 }, { format: 'jpeg' })));
    expect(costClass(options({ width: 1280, height: 800 }))).not.toBe(costClass(options({ width: 1280, height: 800 }, { optimizeForSpeed: true })));
    expect(costClass(options({ width: 1280, height: 800 }, { fullPage: true }))).toMatch(/:full$/);
    expect(costClass(options({ width: 1280, height: 800 }))).not.toBe(costClass(options({ width: 4096, height: 4096, deviceScaleFactor: 2 })));
  });

  it('the estimates table keeps at most 256 classes, dropping the oldest, and still answers for recent ones', () => {
    const estimates = createRenderEstimates();
    for (let i = 0; i < 1000; i++) estimates.record(`class-${i}`, 100 + i);
    expect(estimates.forClass('class-999')).toBe(1099);
    expect(estimates.forClass('class-744')).toBe(844);
    // Forgotten: falls back to the overall estimate.
    expect(estimates.forClass('class-0')).toBe(estimates.overall());
  });
});
