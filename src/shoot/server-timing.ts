import type { Timings } from './manifest.js';

const metricNames: Record<string, keyof Timings> = { queue: 'queueMs', render: 'renderMs', upload: 'uploadMs' };

/** `Server-Timing: queue;dur=12, render;dur=340.5` → `{queueMs: 12, renderMs: 340.5}`. */
export function parseServerTiming(header: string | null): Timings {
  const timings: Timings = {};
  for (const entry of (header ?? '').split(',')) {
    const [name, ...params] = entry.split(';').map((s) => s.trim());
    const field = metricNames[name];
    const dur = params.find((p) => p.startsWith('dur='))?.slice(4);
    if (field && dur !== undefined && Number.isFinite(Number(dur))) timings[field] = Number(dur);
  }
  return timings;
}
