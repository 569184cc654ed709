export interface LookupLimit {
  run<T>(host: string, lookup: () => Promise<T>): Promise<T>;
  /** Fails every lookup still waiting and starts none: a closed page's names are nobody's business. */
  close(): void;
}

/**
 * At most `inFlight` lookups at once for one page, each bounded by `timeoutMs` counted from when it was asked
 * (waiting for a free slot included), so a page naming hundreds of hosts under a slow name server neither
 * floods it nor waits longer than one timeout per host for an answer.
 */
export function createLookupLimit(inFlight: number, timeoutMs: number): LookupLimit {
  let running = 0;
  let closed = false;
  const waiting: { start(): void; fail(err: Error): void }[] = [];

  function next() {
    while (!closed && running < inFlight && waiting.length > 0) waiting.shift()!.start();
  }

  const failure = (code: string, message: string) => Object.assign(new Error(message), { code });

  return {
    run<T>(host: string, lookup: () => Promise<T>): Promise<T> {
      if (closed) return Promise.reject(failure('ECANCELLED', `ECANCELLED ${host}: the page is closed`));
      return new Promise<T>((resolve, reject) => {
        let settled = false;
        const entry = {
          start() {
            running++;
            // The slot is held until the lookup itself ends (each is bounded by the resolver's own timeout), so
            // no more than `inFlight` are ever outstanding, even after their callers gave up.
            lookup()
              .then(
                (value) => !settled && resolve(value),
                (err) => !settled && reject(err),
              )
              .finally(() => {
                settled = true;
                clearTimeout(timer);
                running--;
                next();
              });
          },
          fail(err: Error) {
            settled = true;
            clearTimeout(timer);
            reject(err);
          },
        };
        const timer = setTimeout(() => {
          const i = waiting.indexOf(entry);
          if (i >= 0) waiting.splice(i, 1);
          entry.fail(failure('ETIMEOUT', `ETIMEOUT ${host}: no answer within ${timeoutMs} ms (SHOTFLEET_DNS_TIMEOUT_MS)`));
        }, timeoutMs);
        // A bound, not work: a stopping node whose pages still wait on names must not be kept alive by it.
        timer.unref();
        waiting.push(entry);
        next();
      });
    },
    close() {
      closed = true;
      for (const entry of waiting.splice(0)) entry.fail(failure('ECANCELLED', 'ECANCELLED: the page is closed'));
    },
  };
}
