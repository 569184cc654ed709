import http from 'node:http';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { backoffDelay, defaultRetryPolicy, parseRetryAfter, retryAfterDelay } from '../../src/shoot/retry-policy.js';

/** What the soak sends: shares of each kind of request and what they point at. */
export interface Mix {
  ordinaryUrls: string[];
  hostileUrls: string[];
  sessionIds: string[];
  sessionShare: number;
  hostileShare: number;
  /** Render deadline (the request's `timeout`) of ordinary and session requests, and of hostile ones. */
  timeoutMs: number;
  hostileTimeoutMs: number;
  sessionCookie: string;
  seed: number;
}

export type Kind = 'ordinary' | 'session' | 'hostile';

export interface SoakOutcome {
  i: number;
  kind: Kind;
  url: string;
  /** When it was due to be sent (epoch ms); latency counts from here, so a late sender is not hidden. */
  dueAt: number;
  /** When its last answer (or failure) came (epoch ms). */
  doneAt: number;
  latencyMs: number;
  /** HTTP status of the last answer; 0 when there was none (connection failed, or the client gave up). */
  status: number;
  /** error.code of a JSON error answer, or the connection error. */
  code?: string;
  /** details.reason of the last 503. */
  reason?: string;
  /** X-Shotfleet-Node of the last answer; absent on HAProxy's own answers. */
  node?: string;
  session?: string;
  /** X-Shotfleet-Session of the last answer: new or reused. */
  sessionState?: string;
  /** 503s waited out before the last answer. */
  shedRetries: number;
  /** 503s among them that HAProxy itself answered (no node header): no server available. */
  proxyShed: number;
  error?: string;
}

export interface SoakJob {
  frontUrl: string;
  token: string;
  mix: Mix;
  /** open: request i is due at i / rate, whatever happened to the others; closed: `concurrency` requests in flight, no retries. */
  load: { kind: 'open'; ratePerSecond: number; durationMs: number } | { kind: 'closed'; concurrency: number; durationMs: number };
}

type Message = { type: 'outcome'; outcome: SoakOutcome } | { type: 'done'; sent: number };

/**
 * Runs the job on a worker thread of its own (the bench's servers and samplers on the main thread would make it
 * late), reporting each outcome as it completes. `stop()` ends sending early; requests in flight still finish.
 */
export function startSoakClient(job: SoakJob, onOutcome: (o: SoakOutcome) => void): { done: Promise<number>; stop(): void; terminate(): Promise<number> } {
  // tsx's loader hooks do not reach a worker: it registers them itself before loading this file.
  const bootstrap = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}); })`;
  const worker = new Worker(bootstrap, { eval: true, workerData: job });
  const done = new Promise<number>((resolve, reject) => {
    worker.on('message', (m: Message) => {
      if (m.type === 'outcome') onOutcome(m.outcome);
      else resolve(m.sent);
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the soak client exited with ${code} before it finished`)));
  });
  return {
    done: done.finally(() => void worker.terminate()),
    stop: () => worker.postMessage('stop'),
    terminate: () => worker.terminate(),
  };
}

