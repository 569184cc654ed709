import type { ChaosEvent } from './chaos.js';
import { lineChartsSvg } from './chart.js';
import type { ProcessFigures } from './proc-stats.js';
import type { SoakOutcome } from './soak-client.js';
import { quantile, round } from './stats.js';

export interface ProcessSample extends ProcessFigures {
  at: number;
  node: string;
  generation: number;
}

/** A restart's window: from its SIGTERM until HAProxy routes to the new process again, plus its check interval. */
export interface Window {
  node: string;
  from: number;
  to: number;
}

/** After HAProxy routes to a restarted node again, connections still in flight may see the old one's end. */
export const windowTailMs = 5000;

export function restartWindows(events: ChaosEvent[]): Window[] {
  return events.filter((e) => e.restart).map((e) => ({ node: e.node, from: e.restart!.sigtermAt, to: e.restart!.backAt + windowTailMs }));
}

/** A hostile page's timeout is its expected answer (its load never ends or its script never returns). */
export const expected = (o: SoakOutcome) => o.status === 200 || (o.kind === 'hostile' && o.status === 504);
/** No HTTP answer from a node: the connection failed, the client gave up, or HAProxy answered for lack of a server. */
export const connectionError = (o: SoakOutcome) => o.status === 0 || (!o.node && o.status >= 500);
export const answered = (o: SoakOutcome) => o.status !== 0 && o.status !== 503;

export function codeOf(o: SoakOutcome): string {
  if (o.status === 0) return `no answer: ${o.error ?? o.code}`;
  const who = o.node ? '' : ' (haproxy)';
  return `${o.status}${o.code ? ` ${o.code}` : ''}${o.reason ? ` ${o.reason}` : ''}${who}`;
}

const countBy = <T>(items: T[], key: (t: T) => string) =>
  Object.fromEntries([...items.reduce((m, t) => m.set(key(t), (m.get(key(t)) ?? 0) + 1), new Map<string, number>())].sort((a, b) => b[1] - a[1]));

export interface MinuteRow {
  minute: number;
  sent: number;
  answered: number;
  ok: number;
  unexpected: number;
  shedRetries: number;
  p50Ms: number | null;
  p99Ms: number | null;
  nodes: Record<
    string,
    {
      generations: number[];
      nodeRssMB: number | null;
      chromiumMB: number | null;
      nodeFds: number | null;
      chromiumFds: number | null;
      chromiumProcesses: number | null;
    }
  >;
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);
const mb = (b: number) => b / 1024 / 1024;

export function perMinute(outcomes: SoakOutcome[], samples: ProcessSample[], start: number, minutes: number, nodeIds: string[]): MinuteRow[] {
  const rows: MinuteRow[] = [];
  for (let m = 0; m < minutes; m++) {
    const from = start + m * 60_000;
    const to = from + 60_000;
    const due = outcomes.filter((o) => o.dueAt >= from && o.dueAt < to);
    const ok = due.filter((o) => o.status === 200 && o.kind !== 'hostile');
    const nodes: MinuteRow['nodes'] = {};
    for (const id of nodeIds) {
      const s = samples.filter((x) => x.node === id && x.at >= from && x.at < to);
      const avg = (pick: (x: ProcessSample) => number, scale = (v: number) => v) => (s.length ? round(scale(mean(s.map(pick))), 1) : null);
      nodes[id] = {
        generations: [...new Set(s.map((x) => x.generation))],
        nodeRssMB: avg((x) => x.nodeRss, mb),
        chromiumMB: avg((x) => x.chromiumPrivate, mb),
        nodeFds: avg((x) => x.nodeFds),
        chromiumFds: avg((x) => x.chromiumFds),
        chromiumProcesses: avg((x) => x.chromiumProcesses),
      };
    }
    rows.push({
      minute: m + 1,
      sent: due.length,
      answered: due.filter(answered).length,
      ok: due.filter((o) => o.status === 200).length,
      unexpected: due.filter((o) => !expected(o)).length,
      shedRetries: due.reduce((a, o) => a + o.shedRetries, 0),
      p50Ms: round(
        quantile(
          ok.map((o) => o.latencyMs),
          0.5,
        ),
        0,
      ),
      p99Ms: round(
        quantile(
          ok.map((o) => o.latencyMs),
          0.99,
        ),
        0,
      ),
      nodes,
    });
  }
  return rows;
}

