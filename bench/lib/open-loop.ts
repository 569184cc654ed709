import http from 'node:http';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

export interface Outcome {
  /** When the request was due (ms since the step began); latency counts from here, so a slow sender is not hidden. */
  dueMs: number;
  latencyMs: number;
  /** How late the generator sent it (its own event loop or a CPU it waited for): part of latencyMs. */
  sendLagMs: number;
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
 * with the server and hide overload). Resolves when every request has been answered or abandoned. The sender
 * runs on a worker thread of its own, so the corpus server on this thread (busy serving Chromium) does not
 * make it late; how late it still was is in each outcome's sendLagMs.
 */
export async function runOpenLoop(opts: StepOptions): Promise<Outcome[]> {
  const total = Math.round((opts.ratePerSecond * opts.durationMs) / 1000);
  const job: OpenLoopJob = {
    url: opts.url,
    ratePerSecond: opts.ratePerSecond,
    clientTimeoutMs: opts.clientTimeoutMs,
    bodies: Array.from({ length: total }, (_, i) => opts.body(i)),
  };
  // tsx's loader hooks do not reach a worker: it registers them itself before loading this file.
  const bootstrap = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}); })`;
  const worker = new Worker(bootstrap, { eval: true, workerData: job });
  try {
    return await new Promise<Outcome[]>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the load generator exited with ${code} before it reported`)));
    });
  } finally {
    await worker.terminate();
  }
}

interface OpenLoopJob {
  url: string;
  ratePerSecond: number;
  clientTimeoutMs: number;
  bodies: unknown[];
}

async function sendAll(job: OpenLoopJob): Promise<Outcome[]> {
  const started = performance.now();
  const pending: Promise<Outcome>[] = [];
  for (let i = 0; i < job.bodies.length; i++) {
    const dueMs = (i * 1000) / job.ratePerSecond;
    const wait = started + dueMs - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    pending.push(send(job, job.bodies[i], started, dueMs));
  }
  return Promise.all(pending);
}

if (!isMainThread && parentPort) {
  parentPort.postMessage(await sendAll(workerData as OpenLoopJob));
}

function send(opts: { url: string; clientTimeoutMs: number }, body: unknown, started: number, dueMs: number): Promise<Outcome> {
  const payload = JSON.stringify(body);
  const elapsed = () => performance.now() - started - dueMs;
  const sendLagMs = Math.max(0, elapsed());
  return new Promise((resolve) => {
    let settled = false;
    const finish = (o: Omit<Outcome, 'dueMs' | 'latencyMs' | 'sendLagMs'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ dueMs, latencyMs: elapsed(), sendLagMs, ...o });
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
      const o = await send(opts, opts.body(i++), performance.now(), 0);
      if (o.status === 200) ok++;
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  return (ok * 1000) / (performance.now() - started);
}
