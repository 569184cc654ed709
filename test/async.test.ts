import { describe, expect, it } from 'vitest';
import { abortable, deadlineSignal } from '../src/async/abortable.js';
import { createWaitQueue } from '../src/async/wait-queue.js';

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('abortable', () => {
  it('settles with the work when the signal stays quiet', async () => {
    await expect(abortable(Promise.resolve(7), new AbortController().signal)).resolves.toBe(7);
    await expect(abortable(Promise.reject(new Error('no')), new AbortController().signal)).rejects.toThrow('no');
  });

  it('rejects with the reason at the abort, and hands what the work yields later to `late`', async () => {
    const stop = new AbortController();
    let deliver!: (v: string) => void;
    const late: string[] = [];
    const waiting = abortable(new Promise<string>((r) => (deliver = r)), stop.signal, (v) => late.push(v));
    stop.abort(new Error('client left'));
    await expect(waiting).rejects.toThrow('client left');
    deliver('page 3');
    await tick();
    expect(late).toEqual(['page 3']);
  });

  it('gives back at once what arrives for a signal that had already aborted', async () => {
    const late: number[] = [];
    await expect(abortable(Promise.resolve(1), AbortSignal.abort(new Error('gone')), (v) => late.push(v))).rejects.toThrow('gone');
    await tick();
    expect(late).toEqual([1]);
  });
});

describe('deadlineSignal', () => {
  it('aborts with the deadline error when the deadline passes first', async () => {
    const d = deadlineSignal(new AbortController().signal, Date.now() + 20, () => new Error('deadline'));
    await new Promise((r) => setTimeout(r, 60));
    expect(d.signal.aborted).toBe(true);
    expect((d.signal.reason as Error).message).toBe('deadline');
  });

  it('aborts with the client reason when the client leaves first, and dispose stops the deadline', async () => {
    const client = new AbortController();
    const d = deadlineSignal(client.signal, Date.now() + 30, () => new Error('deadline'));
    client.abort(new Error('left'));
    expect((d.signal.reason as Error).message).toBe('left');
    const quiet = deadlineSignal(new AbortController().signal, Date.now() + 20, () => new Error('deadline'));
    quiet.dispose();
    await new Promise((r) => setTimeout(r, 50));
    expect(quiet.signal.aborted).toBe(false);
  });
});

describe('a wait queue', () => {
  it('wakes waiters in arrival order, running each grant before the next is woken', async () => {
    const queue = createWaitQueue();
    const order: string[] = [];
    const a = queue.wait(new AbortController().signal, () => order.push('a'));
    const b = queue.wait(new AbortController().signal, () => order.push('b'));
    expect(queue.length).toBe(2);
    expect(queue.wakeNext()).toBe(true);
    expect(order).toEqual(['a']);
    expect(queue.wakeNext()).toBe(true);
    await Promise.all([a, b]);
    expect(order).toEqual(['a', 'b']);
    expect(queue.wakeNext()).toBe(false);
  });

  it('lets a waiter whose signal aborts leave its place: the next wake goes to the one behind it', async () => {
    const queue = createWaitQueue();
    const leaving = new AbortController();
    const first = queue.wait(leaving.signal, () => 'first');
    const second = queue.wait(new AbortController().signal, () => 'second');
    leaving.abort(new Error('client left'));
    await expect(first).rejects.toThrow('client left');
    expect(queue.length).toBe(1);
    queue.wakeNext();
    await expect(second).resolves.toBe('second');
    await expect(queue.wait(AbortSignal.abort(new Error('late')), () => 0)).rejects.toThrow('late');
    expect(queue.length).toBe(0);
  });
});
