import { describe, expect, it } from 'vitest';
import { createTurns } from '../src/async/turns.js';

const open = () => new AbortController().signal;

describe('turns', () => {
  it('gives one turn at a time, the next in arrival order when the holder lets go', async () => {
    const turns = createTurns();
    const order: string[] = [];
    const first = await turns.take(open());
    const noted = (name: string) => (end: () => void) => {
      order.push(name);
      return end;
    };
    const second = turns.take(open()).then(noted('second'));
    const third = turns.take(open()).then(noted('third'));
    await Promise.resolve();
    expect(order).toEqual([]);
    first();
    first(); // ending twice hands on one turn, not two
    (await second)();
    (await third)();
    expect(order).toEqual(['second', 'third']);
  });

  it('lets a waiter whose signal aborts leave: the turn passes over it to the one behind', async () => {
    const turns = createTurns();
    const end = await turns.take(open());
    const leaving = new AbortController();
    const left = turns.take(leaving.signal);
    const behind = turns.take(open());
    leaving.abort(new Error('client left'));
    await expect(left).rejects.toThrow('client left');
    end();
    await expect(behind).resolves.toBeTypeOf('function');
    await expect(turns.take(AbortSignal.abort(new Error('late')))).rejects.toThrow('late');
  });
});
