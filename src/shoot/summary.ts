import { describeError, formatDuration } from './progress.js';
import type { ManifestRecord } from './manifest.js';

export interface BatchSummary {
  ok: number;
  /** Lines a previous run already finished. */
  skipped: number;
  failed: number;
  invalid: number;
  /** Left undone by an interruption. */
  unfinished: number;
  retries: number;
  shed: number;
  /** 429 answers: the key over its own limit, waited out like a 503. */
  rateLimited: number;
  throttled: number;
  elapsedMs: number;
  manifestFile: string;
  /** Failed records (invalid lines included), in line order. */
  failures: ManifestRecord[];
  interrupted: boolean;
}

const listedFailures = 10;

export function formatSummary(s: BatchSummary): string {
  const total = s.ok + s.skipped + s.failed + s.invalid + s.unfinished;
  const rows: [string, number, string?][] = [
    ['ok', s.ok],
    ['already ok', s.skipped, 'skipped: the manifest has them'],
    ['failed', s.failed],
    ['invalid lines', s.invalid],
    ['not done', s.unfinished, s.interrupted ? 'interrupted: run the same command again to resume' : undefined],
  ];
  const seconds = s.elapsedMs / 1000;
  const rate = seconds > 0 ? ((s.ok + s.failed) / seconds).toFixed(1) : '0.0';
  const lines = [
    '',
    `shotfleet shoot ${s.interrupted ? 'interrupted' : 'finished'} in ${formatDuration(seconds)} (${rate} items/s)`,
    ...rows
      .filter(([, n], i) => n > 0 || i <= 2)
      .map(([label, n, note]) => `  ${label.padEnd(14)}${String(n).padStart(7)}${note && n > 0 ? `   ${note}` : ''}`),
    `  ${'total'.padEnd(14)}${String(total).padStart(7)}`,
    `  retries ${s.retries} (503: ${s.shed}, 429: ${s.rateLimited}) · held back by the throttle ${s.throttled}`,
    `  manifest ${s.manifestFile}`,
  ];
  if (s.failures.length > 0) {
    lines.push('  failed lines:');
    for (const r of s.failures.slice(0, listedFailures)) lines.push(`    ${String(r.line).padStart(6)}  ${describeError(r.error)}`);
    if (s.failures.length > listedFailures) lines.push(`    … and ${s.failures.length - listedFailures} more in the manifest`);
  }
  return `${lines.join('\n')}\n`;
}
