import type { BatchObserver } from './batch.js';
import type { ShotItem } from './input.js';
import type { ItemError, ManifestRecord } from './manifest.js';

export interface ProgressOutput {
  write(text: string): unknown;
  isTTY?: boolean;
}

export interface Progress extends BatchObserver {
  /** A line for the user (a bad input line, a failed item), printed above the progress bar. */
  note(text: string): void;
  stop(): void;
  readonly counts: { done: number; ok: number; failed: number; retrying: number };
  elapsedMs(): number;
}

/**
 * On a terminal, one status line redrawn in place; elsewhere (CI logs, pipes), a plain line every
 * `intervalMs`. Failures are printed as they happen in both.
 */
export function createProgress(out: ProgressOutput, total: number, { intervalMs = 5000, now = Date.now } = {}): Progress {
  const startedAt = now();
  const counts = { done: 0, ok: 0, failed: 0, retrying: 0 };
  const waiting = new Set<number>();
  const tty = out.isTTY === true;

  const status = () => {
    const seconds = (now() - startedAt) / 1000;
    const rate = seconds > 0 ? counts.done / seconds : 0;
    const eta = rate > 0 && counts.done < total ? ` · ETA ${formatDuration((total - counts.done) / rate)}` : '';
    const figures = `${counts.done}/${total} · ok ${counts.ok} · failed ${counts.failed} · retrying ${counts.retrying} · ${rate.toFixed(1)}/s${eta}`;
    return tty ? `${bar(total === 0 ? 1 : counts.done / total)} ${figures}` : `shoot: ${figures}`;
  };
  const redraw = () => out.write(`\r\x1b[2K${status()}`);
  const timer = setInterval(tty ? redraw : () => out.write(`${status()}\n`), tty ? 200 : intervalMs);
  timer.unref();
  if (tty) redraw();

  const note = (text: string) => {
    out.write(tty ? `\r\x1b[2K${text}\n` : `${text}\n`);
    if (tty) redraw();
  };

  return {
    counts,
    note,
    elapsedMs: () => now() - startedAt,
    waiting(item: ShotItem) {
      waiting.add(item.line);
      counts.retrying = waiting.size;
    },
    resumed(item: ShotItem) {
      waiting.delete(item.line);
      counts.retrying = waiting.size;
    },
    finished(record: ManifestRecord) {
      counts.done++;
      if (record.status === 'ok') counts.ok++;
      else {
        counts.failed++;
        note(`line ${record.line} failed: ${describeError(record.error)}`);
      }
    },
    stop() {
      clearInterval(timer);
      if (tty) out.write(`\r\x1b[2K${status()}\n`);
    },
  };
}

export function describeError(error: ItemError | undefined): string {
  if (!error) return 'unknown error';
  return `${error.status ? `${error.status} ` : ''}${error.code}: ${error.message}`;
}

function bar(fraction: number, width = 24): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
