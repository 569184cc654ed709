import { describe, expect, it } from 'vitest';
import { createAdmission, type AdmissionOptions, type Permit, type Timers } from '../src/admission/index.js';
import { ShotError } from '../src/errors/shot-error.js';
import { createNodeMetrics } from '../src/metrics/node-metrics.js';

/** A clock and timers that move only when the test says so. */
function fakeClock(start = 1_000_000) {
  let now = start;
  let nextId = 1;
  const pending = new Map<number, { at: number; fn: () => void }>();
  const timers: Timers = {
    setTimeout(fn, ms) {
      const id = nextId++;
      pending.set(id, { at: now + ms, fn });
      return id;
    },
    clearTimeout(handle) {
      pending.delete(handle as number);
    },
  };
  return {
    now: () => now,
    timers,
    pendingTimers: () => pending.size,
    advance(ms: number) {
      const until = now + ms;
      for (;;) {
        const due = [...pending.entries()].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        pending.delete(due[0]);
        now = due[1].at;
        due[1].fn();
      }
      now = until;
    },
  };
}

const base: AdmissionOptions = { pages: 2, queueMax: 2, maxMemoryBytes: 1000, adaptive: false, enabled: true };

function setup(opts: Partial<AdmissionOptions> = {}, memory = () => 10) {
  const clock = fakeClock();
  const metrics = createNodeMetrics();
  const admission = createAdmission({ ...base, ...opts }, { now: clock.now, memoryBytes: memory, timers: clock.timers, metrics });
  const req = (extra: { costClass?: string; timeoutMs?: number; signal?: AbortSignal } = {}) => ({
    costClass: extra.costClass ?? 'png:1280x800',
    deadlineAt: clock.now() + (extra.timeoutMs ?? 30_000),
    signal: extra.signal ?? new AbortController().signal,
  });
  const shedCount = async (reason: string) => (await metrics.shedTotal.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;
  return { clock, metrics, admission, req, shedCount };
}

async function refusal(p: Promise<unknown>): Promise<ShotError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ShotError);
  return err as ShotError;
}

/** Runs one render of `ms` on the fake clock so the estimates learn it. */
async function teach(s: ReturnType<typeof setup>, ms: number, costClass = 'png:1280x800') {
  const permit = await s.admission.admit(s.req({ costClass }));
  s.clock.advance(ms);
  permit.done({ ok: true, renderMs: ms });
}

