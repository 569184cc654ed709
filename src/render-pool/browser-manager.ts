import type { Logger } from '../log/logger.js';
import type { NodeMetrics } from '../metrics/node-metrics.js';
import { launchBrowser, type LaunchedBrowser, type LaunchOptions } from './launch.js';

/** One Chromium process and the bookkeeping that decides when it is replaced. */
export interface BrowserHandle {
  launched: LaunchedBrowser;
  generation: number;
  renders: number;
  /** Pages (pool slots and sessions) still open on it; a retired browser closes when this reaches 0. */
  openPages: number;
  /** Crashed or killed: every page on it is gone. */
  dead: boolean;
  /** Replaced by a newer browser: finishes what it has, takes nothing new. */
  retired: boolean;
}

export interface BrowserManagerOptions {
  chromePath: string;
  launch: LaunchOptions;
  recycleAfter: number;
  /** Called when a browser is retired: pages idling on it keep it alive until someone closes them. */
  onRetired?(handle: BrowserHandle): void;
  log: Logger;
  metrics: NodeMetrics;
}

/**
 * Keeps one live browser for new pages. A crash is detected by the pipe closing and a replacement is
 * launched at once; a browser that has done `recycleAfter` renders is replaced only after its successor
 * is up, so there is never a moment without a browser to render in.
 */
export class BrowserManager {
  private current: Promise<BrowserHandle> | null = null;
  /** What `current` resolved to, so a crash can tell synchronously whether it hit the current browser. */
  private currentHandle: BrowserHandle | null = null;
  private readonly all = new Set<BrowserHandle>();
  private generation = 0;
  private closing = false;
  private recycling = false;

  constructor(private readonly opts: BrowserManagerOptions) {}

  /** The browser new pages should open in, launching one if there is none. */
  acquire(): Promise<BrowserHandle> {
    if (this.closing) return Promise.reject(new Error('the render pool is shutting down'));
    if (!this.current) this.makeCurrent(this.launch());
    return this.current!;
  }

  /** True while a browser is up (for /status). */
  hasLiveBrowser(): boolean {
    return [...this.all].some((b) => !b.dead);
  }

  pids(): number[] {
    return [...this.all].filter((b) => !b.dead && b.launched.pid > 0).map((b) => b.launched.pid);
  }

  /** Counts a finished render; starts a recycle once the browser has done enough. */
  countRender(handle: BrowserHandle): void {
    handle.renders++;
    if (handle.renders >= this.opts.recycleAfter && !handle.retired && !this.recycling && !this.closing) {
      void this.recycle(handle);
    }
  }

  pageOpened(handle: BrowserHandle): void {
    handle.openPages++;
  }

  pageClosed(handle: BrowserHandle): void {
    handle.openPages--;
    if (handle.retired && handle.openPages <= 0) void this.dispose(handle);
  }

  /** From now on a browser that goes away is not replaced: the node is stopping, and may kill them (close() follows). */
  stopReplacing(): void {
    this.closing = true;
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all([...this.all].map((b) => this.dispose(b)));
  }

  private async recycle(old: BrowserHandle): Promise<void> {
    this.recycling = true;
    try {
      const next = this.launch();
      await next;
      this.makeCurrent(next);
      old.retired = true;
      this.opts.metrics.browserRestarts.inc({ reason: 'recycle' });
      this.opts.log.info({ generation: old.generation, renders: old.renders }, 'browser recycled');
      this.opts.onRetired?.(old);
      if (old.openPages <= 0) await this.dispose(old);
    } catch (err) {
      this.opts.log.error({ err }, 'could not launch a replacement browser; keeping the current one');
    } finally {
      this.recycling = false;
    }
  }

  private makeCurrent(launching: Promise<BrowserHandle>): void {
    this.current = launching;
    this.currentHandle = null;
    launching.then(
      (handle) => {
        if (this.current === launching) this.currentHandle = handle;
      },
      () => undefined,
    );
  }

  private launch(): Promise<BrowserHandle> {
    const generation = ++this.generation;
    const started = Date.now();
    const launching = launchBrowser(this.opts.chromePath, this.opts.launch).then((launched) => {
      const handle: BrowserHandle = { launched, generation, renders: 0, openPages: 0, dead: false, retired: false };
      this.all.add(handle);
      launched.browser.once('disconnected', () => this.onDisconnected(handle));
      this.opts.log.info({ generation, browserPid: launched.pid, ms: Date.now() - started }, 'browser launched');
      if (this.closing) void this.dispose(handle);
      return handle;
    });
    launching.catch((err) => {
      this.opts.log.error({ err }, 'browser launch failed');
      if (this.current === launching) this.current = null;
    });
    return launching;
  }

  private onDisconnected(handle: BrowserHandle): void {
    if (handle.dead) return;
    handle.dead = true;
    if (this.closing || handle.retired) return;
    this.opts.metrics.browserRestarts.inc({ reason: 'crash' });
    this.opts.log.error({ generation: handle.generation, browserPid: handle.launched.pid }, 'browser disconnected; launching a replacement');
    void this.dispose(handle);
    if (this.currentHandle === handle) this.makeCurrent(this.launch());
  }

  private async dispose(handle: BrowserHandle): Promise<void> {
    if (!this.all.delete(handle)) return;
    handle.dead = true;
    await handle.launched.close();
  }
}
