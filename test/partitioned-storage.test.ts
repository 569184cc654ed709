import { describe, expect, it } from 'vitest';
import { partitionedStorageKeys } from '../src/render-pool/partitioned-storage.js';

describe('partitionedStorageKeys', () => {
  it('keys a cross-site frame under every possible registrable domain of the top page', () => {
    const keys = partitionedStorageKeys(['https://www.shop.example.co.uk'], ['https://ads.tracker.net']);
    expect(keys.sort()).toEqual(
      [
        'https://ads.tracker.net/^31',
        'https://ads.tracker.net/^0https://www.shop.example.co.uk',
        'https://ads.tracker.net/^0https://shop.example.co.uk',
        'https://ads.tracker.net/^0https://example.co.uk',
        'https://ads.tracker.net/^0https://co.uk',
      ].sort(),
    );
  });

  it('an IP or one-label host is its own site, ports are not part of a site', () => {
    expect(partitionedStorageKeys(['http://127.0.0.1:8080'], ['http://127.0.0.2:9000'])).toEqual([
      'http://127.0.0.2:9000/^31',
      'http://127.0.0.2:9000/^0http://127.0.0.1',
    ]);
    expect(partitionedStorageKeys(['http://localhost:3000'], ['http://[::1]:81'])).toEqual(['http://[::1]:81/^31', 'http://[::1]:81/^0http://localhost']);
  });

  it('no key for a candidate site the frame itself belongs to (example.com); no frames, no keys', () => {
    expect(partitionedStorageKeys(['https://www.example.com'], ['https://cdn.example.com'])).toEqual([
      'https://cdn.example.com/^31',
      'https://cdn.example.com/^0https://www.example.com',
    ]);
    expect(partitionedStorageKeys(['https://example.com'], [])).toEqual([]);
  });
});