describe('admission', () => {
  it('admits up to the pool size at once, queues the next ones in order, hands pages over on done', async () => {
    const s = setup();
    const a = await s.admission.admit(s.req());
    const b = await s.admission.admit(s.req());
    const order: string[] = [];
    const c = s.admission.admit(s.req()).then((p) => {
      order.push('c');
      return p;
    });
    const d = s.admission.admit(s.req()).then((p) => {
      order.push('d');
      return p;
    });
    expect(s.admission.snapshot()).toMatchObject({ inUse: 2, queued: 2 });
    s.clock.advance(250);
    a.done({ ok: true, renderMs: 250 });
    const permitC = await c;
    expect(permitC.queueMs).toBe(250);
    expect(order).toEqual(['c']);
    b.done({ ok: true, renderMs: 250 });
    await d;
    expect(order).toEqual(['c', 'd']);
    expect(s.admission.snapshot()).toMatchObject({ inUse: 2, queued: 0 });
    expect((await s.metrics.queueWait.get()).values.find((v) => v.metricName?.endsWith('_count'))?.value).toBe(4);
  });

  it('refuses with queue_full at once when every page is busy and the queue is full', async () => {
    const s = setup();
    await s.admission.admit(s.req());
    await s.admission.admit(s.req());
    void s.admission.admit(s.req());
    void s.admission.admit(s.req());
    const err = await refusal(s.admission.admit(s.req()));
    expect(err.status).toBe(503);
    expect(err.code).toBe('saturated');
    expect(err.details?.reason).toBe('queue_full');
    expect(err.headers?.['Retry-After']).toMatch(/^[1-9]\d*$/);
    expect(await s.shedCount('queue_full')).toBe(1);
    expect(s.admission.snapshot().shedPerSecond).toBeCloseTo(0.1);
  });

  it('refusalForAnyRequest: null while a request could still be taken, the queue_full/memory/draining 503 (counted) once none could', async () => {
    let memory = 10;
    const s = setup({}, () => memory);
    expect(s.admission.refusalForAnyRequest()).toBeNull();
    const running = [await s.admission.admit(s.req()), await s.admission.admit(s.req())];
    void s.admission.admit(s.req());
    expect(s.admission.refusalForAnyRequest()).toBeNull(); // one queue place left
    void s.admission.admit(s.req());
    const full = s.admission.refusalForAnyRequest();
    expect(full?.details?.reason).toBe('queue_full');
    expect(full?.headers?.['Retry-After']).toMatch(/^[1-9]\d*$/);
    expect(await s.shedCount('queue_full')).toBe(1);

    running[0].done({ ok: true, renderMs: 1000 }); // a page frees, the first queued request takes it
    expect(s.admission.refusalForAnyRequest()).toBeNull();
    memory = 5000;
    expect(s.admission.refusalForAnyRequest()?.details?.reason).toBe('memory');
    memory = 10;
    s.admission.startDraining();
    expect(s.admission.refusalForAnyRequest()?.details?.reason).toBe('draining');
    expect(await s.shedCount('draining')).toBe(1);
  });

  it('refusalForAnyRequest with admission off (unbounded queue) refuses only while draining', async () => {
    const s = setup({ enabled: false });
    for (let i = 0; i < 10; i++) void s.admission.admit(s.req());
    expect(s.admission.refusalForAnyRequest()).toBeNull();
    s.admission.startDraining();
    expect(s.admission.refusalForAnyRequest()?.details?.reason).toBe('draining');
  });

  it('times a queued request out with queue_timeout after queueTimeoutMs, and it leaves the queue', async () => {
    const s = setup({ pages: 1, queueTimeoutMs: 5000 });
    await s.admission.admit(s.req());
    const waiting = s.admission.admit(s.req());
    const outcome = refusal(waiting);
    s.clock.advance(4999);
    expect(s.admission.snapshot().queued).toBe(1);
    s.clock.advance(1);
    expect((await outcome).details?.reason).toBe('queue_timeout');
    expect(s.admission.snapshot().queued).toBe(0);
    expect(await s.shedCount('queue_timeout')).toBe(1);
  });

  it('times a queued request out when it can no longer finish by its own deadline', async () => {
    const s = setup({ pages: 1 });
    await teach(s, 1000);
    await s.admission.admit(s.req());
    const outcome = refusal(s.admission.admit(s.req({ timeoutMs: 4000 })));
    // It must start by deadline − estimate = 3000 ms from now.
    s.clock.advance(2999);
    expect(s.admission.snapshot().queued).toBe(1);
    s.clock.advance(1);
    expect((await outcome).details?.reason).toBe('queue_timeout');
  });

  it('refuses with deadline when the expected wait plus the render exceeds the request timeout', async () => {
    const s = setup({ pages: 1, queueMax: 10 });
    await teach(s, 1000);
    await s.admission.admit(s.req());
    void s.admission.admit(s.req());
    void s.admission.admit(s.req());
    // Ahead: 1 running + 2 queued on 1 page ≈ 3 s of waiting, then 1 s of its own render.
    expect((await refusal(s.admission.admit(s.req({ timeoutMs: 3500 })))).details?.reason).toBe('deadline');
    const admitted = s.admission.admit(s.req({ timeoutMs: 4500 }));
    expect(s.admission.snapshot().queued).toBe(3);
    void admitted.catch(() => {});
    expect(await s.shedCount('deadline')).toBe(1);
  });

  it('refuses with deadline even with a free page when the class alone takes longer than the timeout', async () => {
    const s = setup();
    await teach(s, 2000, 'png:4096x4096');
    await teach(s, 100, 'jpeg:800x600');
    expect((await refusal(s.admission.admit(s.req({ costClass: 'png:4096x4096', timeoutMs: 1500 })))).details?.reason).toBe('deadline');
    const permit = await s.admission.admit(s.req({ costClass: 'jpeg:800x600', timeoutMs: 1500 }));
    expect(permit.queueMs).toBe(0);
  });

  it('sets Retry-After to the time until the first page is expected to free up, in whole seconds ≥ 1', async () => {
    const s = setup({ pages: 1, queueMax: 0 });
    expect(s.admission.retryAfterSeconds()).toBe(1);
    await teach(s, 4200);
    const permit = await s.admission.admit(s.req());
    s.clock.advance(200);
    expect(s.admission.retryAfterSeconds()).toBe(4);
    const err = await refusal(s.admission.admit(s.req({ timeoutMs: 60_000 })));
    expect(err.details).toMatchObject({ reason: 'queue_full', retryAfterSeconds: 4 });
    expect(err.headers?.['Retry-After']).toBe('4');
    s.clock.advance(3500);
    expect(s.admission.retryAfterSeconds()).toBe(1);
    s.clock.advance(5000); // overdue: still at least one second
    expect(s.admission.retryAfterSeconds()).toBe(1);
    permit.done({ ok: true, renderMs: 8700 });
  });

  it('refuses with memory when node + browsers are above the limit, and admits again below it', async () => {
    let memory = 1200;
    const s = setup({}, () => memory);
    expect((await refusal(s.admission.admit(s.req()))).details?.reason).toBe('memory');
    expect(s.admission.snapshot().saturation).toBe(1);
    memory = 500;
    await expect(s.admission.admit(s.req())).resolves.toHaveProperty('queueMs', 0);
    expect(await s.shedCount('memory')).toBe(1);
  });

  it('refuses new work with draining (code draining) but lets queued work through', async () => {
    const s = setup({ pages: 1 });
    const running = await s.admission.admit(s.req());
    const queued = s.admission.admit(s.req());
    s.admission.startDraining();
    const err = await refusal(s.admission.admit(s.req()));
    expect(err.code).toBe('draining');
    expect(err.details?.reason).toBe('draining');
    expect(s.admission.snapshot().draining).toBe(true);
    running.done({ ok: true, renderMs: 10 });
    await expect(queued).resolves.toHaveProperty('queueMs');
  });

  it('takes a request whose client went away out of the queue at once, with the abort reason', async () => {
    const s = setup({ pages: 1, queueTimeoutMs: 10_000 });
    const running = await s.admission.admit(s.req());
    const controller = new AbortController();
    const gone = s.admission.admit(s.req({ signal: controller.signal }));
    const next = s.admission.admit(s.req());
    expect(s.admission.snapshot().queued).toBe(2);
    controller.abort(new Error('client closed'));
    await expect(gone).rejects.toThrow('client closed');
    expect(s.admission.snapshot().queued).toBe(1);
    expect(s.clock.pendingTimers()).toBe(1); // its queue timer is gone too
    running.done({ ok: true, renderMs: 10 });
    await expect(next).resolves.toHaveProperty('queueMs');
    const aborted = new AbortController();
    aborted.abort(new Error('already gone'));
    await expect(s.admission.admit(s.req({ signal: aborted.signal }))).rejects.toThrow('already gone');
  });

  it('counts done() once', async () => {
    const s = setup({ pages: 1 });
    const a = await s.admission.admit(s.req());
    const b = s.admission.admit(s.req());
    a.done({ ok: true, renderMs: 5 });
    await b;
    a.done({ ok: true, renderMs: 5 });
    expect(s.admission.snapshot().inUse).toBe(1);
  });

  it('with admission off queues without bound and never sheds, except when draining', async () => {
    const s = setup({ pages: 1, queueMax: 1, enabled: false }, () => 10_000);
    await s.admission.admit(s.req());
    const waiting = Array.from({ length: 20 }, () => s.admission.admit(s.req({ timeoutMs: 1 })));
    s.clock.advance(60_000);
    expect(s.admission.snapshot().queued).toBe(20);
    s.admission.startDraining();
    expect((await refusal(s.admission.admit(s.req()))).details?.reason).toBe('draining');
    expect(waiting).toHaveLength(20);
  });

  it('feeds the documented gauges through bindSources', async () => {
    const s = setup({ pages: 2, queueMax: 4 });
    await s.admission.admit(s.req());
    await s.admission.admit(s.req());
    void s.admission.admit(s.req());
    const text = await s.metrics.registry.metrics();
    expect(text).toMatch(/^shotfleet_pages_in_use 2$/m);
    expect(text).toMatch(/^shotfleet_pages_max 2$/m);
    expect(text).toMatch(/^shotfleet_render_queue_length 1$/m);
    expect(text).toMatch(/^shotfleet_concurrency_limit 2$/m);
    // 0.75 × 2/2 + 0.25 × 1/4
    expect(text).toMatch(/^shotfleet_saturation_ratio 0.8125$/m);
  });
});