/** A small seeded generator, so two runs send the same sequence of requests. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Planned {
  kind: Kind;
  url: string;
  body: Record<string, unknown>;
  session?: string;
}

export function planRequests(mix: Mix): (i: number) => Planned {
  const random = mulberry32(mix.seed);
  return (i) => {
    const r = random();
    const pick = <T>(list: T[]) => list[Math.floor(random() * list.length)];
    const jpeg = random() < 0.5;
    const format = jpeg ? { format: 'jpeg', quality: 80 } : { format: 'png' };
    if (r < mix.hostileShare) {
      const url = pick(mix.hostileUrls);
      return { kind: 'hostile', url, body: { url, format: 'jpeg', quality: 80, timeout: mix.hostileTimeoutMs } };
    }
    const url = mix.ordinaryUrls[i % mix.ordinaryUrls.length];
    const body = { url, ...format, timeout: mix.timeoutMs };
    if (r < mix.hostileShare + mix.sessionShare) return { kind: 'session', url, body, session: pick(mix.sessionIds) };
    return { kind: 'ordinary', url, body };
  };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Answer {
  status: number;
  code?: string;
  reason?: string;
  node?: string;
  sessionState?: string;
  retryAfter: string | null;
  error?: string;
}

function post(job: SoakJob, p: Planned, clientTimeoutMs: number): Promise<Answer> {
  const payload = JSON.stringify(p.body);
  return new Promise((resolve) => {
    let settled = false;
    const finish = (a: Answer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(a);
    };
    const headers: Record<string, string | number> = {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(payload),
      authorization: `Bearer ${job.token}`,
    };
    if (p.session) headers.cookie = `${job.mix.sessionCookie}=${p.session}`;
    const req = http.request(`${job.frontUrl}/screenshot`, { method: 'POST', agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        if (res.statusCode !== 200) chunks.push(c);
      });
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        let code: string | undefined;
        let reason: string | undefined;
        if (status !== 200) {
          try {
            const error = JSON.parse(Buffer.concat(chunks).toString('utf8')).error;
            code = error?.code;
            reason = error?.details?.reason;
          } catch {
            code = 'not_json';
          }
        }
        const node = res.headers['x-shotfleet-node'];
        const sessionState = res.headers['x-shotfleet-session'];
        finish({
          status,
          code,
          reason,
          node: typeof node === 'string' ? node : undefined,
          sessionState: typeof sessionState === 'string' ? sessionState : undefined,
          retryAfter: (res.headers['retry-after'] as string | undefined) ?? null,
        });
      });
      res.on('error', (err) => finish({ status: 0, code: 'connection_error', error: err.message, retryAfter: null }));
    });
    const timer = setTimeout(() => {
      finish({ status: 0, code: 'client_timeout', error: `no answer within ${clientTimeoutMs} ms`, retryAfter: null });
      req.destroy();
    }, clientTimeoutMs);
    req.on('error', (err) => finish({ status: 0, code: 'connection_error', error: (err as NodeJS.ErrnoException).code ?? err.message, retryAfter: null }));
    req.end(payload);
  });
}

/**
 * The client gives up on an answer only after HAProxy would have answered itself: its generated config waits up
 * to 30 s for a free server (timeout queue) and 90 s for the server's answer (timeout server).
 */
const clientTimeoutMs = 125_000;
const policy = defaultRetryPolicy(1);

/** Sends one planned request; waits out 503s as `shotfleet shoot` does (Retry-After plus jitter, else backoff). */
async function sendWithRetries(job: SoakJob, i: number, p: Planned, dueAt: number, retry503: boolean): Promise<SoakOutcome> {
  let shedRetries = 0;
  let proxyShed = 0;
  for (;;) {
    const a = await post(job, p, clientTimeoutMs);
    if (a.status === 503 && retry503 && shedRetries < policy.maxShedRetriesPerItem) {
      shedRetries++;
      if (!a.node) proxyShed++;
      const after = parseRetryAfter(a.retryAfter);
      await sleep(after === undefined ? backoffDelay(shedRetries, policy) : retryAfterDelay(after, policy));
      continue;
    }
    const doneAt = Date.now();
    return {
      i,
      kind: p.kind,
      url: p.url,
      dueAt,
      doneAt,
      latencyMs: doneAt - dueAt,
      status: a.status,
      code: a.code,
      reason: a.reason,
      node: a.node,
      session: p.session,
      sessionState: a.sessionState,
      shedRetries,
      proxyShed,
      error: a.error,
    };
  }
}

async function run(job: SoakJob): Promise<number> {
  let stopped = false;
  parentPort!.on('message', (m) => {
    if (m === 'stop') stopped = true;
  });
  const plan = planRequests(job.mix);
  const report = (outcome: SoakOutcome) => parentPort!.postMessage({ type: 'outcome', outcome } satisfies Message);
  const started = Date.now();
  const pending = new Set<Promise<void>>();
  let sent = 0;
  if (job.load.kind === 'open') {
    const { ratePerSecond, durationMs } = job.load;
    for (let i = 0; !stopped; i++) {
      const dueAt = started + (i * 1000) / ratePerSecond;
      if (dueAt - started >= durationMs) break;
      const wait = dueAt - Date.now();
      if (wait > 1) await sleep(wait);
      if (stopped) break;
      const p = sendWithRetries(job, i, plan(i), dueAt, true).then(report);
      pending.add(p);
      void p.finally(() => pending.delete(p));
      sent++;
    }
  } else {
    const { concurrency, durationMs } = job.load;
    let next = 0;
    const loop = async () => {
      while (!stopped && Date.now() - started < durationMs) {
        const i = next++;
        sent++;
        report(await sendWithRetries(job, i, plan(i), Date.now(), false));
      }
    };
    await Promise.all(Array.from({ length: concurrency }, loop));
  }
  await Promise.all(pending);
  return sent;
}

if (!isMainThread && parentPort && (workerData as SoakJob | undefined)?.frontUrl) {
  const sent = await run(workerData as SoakJob);
  parentPort.postMessage({ type: 'done', sent } satisfies Message);
}
