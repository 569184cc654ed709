import { imageSize } from 'image-size';

export interface ClosedLoopOptions {
  /** Takes one shot of `url`; its bytes are checked to be an image of some size. */
  shoot(url: string): Promise<Buffer>;
  urls: readonly string[];
  /** Shots in flight at once. */
  workers: number;
  /** Where in `urls` this run starts, so runs of several modes do not all begin on the same page. */
  offset: number;
  shots: number;
  budgetMs: number;
  /** Called once the warm-up shots are done, right before the measured ones (e.g. to read a CPU counter). */
  onMeasureStart?(): void;
}

export interface ClosedLoopRun {
  latencies: number[];
  errors: number;
  seconds: number;
  bytes: number;
  /** Image sizes seen ("1280x800"): more than one means the modes did not shoot alike. */
  sizes: Set<string>;
}

/**
 * A closed loop: one unmeasured warm-up shot per worker (first-use costs are not what a run measures), then
 * workers take URLs in turn from one shared counter — consecutive shots go to different sites — until `shots`
 * were sent or the budget ran out.
 */
export async function closedLoop(o: ClosedLoopOptions): Promise<ClosedLoopRun> {
  await Promise.all(Array.from({ length: o.workers }, (_, w) => o.shoot(o.urls[(o.offset + w) % o.urls.length])));
  o.onMeasureStart?.();
  const run: ClosedLoopRun = { latencies: [], errors: 0, seconds: 0, bytes: 0, sizes: new Set() };
  let next = o.offset + o.workers;
  let issued = 0;
  const started = performance.now();
  const deadline = started + o.budgetMs;
  await Promise.all(
    Array.from({ length: o.workers }, async () => {
      while (issued < o.shots && performance.now() < deadline) {
        issued++;
        const url = o.urls[next++ % o.urls.length];
        const t0 = performance.now();
        try {
          const image = await o.shoot(url);
          run.bytes += image.length;
          const { width, height } = imageSize(image);
          run.sizes.add(`${width}x${height}`);
          run.latencies.push(performance.now() - t0);
        } catch (err) {
          run.errors++;
          if (run.errors <= 3) console.error(`  shot of ${url} failed: ${(err as Error).message}`);
        }
      }
    }),
  );
  run.seconds = (performance.now() - started) / 1000;
  return run;
}