describe('adaptive concurrency', () => {
  /**
   * Processor sharing on `cores` CPUs: each render needs 400 ms of CPU; with n running each advances at
   * min(1, cores / n). Offered load stays above the pool (pages + 2 outstanding). Returns the limit after each render.
   */
  async function drive(s: ReturnType<typeof setup>, cores: number, renders: number) {
    const limits: number[] = [];
    const running: { permit: Permit; work: number; startedAt: number }[] = [];
    let outstanding = 0;
    const offer = () => {
      outstanding++;
      void s.admission.admit(s.req({ timeoutMs: 600_000 })).then((permit) => running.push({ permit, work: 400, startedAt: s.clock.now() }));
    };
    const settle = async () => {
      for (let i = 0; i < 5; i++) await Promise.resolve();
    };
    for (let done = 0; done < renders; done++) {
      while (outstanding < s.admission.snapshot().pages + 2) offer();
      await settle();
      const rate = Math.min(1, cores / running.length);
      running.sort((a, b) => a.work - b.work);
      const step = running[0].work / rate;
      s.clock.advance(step);
      for (const r of running) r.work -= step * rate;
      const first = running.shift()!;
      outstanding--;
      first.permit.done({ ok: true, renderMs: s.clock.now() - first.startedAt });
      limits.push(s.admission.snapshot().limit);
      await settle();
    }
    return limits;
  }

  it('lowers the limit when more concurrency only makes each render slower (CPU-bound)', async () => {
    const s = setup({ pages: 8, queueMax: 100, adaptive: true });
    // Two cores: beyond 2 renders at once, each takes proportionally longer.
    const limits = await drive(s, 2, 300);
    expect(limits[0]).toBe(8);
    expect(Math.max(...limits.slice(-50))).toBeLessThanOrEqual(3);
  });

  it('keeps the limit at the pool size when renders do not slow down with concurrency', async () => {
    const s = setup({ pages: 8, queueMax: 100, adaptive: true });
    const limits = await drive(s, 8, 300);
    expect(Math.min(...limits.slice(-50))).toBe(8);
  });

  it('stays at the pool size when switched off', async () => {
    const s = setup({ pages: 8, queueMax: 100, adaptive: false });
    const limits = await drive(s, 2, 100);
    expect(new Set(limits)).toEqual(new Set([8]));
  });
});

