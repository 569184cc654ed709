/** What the hub reads from a node's GET /status (the fields it needs; the rest is ignored). */
export interface NodeStatus {
  status: 'ready' | 'draining' | 'no_browser' | string;
  saturation: number;
  pagesMax: number;
  shedPerSecond: number;
  renderSecondsAvg: number;
}

export type PingResult = { ok: true; httpStatus: number; status: NodeStatus } | { ok: false; reason: string };

/** One health ping. A 503 with a readable body still counts as an answer: draining is not dead. */
export async function pingNode(baseUrl: string, timeoutMs: number): Promise<PingResult> {
  try {
    const res = await fetch(`${baseUrl}/status`, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
    const body = (await res.json().catch(() => undefined)) as Record<string, any> | undefined;
    if (!body || (res.status !== 200 && res.status !== 503)) return { ok: false, reason: `HTTP ${res.status}` };
    return { ok: true, httpStatus: res.status, status: readStatus(body) };
  } catch (err) {
    return { ok: false, reason: (err as Error).name === 'TimeoutError' ? `no answer in ${timeoutMs} ms` : (err as Error).message };
  }
}

function readStatus(body: Record<string, any>): NodeStatus {
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0);
  return {
    status: typeof body.status === 'string' ? body.status : 'unknown',
    saturation: Math.min(1, num(body.saturation)),
    pagesMax: num(body.pages?.max),
    shedPerSecond: num(body.shedPerSecond),
    renderSecondsAvg: num(body.renderSecondsAvg),
  };
}
