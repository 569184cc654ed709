import http from 'node:http';

export interface Outcome {
  /** When the request was due (ms since the step began); latency counts from here, so a slow sender is not hidden. */
  dueMs: number;
  latencyMs: number;
  status: number;
  /** details.reason of a 503. */
  reason?: string;
  retryAfter?: string;
  /** The client gave up (its deadline plus grace passed) or the connection failed. */
  clientTimeout: boolean;
  error?: string;
}

export interface StepOptions {
  url: string;
  ratePerSecond: number;
  durationMs: number;
  /** The request body of the i-th request of the step. */
  body(i: number): unknown;
  /** The client abandons a request after this long. */
  clientTimeoutMs: number;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });

/**
 * Open-loop load: request i is sent at i / rate whatever happened to earlier ones (a closed loop would slow down
 * with the server and hide overload). Resolves when every request has been answered or abandoned.
 */
export async function runOpenLoop(opts: StepOptions): Promise<Outcome[]> {
  const total = Math.round((opts.ratePerSecond * opts.durationMs) / 1000);
  const started = performance.now();
  const pending: Promise<Outcome>[] = [];
  for (let i = 0; i < total; i++) {
    const dueMs = (i * 1000) / opts.ratePerSecond;
    const wait = started + dueMs - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    pending.push(send(opts, opts.body(i), started, dueMs));
  }
  return Promise.all(pending);
}

function send(opts: StepOptions, body: unknown, started: number, dueMs: number): Promise<Outcome> {
  const payload = JSON.stringify(body);
  const elapsed = () => performance.now() - started - dueMs;
  return new Promise((resolve) => {
    let settled = false;
    const finish = (o: Omit<Outcome, 'dueMs' | 'latencyMs'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ dueMs, latencyMs: elapsed(), ...o });
    };
    const req = http.request(
      `${opts.url}/screenshot`,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          let reason: string | undefined;
          if (status !== 200) {
            try {
              reason = JSON.parse(Buffer.concat(chunks).toString('utf8')).error?.details?.reason;
            } catch {
              // not JSON: leave the reason empty
            }
          }
          finish({ status, reason, retryAfter: res.headers['retry-after'], clientTimeout: false });
        });
        res.on('error', (err) => finish({ status: 0, clientTimeout: true, error: err.message }));
      },
    );
    const timer = setTimeout(() => {
      finish({ status: 0, clientTimeout: true, error: 'client timeout' });
      req.destroy();
    }, opts.clientTimeoutMs);
    req.on('error', (err) => finish({ status: 0, clientTimeout: true, error: err.message }));
    req.end(payload);
  });
}

/** Keeps `concurrency` requests in flight for `durationMs` (a closed loop): the node's capacity, in successes/s. */
export async function measureCapacity(opts: Omit<StepOptions, 'ratePerSecond'> & { concurrency: number }): Promise<number> {
  const started = performance.now();
  let ok = 0;
  let i = 0;
  const worker = async () => {
    while (performance.now() - started < opts.durationMs) {
      const o = await send({ ...opts, ratePerSecond: 0 }, opts.body(i++), performance.now(), 0);
      if (o.status === 200) ok++;
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  return (ok * 1000) / (performance.now() - started);
}
