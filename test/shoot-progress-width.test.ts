import { describe, expect, it } from 'vitest';
import { createProgress } from '../src/shoot/progress.js';
import { parseShootOptions } from '../src/cli/shoot-options.js';

const item = (line: number) => ({ line, url: `https://e.test/${line}`, body: {} });

/** What the terminal shows after the redraws: the text after the last "clear the line" of each line. */
const screenLines = (out: string) => out.split('\n').map((l) => l.split('\r\x1b[2K').at(-1)!);

describe('shoot progress on a narrow terminal', () => {
  it('cuts the redrawn status line to the terminal width, so it never wraps and stacks', () => {
    let out = '';
    let t = 0;
    const progress = createProgress({ write: (s: string) => (out += s), isTTY: true, columns: 80 }, 123_456, { now: () => t });
    for (let i = 0; i < 5; i++) progress.waiting!(item(i), 'throttled', 100);
    t = 3_723_000;
    for (let i = 0; i < 1234; i++) progress.finished!({ line: i, url: 'u', status: 'ok' });
    const redraws = out.split('\r\x1b[2K').filter((s) => s !== '' && !s.includes('\n'));
    expect(redraws.length).toBeGreaterThan(0);
    // A line as wide as the terminal wraps the cursor on some terminals: stay one short of it.
    for (const line of redraws) expect([...line].length, line).toBeLessThan(80);
    progress.stop();
    for (const line of screenLines(out)) expect([...line].length, line).toBeLessThan(80);
  });

  it('keeps notes whole: they are lines of their own, not the redrawn status', () => {
    let out = '';
    const progress = createProgress({ write: (s: string) => (out += s), isTTY: true, columns: 40 }, 2);
    const long = `line 1 failed: 502 navigation_failed: ${'x'.repeat(100)}`;
    progress.finished!({ line: 1, url: 'u', status: 'failed', error: { status: 502, code: 'navigation_failed', message: 'x'.repeat(100) } });
    progress.stop();
    expect(out).toContain(`${long}\n`);
  });
});

describe('shoot --quiet', () => {
  it('is a flag of shoot', () => {
    expect(parseShootOptions(['urls.txt', '--endpoint', 'http://127.0.0.1:3000', '--quiet'], {})?.quiet).toBe(true);
    expect(parseShootOptions(['urls.txt', '--endpoint', 'http://127.0.0.1:3000'], {})?.quiet).toBe(false);
  });

  it('prints no progress, on a terminal or not, but still every failure', async () => {
    for (const isTTY of [true, false]) {
      let out = '';
      const progress = createProgress({ write: (s: string) => (out += s), isTTY, columns: 80 }, 2, { intervalMs: 10, quiet: true });
      progress.note('shooting 2 line(s)');
      progress.finished!({ line: 1, url: 'u', status: 'ok' });
      progress.finished!({ line: 2, url: 'u', status: 'failed', error: { status: 400, code: 'invalid_request', message: 'bad width' } });
      await new Promise((r) => setTimeout(r, 50));
      progress.stop();
      expect(out, `isTTY ${isTTY}`).toBe('line 2 failed: 400 invalid_request: bad width\n');
    }
  });
});
