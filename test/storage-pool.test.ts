import { describe, expect, it } from 'vitest';
import { createUploadPool } from '../src/storage/upload-pool.js';
import { objectKey, timeSortableId, validateKey } from '../src/storage/keys.js';
import { saturationRatio } from '../src/admission/saturation.js';
import { estimateImageBytes } from '../src/storage/estimate.js';

const never = new AbortController().signal;

describe('upload pool', () => {
  it('admits at most slots + queueMax images, hands out slots in arrival order, and frees them on release', async () => {
    const pool = createUploadPool({ slots: 1, queueMax: 2, backlogMaxBytes: 1_000_000 });
    const tickets = [pool.reserve(10)!, pool.reserve(10)!, pool.reserve(10)!];
    expect(tickets.every(Boolean)).toBe(true);
    expect(pool.reserve(10)).toBeUndefined();

    const order: number[] = [];
    await tickets[0].acquireSlot(never);
    const waiting = [1, 2].map((i) => tickets[i].acquireSlot(never).then(() => order.push(i)));
    expect(pool.stats()).toMatchObject({ inFlight: 1, queued: 2, tickets: 3, backlogBytes: 30 });

    tickets[0].release();
    await waiting[0];
    expect(order).toEqual([1]);
    expect(pool.stats()).toMatchObject({ inFlight: 1, queued: 1 });
    tickets[1].release();
    await waiting[1];
    expect(order).toEqual([1, 2]);
    tickets[2].release();
    tickets[2].release();
    expect(pool.stats()).toEqual({ inFlight: 0, queued: 0, backlogBytes: 0, tickets: 0 });
  });

  it('refuses what does not fit the byte backlog, but always admits one image into an empty backlog', () => {
    const pool = createUploadPool({ slots: 4, queueMax: 4, backlogMaxBytes: 100 });
    const a = pool.reserve(60)!;
    expect(pool.reserve(50)).toBeUndefined();
    const b = pool.reserve(40)!;
    expect(pool.stats().backlogBytes).toBe(100);
    a.release();
    b.release();
    const huge = pool.reserve(10_000)!; // capped at the backlog size
    expect(pool.stats().backlogBytes).toBe(100);
    huge.resize(70); // the real image is smaller than estimated
    expect(pool.stats().backlogBytes).toBe(70);
    expect(pool.reserve(31)).toBeUndefined();
    expect(pool.reserve(30)).toBeDefined();
  });

  it('an abandoned wait leaves the queue at once and a later release skips it', async () => {
    const pool = createUploadPool({ slots: 1, queueMax: 2, backlogMaxBytes: 1000 });
    const [first, leaving, last] = [pool.reserve(1)!, pool.reserve(1)!, pool.reserve(1)!];
    await first.acquireSlot(never);
    const gone = new AbortController();
    const leavingWait = leaving.acquireSlot(gone.signal);
    const lastWait = last.acquireSlot(never);
    gone.abort(new Error('client left'));
    await expect(leavingWait).rejects.toThrow('client left');
    leaving.release();
    expect(pool.stats()).toMatchObject({ inFlight: 1, queued: 1, tickets: 2 });
    first.release();
    await lastWait;
    expect(pool.stats()).toMatchObject({ inFlight: 1, queued: 0 });
    last.release();
    expect(pool.stats().inFlight).toBe(0);
  });

  it('whenIdle resolves once the last image is released', async () => {
    const pool = createUploadPool({ slots: 1, queueMax: 0, backlogMaxBytes: 1000 });
    await pool.whenIdle();
    const t = pool.reserve(5)!;
    let idle = false;
    const done = pool.whenIdle().then(() => (idle = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(idle).toBe(false);
    t.release();
    await done;
    expect(idle).toBe(true);
  });
});

describe('keys', () => {
  it('default keys are prefix/yyyy/mm/dd/<ULID>.<ext>, unique and sorted by time', () => {
    const at = new Date(Date.UTC(2026, 0, 5, 23, 59));
    const key = objectKey('pre/fix', 'jpeg', undefined, at);
    expect(key).toMatch(/^pre\/fix\/2026\/01\/05\/[0-9A-HJKMNP-TV-Z]{26}\.jpg$/);
    expect(objectKey('', 'webp', undefined, at)).toMatch(/^2026\/01\/05\/\w{26}\.webp$/);
    expect(objectKey('pre', 'png', 'mine/shot.png')).toBe('pre/mine/shot.png');
    const ids = Array.from({ length: 1000 }, (_, i) => timeSortableId(1_700_000_000_000 + i));
    expect(new Set(ids).size).toBe(1000);
    expect([...ids].sort()).toEqual(ids);
    expect(timeSortableId(0).slice(0, 10)).toBe('0000000000');
  });

  it('validateKey accepts safe relative keys only', () => {
    for (const ok of ['a.png', 'a/b/c-d_e.f', "x!(1)*'.jpg", 'k'.repeat(512)]) expect(() => validateKey(ok)).not.toThrow();
    for (const bad of ['', '..', 'a/../b', '/a', 'a//b', 'a/', 'a b', 'a?b', 'é', 'k'.repeat(513), 'a\\b']) {
      expect(() => validateKey(bad), bad).toThrow(expect.objectContaining({ code: 'invalid_request', details: { field: 'key' } }));
    }
  });
});

describe('sizing', () => {
  it('estimates png above jpeg above webp', () => {
    const px = 1280 * 800;
    expect(estimateImageBytes('png', px)).toBeGreaterThan(553_000);
    expect(estimateImageBytes('jpeg', px)).toBeGreaterThan(64_000);
    expect(estimateImageBytes('webp', px)).toBeGreaterThan(42_000);
  });

  it('counts the upload side in the node saturation as the fuller of the pool and the backlog bytes', () => {
    const idle = { inUse: 0, limit: 2, queued: 0, queueMax: 4, memoryBytes: 0, maxMemoryBytes: 1000 };
    const base = { max: 8, queueMax: 8, backlogMaxBytes: 1000 };
    expect(saturationRatio({ ...idle, uploads: { ...base, inFlight: 4, queued: 0, backlogBytes: 100 } })).toBe(0.375);
    expect(saturationRatio({ ...idle, uploads: { ...base, inFlight: 8, queued: 4, backlogBytes: 100 } })).toBe(0.875);
    expect(saturationRatio({ ...idle, uploads: { ...base, inFlight: 1, queued: 0, backlogBytes: 900 } })).toBe(0.9);
    expect(saturationRatio({ ...idle, uploads: { ...base, inFlight: 8, queued: 8, backlogBytes: 2000 } })).toBe(1);
    // Without an upload pool (no S3) only renders and memory count.
    expect(saturationRatio({ ...idle, inUse: 2 })).toBe(0.75);
  });
});
