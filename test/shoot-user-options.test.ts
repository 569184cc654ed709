import { describe, expect, it } from 'vitest';
import { parseShootOptions } from '../src/cli/shoot-options.js';

describe('shoot: the page options as request defaults', () => {
  it('turns the flags into the fields POST /screenshot takes', () => {
    const o = parseShootOptions(
      [
        'urls.txt',
        '--endpoint',
        'http://127.0.0.1:3000',
        '--block-ads',
        '--block-cookie-banners',
        '--scroll-page',
        '--best-effort',
        '--timezone',
        'Asia/Tokyo',
        '--locale',
        'fr-CH',
        '--fail-on-http-status',
        '404,500',
        '--cache-ttl',
        '3600',
      ],
      {},
    )!;
    expect(o.defaults).toEqual({
      blockAds: true,
      blockCookieBanners: true,
      scrollPage: true,
      bestEffort: true,
      timezone: 'Asia/Tokyo',
      locale: 'fr-CH',
      failOnHttpStatus: [404, 500],
      cacheTtl: 3600,
    });
    expect(parseShootOptions(['f', '--endpoint', 'http://h', '--fail-on-http-status', 'true'], {})!.defaults).toEqual({ failOnHttpStatus: true });
  });

  it('says what is wrong with a status list', () => {
    expect(() => parseShootOptions(['f', '--endpoint', 'http://h', '--fail-on-http-status', '404,abc'], {})).toThrow(/--fail-on-http-status/);
    expect(() => parseShootOptions(['f', '--endpoint', 'http://h', '--fail-on-http-status', '42'], {})).toThrow(/--fail-on-http-status/);
    expect(() => parseShootOptions(['f', '--endpoint', 'http://h', '--timezone'], {})).toThrow(/--timezone needs a value/);
    expect(() => parseShootOptions(['f', '--endpoint', 'http://h', '--cache-ttl', '-5'], {})).toThrow(/--cache-ttl/);
  });
});