/**
 * How far each figure moved from the second minute (the first holds the start and the warm-up) to the last, as a
 * share of the second minute's value. A node restarted in between is a new process: its figures say so.
 */
export function drift(rows: MinuteRow[], nodeIds: string[]) {
  const first = rows.length >= 3 ? 1 : 0;
  const last = rows.length - 1;
  const out: Record<string, Record<string, number | null>> = {};
  for (const id of nodeIds) {
    const d = (pick: (n: MinuteRow['nodes'][string]) => number | null) => {
      const a = pick(rows[first].nodes[id]);
      const b = pick(rows[last].nodes[id]);
      return a && b !== null ? round((b - a) / a, 3) : null;
    };
    out[id] = {
      fromMinute: first + 1,
      toMinute: last + 1,
      nodeRss: d((n) => n.nodeRssMB),
      chromium: d((n) => n.chromiumMB),
      total: d((n) => (n.nodeRssMB === null || n.chromiumMB === null ? null : n.nodeRssMB + n.chromiumMB)),
      nodeFds: d((n) => n.nodeFds),
      chromiumFds: d((n) => n.chromiumFds),
    };
  }
  return out;
}

export function summarize(outcomes: SoakOutcome[], windows: Window[]) {
  const inWindow = (o: SoakOutcome) => windows.some((w) => o.doneAt >= w.from && o.dueAt <= w.to);
  const kinds = ['ordinary', 'session', 'hostile'] as const;
  const served = outcomes.filter((o) => o.status === 200 && o.kind !== 'hostile');
  const sessions = outcomes.filter((o) => o.kind === 'session');
  return {
    sent: outcomes.length,
    answered: outcomes.filter(answered).length,
    answeredShare: round(outcomes.filter(answered).length / Math.max(1, outcomes.length), 4),
    ok: outcomes.filter((o) => o.status === 200).length,
    errors500: outcomes.filter((o) => o.status === 500).length,
    connectionErrorsOutsideRestarts: outcomes.filter((o) => connectionError(o) && !inWindow(o)).length,
    connectionErrorsInRestarts: outcomes.filter((o) => connectionError(o) && inWindow(o)).length,
    unexpected: outcomes.filter((o) => !expected(o)).length,
    shedRetries: outcomes.reduce((a, o) => a + o.shedRetries, 0),
    shedRetriesFromHaproxy: outcomes.reduce((a, o) => a + o.proxyShed, 0),
    p50Ms: round(
      quantile(
        served.map((o) => o.latencyMs),
        0.5,
      ),
      0,
    ),
    p99Ms: round(
      quantile(
        served.map((o) => o.latencyMs),
        0.99,
      ),
      0,
    ),
    byKind: Object.fromEntries(
      kinds.map((k) => {
        const of = outcomes.filter((o) => o.kind === k);
        const ok = of.filter((o) => o.status === 200);
        return [
          k,
          {
            sent: of.length,
            answered: of.filter(answered).length,
            codes: countBy(of, codeOf),
            okP50Ms: round(
              quantile(
                ok.map((o) => o.latencyMs),
                0.5,
              ),
              0,
            ),
            okP99Ms: round(
              quantile(
                ok.map((o) => o.latencyMs),
                0.99,
              ),
              0,
            ),
          },
        ];
      }),
    ),
    sessionAnswers: countBy(
      sessions.filter((o) => o.status === 200),
      (o) => o.sessionState ?? 'none',
    ),
    servedBy: countBy(
      outcomes.filter((o) => o.node),
      (o) => o.node!,
    ),
    unexpectedByCode: countBy(
      outcomes.filter((o) => !expected(o)),
      (o) => `${o.kind}: ${codeOf(o)}${inWindow(o) ? ' [restart window]' : ''}`,
    ),
  };
}

/**
 * Each unexpected answer beside the chaos that last struck the node that gave it (or, without a node header,
 * any node): is a 500 the work of a renderer kill a second earlier?
 */
