import type { BatchObserver } from './batch.js';
import type { ShotItem } from './input.js';
import type { ItemError, ManifestRecord } from './manifest.js';

export interface ProgressOutput {
  write(text: string): unknown;
  isTTY?: boolean;
  /** The terminal's width (a TTY stream's own `columns`). */
  columns?: number;
}

export interface Progress extends BatchObserver {
  /** A line for the user (a bad input line, a failed item), printed above the progress bar. */
  note(text: string): void;
  stop(): void;
  readonly counts: { done: number; ok: number; failed: number; retrying: number };
  elapsedMs(): number;
}

/**
 * On a terminal, one status line redrawn in place, cut to the terminal's width (a wrapped line would leave its
 * first part behind at every redraw); elsewhere (CI logs, pipes), a plain line every `intervalMs`. Failures are
 * printed as they happen in both. `quiet`: failures only, no status and no notes.
 */
export function createProgress(out: ProgressOutput, total: number, { intervalMs = 5000, now = Date.now, quiet = false } = {}): Progress {
  const startedAt = now();
  const counts = { done: 0, ok: 0, failed: 0, retrying: 0 };
  const waiting = new Set<number>();
  const tty = out.isTTY === true;

  const status = () => {
    const seconds = (now() - startedAt) / 1000;
    const rate = seconds > 0 ? counts.done / seconds : 0;
    const eta = rate > 0 && counts.done < total ? ` · ETA ${formatDuration((total - counts.done) / rate)}` : '';
    const figures = `${counts.done}/${total} · ok ${counts.ok} · failed ${counts.failed} · retrying ${counts.retrying} · ${rate.toFixed(1)}/s${eta}`;
    return tty ? fitTo(out.columns, `${bar(total === 0 ? 1 : counts.done / total)} ${figures}`) : `shoot: ${figures}`;
  };
  const redraw = () => out.write(`\r\x1b[2K${status()}`);
  const showStatus = !quiet;
  const timer = setInterval(tty ? redraw : () => out.write(`${status()}\n`), tty ? 200 : intervalMs);
  timer.unref();
  if (!showStatus) clearInterval(timer);
  if (tty && showStatus) redraw();

  const print = (text: string) => {
    out.write(tty && showStatus ? `\r\x1b[2K${text}\n` : `${text}\n`);
    if (tty && showStatus) redraw();
  };
  const note = (text: string) => {
    if (!quiet) print(text);
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
        print(`line ${record.line} failed: ${describeError(record.error)}`);
      }
    },
    stop() {
      clearInterval(timer);
      if (tty && showStatus) out.write(`\r\x1b[2K${status()}\n`);
    },
  };
}

export function describeError(error: ItemError | undefined): string {
  if (!error) return 'unknown error';
  return `${error.status ? `${error.status} ` : ''}${error.code}: ${error.message}`;
}

/** `line` cut to one column short of the terminal's width (a line filling it wraps the cursor on some terminals). */
function fitTo(columns: number | undefined, line: string): string {
  if (!columns || columns < 2) return line;
  const chars = [...line];
  return chars.length < columns ? line : `${chars.slice(0, columns - 2).join('')}…`;
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
