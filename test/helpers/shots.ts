export interface Shot {
  status: number;
  headers: Headers;
  bytes: Buffer;
  /** The JSON body of an error (or of a `store` answer); undefined for images. */
  json?: { error?: { code: string; message: string; details?: Record<string, unknown> } } & Record<string, unknown>;
}

/** POST /screenshot with a JSON body; `cookie` becomes the request's Cookie header (e.g. a session). */
export async function shoot(base: string, body: Record<string, unknown>, opts: { cookie?: string; timeoutMs?: number } = {}): Promise<Shot> {
  const res = await fetch(`${base}/screenshot`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(opts.cookie ? { cookie: opts.cookie } : {}) },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(opts.timeoutMs ?? 60_000),
  });
  return read(res);
}

/** GET /screenshot with flat query parameters. */
export async function shootGet(base: string, query: Record<string, string>): Promise<Shot> {
  const res = await fetch(`${base}/screenshot?${new URLSearchParams(query)}`, { signal: AbortSignal.timeout(60_000) });
  return read(res);
}

async function read(res: Response): Promise<Shot> {
  const bytes = Buffer.from(await res.arrayBuffer());
  const isJson = (res.headers.get('content-type') ?? '').startsWith('application/json');
  return { status: res.status, headers: res.headers, bytes, json: isJson ? JSON.parse(bytes.toString('utf8')) : undefined };
}

/** Throws with the node's error body when the shot is not a 200, so a failing test says why. */
export function ok(shot: Shot): Buffer {
  if (shot.status !== 200) throw new Error(`expected 200, got ${shot.status}: ${shot.bytes.toString('utf8').slice(0, 500)}`);
  return shot.bytes;
}

/** Sample values of one metric family from Prometheus text, keyed by `label`'s value ('' when unlabelled). */
export function metricValues(text: string, name: string, label?: string): Record<string, number> {
  const out: Record<string, number> = {};
  const pattern = label ? new RegExp(`^${name}\\{${label}="([^"]*)"\\} (\\S+)$`, 'gm') : new RegExp(`^${name}() (\\S+)$`, 'gm');
  for (const m of text.matchAll(pattern)) out[m[1]] = Number(m[2]);
  return out;
}