export function unexpectedBesideChaos(outcomes: SoakOutcome[], events: ChaosEvent[], start: number) {
  return outcomes
    .filter((o) => !expected(o))
    .sort((a, b) => a.doneAt - b.doneAt)
    .map((o) => {
      const before = events.filter((e) => e.at <= o.doneAt && e.at >= o.dueAt - 30_000 && (!o.node || e.node === o.node)).at(-1);
      return {
        dueS: round((o.dueAt - start) / 1000, 1),
        doneS: round((o.doneAt - start) / 1000, 1),
        kind: o.kind,
        answer: codeOf(o),
        node: o.node ?? null,
        lastChaos: before ? { kind: before.kind, node: before.node, secondsBeforeAnswer: round((o.doneAt - before.at) / 1000, 1) } : null,
      };
    });
}

/** Throughput, errors and memory over time, in `bucketMs` steps, as an SVG. */
export function timelineSvg(
  title: string,
  outcomes: SoakOutcome[],
  samples: ProcessSample[],
  events: ChaosEvent[],
  start: number,
  durationMs: number,
  nodeIds: string[],
  bucketMs = 10_000,
): string {
  const buckets = Math.ceil(durationMs / bucketMs);
  const labels = Array.from({ length: buckets }, (_, b) => ((b * bucketMs) % 60_000 === 0 ? `${(b * bucketMs) / 60_000}m` : ''));
  const per = (pick: (o: SoakOutcome) => boolean) => {
    const counts = Array.from({ length: buckets }, () => 0);
    for (const o of outcomes) {
      const b = Math.floor((o.doneAt - start) / bucketMs);
      if (b >= 0 && b < buckets && pick(o)) counts[b]++;
    }
    return counts.map((c) => c / (bucketMs / 1000));
  };
  const colors = ['#1f77b4', '#ff7f0e', '#9467bd', '#8c564b'];
  const perNode = (pick: (x: ProcessSample) => number) =>
    nodeIds.map((id, k) => ({
      name: `${id}: node + its Chromium`,
      color: colors[k % colors.length],
      values: Array.from({ length: buckets }, (_, b) => {
        const s = samples.filter((x) => x.node === id && x.at - start >= b * bucketMs && x.at - start < (b + 1) * bucketMs);
        return s.length ? mean(s.map(pick)) : null;
      }),
    }));
  const restarts = events.filter((e) => e.restart).map((e) => `${e.node} ${fmtTime(e.at - start)}`);
  const browsers = events.filter((e) => e.kind === 'browser').map((e) => fmtTime(e.at - start));
  return lineChartsSvg(`${title}; restarts: ${restarts.join(', ') || 'none'}; browser kills: ${browsers.join(', ') || 'none'}`, labels, [
    {
      title: 'answers',
      unit: '/s',
      series: [
        { name: '200', color: '#2ca02c', values: per((o) => o.status === 200) },
        { name: 'unexpected answers', color: '#d62728', values: per((o) => !expected(o)) },
      ],
    },
    { title: '503s waited out', unit: '/s', series: [{ name: '503 retried', color: '#bcbd22', values: shedPerBucket(outcomes, start, bucketMs, buckets) }] },
    { title: 'memory', unit: 'MB', series: perNode((x) => mb(x.nodeRss + x.chromiumPrivate)) },
    { title: 'open fds', unit: 'count', series: perNode((x) => x.nodeFds + x.chromiumFds) },
  ]);
}

const fmtTime = (ms: number) => `${Math.floor(ms / 60_000)}:${String(Math.floor((ms % 60_000) / 1000)).padStart(2, '0')}`;

function shedPerBucket(outcomes: SoakOutcome[], start: number, bucketMs: number, buckets: number): number[] {
  const counts = Array.from({ length: buckets }, () => 0);
  for (const o of outcomes) {
    const b = Math.floor((o.dueAt - start) / bucketMs);
    if (b >= 0 && b < buckets) counts[b] += o.shedRetries;
  }
  return counts.map((c) => c / (bucketMs / 1000));
}

export function markdownTable(header: string[], rows: unknown[][]): string {
  const cell = (v: unknown) => (v === null || v === undefined ? '–' : String(v));
  return [header, header.map((h) => '-'.repeat(Math.max(3, h.length))), ...rows.map((r) => r.map(cell))].map((r) => `| ${r.join(' | ')} |`).join('\n');
}
