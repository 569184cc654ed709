import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { sleep, timerDelay, withTimeout } from '../src/async/timeout.js';

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('withTimeout', () => {
  it('settles with the work when it comes first, and clears its timer', async () => {
    await expect(withTimeout(Promise.resolve(7), 1000, () => 0)).resolves.toBe(7);
    await expect(withTimeout(Promise.reject(new Error('no')), 1000, () => 0)).rejects.toThrow('no');
    expect(vi.getTimerCount()).toBe(0);
  });

  it("ends with onTimeout's value, or its throw, when the time runs out first", async () => {
    const never = new Promise<string>(() => undefined);
    const value = withTimeout(never, 1000, () => 'late');
    const thrown = withTimeout(never, 2000, () => {
      throw new Error('the wipe took over 2 s');
    });
    thrown.catch(() => undefined);
    let settled = false;
    void value.then(() => (settled = true));
    await vi.advanceTimersByTimeAsync(999);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await expect(value).resolves.toBe('late');
    await vi.advanceTimersByTimeAsync(1000);
    await expect(thrown).rejects.toThrow('the wipe took over 2 s');
  });

  it("rejects with the signal's reason when it aborts first, and clears its timer", async () => {
    const stop = new AbortController();
    const waiting = withTimeout(new Promise(() => undefined), 1000, () => 'late', stop.signal);
    stop.abort(new Error('client left'));
    await expect(waiting).rejects.toThrow('client left');
    expect(vi.getTimerCount()).toBe(0);
    await expect(withTimeout(Promise.resolve(1), 1000, () => 0, AbortSignal.abort(new Error('gone')))).rejects.toThrow('gone');
  });

  it('keeps no process alive: its timer is unref()ed', () => {
    const setTimer = vi.spyOn(globalThis, 'setTimeout');
    void withTimeout(new Promise(() => undefined), 1000, () => 0);
    expect((setTimer.mock.results.at(-1)!.value as NodeJS.Timeout).hasRef()).toBe(false);
    setTimer.mockRestore();
  });
});

describe('sleep', () => {
  it("waits its time, or rejects with the signal's reason at the abort", async () => {
    const slept = sleep(100);
    await vi.advanceTimersByTimeAsync(100);
    await expect(slept).resolves.toBeUndefined();
    const stop = new AbortController();
    const cut = sleep(60_000, stop.signal);
    stop.abort(new Error('deadline'));
    await expect(cut).rejects.toThrow('deadline');
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('timerDelay', () => {
  it("keeps a delay within setTimeout's range", () => {
    expect(timerDelay(-5)).toBe(0);
    expect(timerDelay(250)).toBe(250);
    expect(timerDelay(2 ** 40)).toBe(2 ** 31 - 1);
  });
});
