import { describe, expect, it } from 'vitest';
import { createFairQueue, type QueueClient } from '../src/admission/fair-queue.js';

const heavy: QueueClient = { name: 'heavy', weight: 1 };
const light: QueueClient = { name: 'light', weight: 1 };

/** A queue and a record of who was woken, with pages in use counted as the admission would. */
function setup() {
  const queue = createFairQueue();
  const inUse = new Map<string, number>();
  const woken: string[] = [];
  const join = (client: QueueClient, label = client.name, signal = new AbortController().signal) =>
    queue.wait(client, signal, () => {
      inUse.set(client.name, (inUse.get(client.name) ?? 0) + 1);
      woken.push(label);
      return label;
    });
  const wake = () => queue.wakeNext((name) => inUse.get(name) ?? 0);
  return { queue, inUse, woken, join, wake };
}

describe('fair queue', () => {
  it('with one key it is first come, first served', async () => {
    const s = setup();
    const all = ['a', 'b', 'c', 'd'].map((label) => s.join(heavy, label));
    while (s.wake()) {}
    expect(await Promise.all(all)).toEqual(['a', 'b', 'c', 'd']);
    expect(s.queue.length).toBe(0);
  });

  it('gives the next page to the key with the fewest pages in use, whatever the arrival order', () => {
    const s = setup();
    s.inUse.set('heavy', 2);
    for (let i = 1; i <= 5; i++) void s.join(heavy, `h${i}`);
    void s.join(light, 'l1');
    void s.join(light, 'l2');
    s.wake(); // heavy 2, light 0 → light
    s.wake(); // heavy 2, light 1 → light
    s.wake(); // heavy 2, light 2 → a tie: the longest waiter, h1
    s.wake(); // heavy 3, light 2, but light waits no more → heavy
    expect(s.woken).toEqual(['l1', 'l2', 'h1', 'h2']);
  });

  it('shares by weight: a key of weight 3 gets three pages for every one of a key of weight 1', () => {
    const s = setup();
    const big: QueueClient = { name: 'big', weight: 3 };
    for (let i = 0; i < 8; i++) {
      void s.join(big, 'big');
      void s.join(light, 'light');
    }
    for (let i = 0; i < 8; i++) s.wake();
    expect(s.woken.filter((w) => w === 'big')).toHaveLength(6);
    expect(s.woken.filter((w) => w === 'light')).toHaveLength(2);
  });

  it("on a full queue, a newcomer of a key with nothing waiting is not the one shed: the heaviest key's newest is", async () => {
    const s = setup();
    const heavyWaits = ['h1', 'h2', 'h3'].map((label) => s.join(heavy, label).catch((err: Error) => `shed:${label}:${err.message}`));
    void s.join(light, 'l1');
    expect(s.queue.newcomerIsShed('light')).toBe(false);
    expect(s.queue.newcomerIsShed('heavy')).toBe(true);
    expect(s.queue.newcomerIsShed('other')).toBe(false);
    expect(s.queue.shedNewestOfLargest(new Error('queue_full'))).toBe(true);
    expect(s.queue.length).toBe(3);
    while (s.wake()) {}
    expect(await Promise.all(heavyWaits)).toEqual(['h1', 'h2', 'shed:h3:queue_full']);
    expect(s.woken).toEqual(['h1', 'l1', 'h2']);
  });

  it('a key holding as much of the queue as the largest sheds its own newcomer', () => {
    const s = setup();
    void s.join(heavy);
    void s.join(light);
    expect(s.queue.newcomerIsShed('heavy')).toBe(true);
    expect(s.queue.newcomerIsShed('light')).toBe(true);
  });

  it('a waiter whose signal aborts leaves at once with its reason; the key line goes with its last waiter', async () => {
    const s = setup();
    const leaving = new AbortController();
    const left = s.join(light, 'l1', leaving.signal).catch((err: unknown) => err);
    void s.join(heavy, 'h1');
    leaving.abort('client left');
    expect(await left).toBe('client left');
    expect(s.queue.length).toBe(1);
    expect(s.queue.newcomerIsShed('light')).toBe(false);
    s.wake();
    expect(s.woken).toEqual(['h1']);
    expect(s.wake()).toBe(false);
  });

  it('counts the waiters fair shares would serve before a newcomer', () => {
    const s = setup();
    for (let i = 0; i < 6; i++) void s.join(heavy);
    expect(s.queue.aheadOf(light)).toBe(1); // one of heavy's, then the newcomer
    expect(s.queue.aheadOf(heavy)).toBe(6); // its own key's waiters: first come, first served
    void s.join(light);
    expect(s.queue.aheadOf(light)).toBe(3); // its own one, and heavy's two turns before its second
  });
});