/** Lets the promise callbacks of woken waiters run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('admission: fair shares between keys', () => {
  const heavy = { name: 'heavy', weight: 1 };
  const light = { name: 'light', weight: 1 };

  it('one key alone uses every page; the next free page goes to the key with fewer pages in use', async () => {
    const s = setup({ pages: 2, queueMax: 8 });
    const running = [await s.admission.admit({ ...s.req(), client: heavy }), await s.admission.admit({ ...s.req(), client: heavy })];
    expect(s.admission.pagesInUseByKey()).toEqual(new Map([['heavy', 2]]));
    const order: string[] = [];
    const queued = [heavy, heavy, heavy, light].map((client, i) =>
      s.admission.admit({ ...s.req(), client }).then((p) => {
        order.push(`${client.name}${i}`);
        return p;
      }),
    );
    running[0].done({ ok: true, renderMs: 100 });
    await settle();
    expect(order).toEqual(['light3']);
    expect(s.admission.pagesInUseByKey()).toEqual(
      new Map([
        ['heavy', 1],
        ['light', 1],
      ]),
    );
    running[1].done({ ok: true, renderMs: 100 });
    (await queued[0]).done({ ok: true, renderMs: 100 });
    await settle();
    expect(order).toEqual(['light3', 'heavy0', 'heavy1']);
  });

  it('a full queue sheds the newest request of the key holding the most of it, not a newcomer of another key', async () => {
    const s = setup({ pages: 1, queueMax: 3 });
    await s.admission.admit({ ...s.req(), client: heavy });
    const heavyWaits = [1, 2, 3].map(() =>
      s.admission.admit({ ...s.req(), client: heavy }).then(
        () => 'admitted',
        (err: ShotError) => err.details?.reason,
      ),
    );
    expect(s.admission.refusalForAnyRequest(heavy)?.details?.reason).toBe('queue_full');
    expect(s.admission.refusalForAnyRequest(light)).toBeNull();
    void s.admission.admit({ ...s.req(), client: light });
    expect(await heavyWaits[2]).toBe('queue_full');
    expect(s.admission.snapshot().queued).toBe(3);
    expect(await s.shedCount('queue_full')).toBe(2);
    expect(await refusal(s.admission.admit({ ...s.req(), client: heavy }))).toMatchObject({ details: { reason: 'queue_full' } });
  });

  it('with fair shares off, the queue is one first-come-first-served line and a newcomer of any key is shed', async () => {
    const s = setup({ pages: 1, queueMax: 2, fairShares: false });
    const first = await s.admission.admit({ ...s.req(), client: heavy });
    const order: string[] = [];
    for (const client of [heavy, light]) void s.admission.admit({ ...s.req(), client }).then(() => order.push(client.name));
    expect((await refusal(s.admission.admit({ ...s.req(), client: light }))).details?.reason).toBe('queue_full');
    first.done({ ok: true, renderMs: 100 });
    await settle();
    expect(order).toEqual(['heavy']);
  });

  it("the deadline check counts only the waiters served before the request: a light key is not refused for a heavy key's queue", async () => {
    const s = setup({ pages: 1, queueMax: 20 });
    await teach(s, 1000);
    await s.admission.admit({ ...s.req(), client: heavy });
    for (let i = 0; i < 10; i++) void s.admission.admit({ ...s.req(), client: heavy }).catch(() => undefined);
    // Eleven renders of 1 s ahead for heavy; for light, the running one and one of heavy's turns.
    expect((await refusal(s.admission.admit({ ...s.req({ timeoutMs: 5000 }), client: heavy }))).details?.reason).toBe('deadline');
    const lightWait = s.admission.admit({ ...s.req({ timeoutMs: 5000 }), client: light });
    expect(s.admission.snapshot().queued).toBe(11);
    void lightWait.catch(() => undefined);
  });
});
