import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config/load.js';
import { createOptionsSchema, widestLimits } from '../src/request/options.js';
import { queryParameters, queryToBody } from '../src/request/query-parameters.js';
import { parseInput } from '../src/shoot/input.js';
import { KnownDevices } from 'puppeteer-core';
import { defaultViewport, effectiveViewport } from '../src/request/viewport.js';
import { parseRenderOptions } from '../src/request/options.js';

const schema = createOptionsSchema({ maxViewport: 4096, maxTimeoutMs: 60_000, defaultTimeoutMs: 30_000, maxPixels: 100_000_000 });

describe('GET parameters come from the request schema', () => {
  const params = queryParameters(schema);
  const names = params.map((p) => p.name);

  it('every scalar option is a parameter, the viewport by its fields; objects, lists and writes are not', () => {
    for (const scalar of ['url', 'format', 'quality', 'fullPage', 'selector', 'waitUntil', 'delay', 'timeout', 'javascript', 'colorScheme']) {
      expect(names).toContain(scalar);
    }
    expect(params.filter((p) => p.path[0] === 'viewport').map((p) => p.name)).toEqual(['width', 'height', 'deviceScaleFactor', 'isMobile']);
    for (const notFlat of ['viewport', 'clip', 'headers', 'cookies', 'hideSelectors', 'blockResourceTypes', 'store', 'key']) {
      expect(names).not.toContain(notFlat);
    }
  });

  it('each schema option of a scalar type is reachable by GET (so a new one needs no edit)', () => {
    const shape = schema.shape as Record<string, { def: { type: string; innerType?: { def: { type: string } } } }>;
    const scalarTypes = ['string', 'number', 'boolean', 'enum'];
    const topLevelScalars = Object.entries(shape)
      .filter(([, field]) => scalarTypes.includes(field.def.innerType?.def.type ?? field.def.type))
      .map(([name]) => name)
      .filter((name) => name !== 'store' && name !== 'key');
    expect(topLevelScalars.length).toBeGreaterThan(15);
    const topLevel = names.filter((n) => !params.find((p) => p.name === n && p.path.length === 2));
    expect(topLevel).toEqual(expect.arrayContaining(topLevelScalars));
    // Beyond plain scalars, only true-or-a-list-of-numbers options (failOnHttpStatus=true, failOnHttpStatus=404,500).
    expect(topLevel.filter((n) => !topLevelScalars.includes(n))).toEqual(['failOnHttpStatus']);
  });

  it('converts by type and nests the viewport; bad values and unknown names are 400s naming the parameter', () => {
    expect(queryToBody(params, { url: 'https://a.test', width: '800', isMobile: 'true', fullPage: '', quality: '70', format: 'jpeg', token: 't' })).toEqual({
      url: 'https://a.test',
      viewport: { width: 800, isMobile: true },
      fullPage: true,
      quality: 70,
      format: 'jpeg',
    });
    expect(() => queryToBody(params, { url: 'https://a.test', width: 'wide' })).toThrow(/width must be a number/);
    expect(() => queryToBody(params, { url: 'https://a.test', fullPage: 'maybe' })).toThrow(/fullPage must be true or false/);
    expect(() => queryToBody(params, { url: 'https://a.test', store: 'true' })).toThrow(/unknown query parameter "store"/);
  });
});

describe("shoot's JSON lines are judged by the same schema", () => {
  it('refuses what any node would refuse, with the field named, and leaves node limits to the node', () => {
    const text = [
      JSON.stringify({ url: 'https://a.test/1', format: 'png', quality: 50 }),
      JSON.stringify({ url: 'https://a.test/2', colour: 'red' }),
      JSON.stringify({ url: 'https://a.test/3', viewport: { width: 5000, height: 300 } }),
      JSON.stringify({ url: 'https://a.test/4', waitUntil: 'whenever' }),
      'https://a.test/5',
    ].join('\n');
    const { items, invalid } = parseInput(text, { format: 'jpeg' });
    expect(items.map((i) => i.line)).toEqual([3, 5]);
    expect(invalid.map((i) => i.line)).toEqual([1, 2, 4]);
    expect(invalid[0].reason).toMatch(/quality: quality applies to jpeg and webp only/);
    expect(invalid[1].reason).toMatch(/unknown field\(s\): colour/);
    expect(invalid[2].reason).toMatch(/waitUntil/);
  });

  it("the client's widest limits are the largest a node may be configured with", () => {
    const atMost = { SHOTFLEET_MAX_VIEWPORT: String(widestLimits.maxViewport), SHOTFLEET_MAX_TIMEOUT_MS: String(widestLimits.maxTimeoutMs) };
    expect(() => loadConfig('hub', {}, atMost)).not.toThrow();
    expect(() => loadConfig('hub', {}, { SHOTFLEET_MAX_VIEWPORT: String(widestLimits.maxViewport + 1) })).toThrow(ConfigError);
    expect(() => loadConfig('hub', {}, { SHOTFLEET_MAX_TIMEOUT_MS: String(widestLimits.maxTimeoutMs + 1) })).toThrow(ConfigError);
  });
});

describe('the effective viewport, resolved once', () => {
  it('is the default without viewport or device, the given fields over the default, or the device preset with its scale', () => {
    const parsed = (body: Record<string, unknown>) => effectiveViewport(parseRenderOptions(schema, { url: 'https://a.test', ...body }));
    expect(parsed({})).toMatchObject({ ...defaultViewport });
    expect(parsed({ viewport: {} })).toMatchObject({ ...defaultViewport });
    expect(parsed({ viewport: { width: 640 } })).toMatchObject({ width: 640, height: defaultViewport.height, deviceScaleFactor: 1 });
    const phone = KnownDevices['iPhone 15'].viewport;
    expect(parsed({ device: 'iPhone 15' })).toMatchObject({
      width: phone.width,
      height: phone.height,
      deviceScaleFactor: phone.deviceScaleFactor,
      isMobile: true,
    });
    expect(phone.deviceScaleFactor).toBeGreaterThan(1);
  });
});
