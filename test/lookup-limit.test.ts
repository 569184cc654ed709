import { describe, expect, it } from 'vitest';
import { createLookupLimit } from '../src/policy/lookup-limit.js';

/** A lookup that answers when told to. */
function pending() {
  let answer!: (addresses: string[]) => void;
  const promise = new Promise<string[]>((resolve) => (answer = resolve));
  return { lookup: () => promise, answer };
}

/** `lookup`, noting its host in `started` when it starts. */
const noted = (started: string[], host: string, lookup: () => Promise<string[]>) => () => {
  started.push(host);
  return lookup();
};
const answers = (addresses: string[]) => () => Promise.resolve(addresses);

describe("a page's lookup limit", () => {
  it('runs at most `inFlight` lookups at once, the waiting ones in the order they were asked', async () => {
    const limit = createLookupLimit(1, 5000);
    const started: string[] = [];
    const a = pending();
    const b = pending();
    const first = limit.run('a.test', noted(started, 'a', a.lookup));
    const second = limit.run('b.test', noted(started, 'b', b.lookup));
    const third = limit.run('c.test', noted(started, 'c', answers(['10.0.0.3'])));
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual(['a']);
    a.answer(['10.0.0.1']);
    await expect(first).resolves.toEqual(['10.0.0.1']);
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual(['a', 'b']);
    b.answer(['10.0.0.2']);
    await expect(second).resolves.toEqual(['10.0.0.2']);
    await expect(third).resolves.toEqual(['10.0.0.3']);
  });

  it('fails a lookup not answered within its time, counted from when it was asked; one still waiting never starts', async () => {
    const limit = createLookupLimit(1, 50);
    const slow = pending();
    const started: string[] = [];
    const first = limit.run('slow.test', noted(started, 'slow', slow.lookup));
    const second = limit.run('never.test', noted(started, 'never', answers([])));
    await expect(first).rejects.toMatchObject({ code: 'ETIMEOUT', message: 'ETIMEOUT slow.test: no answer within 50 ms (SHOTFLEET_DNS_TIMEOUT_MS)' });
    await expect(second).rejects.toMatchObject({ code: 'ETIMEOUT' });
    // The slow lookup holds its slot until it ends, even though its caller gave up.
    const third = limit.run('next.test', noted(started, 'next', answers(['10.0.0.9'])));
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual(['slow']);
    slow.answer(['10.0.0.1']);
    await expect(third).resolves.toEqual(['10.0.0.9']);
    expect(started).toEqual(['slow', 'next']);
  });

  it('on close, fails the waiting lookups and refuses new ones, and lets a running one answer', async () => {
    const limit = createLookupLimit(1, 5000);
    const running = pending();
    const first = limit.run('a.test', running.lookup);
    const waiting = limit.run('b.test', async () => ['10.0.0.2']);
    limit.close();
    await expect(waiting).rejects.toMatchObject({ code: 'ECANCELLED', message: 'ECANCELLED: the page is closed' });
    await expect(limit.run('c.test', async () => [])).rejects.toMatchObject({ code: 'ECANCELLED', message: 'ECANCELLED c.test: the page is closed' });
    running.answer(['10.0.0.1']);
    await expect(first).resolves.toEqual(['10.0.0.1']);
  });
});
