import { killPids, leftoverChromium, type FoundProcess } from './children.js';
import { chromiumTree } from './proc-stats.js';
import { startNodeProcess, until, type Haproxy, type Hub, type NodeSlot } from './soak-fleet.js';

export type ChaosKind = 'renderers' | 'browser' | 'restart';

export interface ChaosEvent {
  kind: ChaosKind;
  node: string;
  /** Epoch ms when it struck. */
  at: number;
  /** Processes it killed (renderers, browser). */
  killed?: number;
  /** Chromium processes of ours outside every live node's tree 2 s after the event (then killed, so they do not pile up). */
  orphansAfter2s?: number;
  /** Their kinds (Chromium's --type, or the executable). */
  orphanTypes?: string[];
  restart?: RestartFigures;
  skipped?: string;
}

export interface RestartFigures {
  /** SIGTERM → process exit. */
  drainMs: number;
  exitCode: number | null;
  exitSignal: string | null;
  /** The bench had to SIGKILL it (it did not exit within the grace period + 10 s). */
  killedAfterGrace: boolean;
  /** Chromium processes of the old process still alive 1 s after it exited (then killed). */
  leftoverChromiumAfter1s: number;
  leftoverTypes: string[];
  /** From the new process's spawn: first /status 200, the hub lists it up, HAProxy routes to it (checks passing). */
  readyMs: number | null;
  hubUpMs: number | null;
  haproxyRoutesMs: number | null;
  /** Epoch ms of the SIGTERM and of the new process's spawn. */
  sigtermAt: number;
  spawnAt: number;
  /** Epoch ms when HAProxy routed to it again (or the bound), the end of this restart's window. */
  backAt: number;
  error?: string;
}

export interface ChaosPlan {
  rendererEveryMs: number;
  browserEveryMs: number;
  restartEveryMs: number;
  /** SIGTERM → SIGKILL bound for the node being restarted. */
  stopGraceMs: number;
}

/**
 * The chaos schedule over `durationMs`: renderers killed every rendererEveryMs, a browser every browserEveryMs
 * (offset by 10 s so it does not strike together with a renderer kill), a node restarted every restartEveryMs
 * (offset by 20 s). Each strikes the nodes in turn; a node that is restarting is passed over for the next.
 */
export function chaosSchedule(plan: ChaosPlan, durationMs: number): { at: number; kind: ChaosKind }[] {
  const events: { at: number; kind: ChaosKind }[] = [];
  const add = (kind: ChaosKind, every: number, offset: number) => {
    if (every <= 0) return;
    for (let t = every + offset; t < durationMs; t += every) events.push({ at: t, kind });
  };
  add('renderers', plan.rendererEveryMs, 0);
  add('browser', plan.browserEveryMs, 10_000);
  add('restart', plan.restartEveryMs, 20_000);
  return events.sort((a, b) => a.at - b.at);
}

export interface ChaosContext {
  nodes: NodeSlot[];
  hub: Hub;
  haproxy: Haproxy;
  plan: ChaosPlan;
  log(line: string): void;
}

export function startChaos(ctx: ChaosContext, durationMs: number): { events: ChaosEvent[]; stop(): Promise<void> } {
  const events: ChaosEvent[] = [];
  const turn: Record<ChaosKind, number> = { renderers: 0, browser: 0, restart: 1 };
  const running = new Set<Promise<void>>();
  const timers = chaosSchedule(ctx.plan, durationMs).map(({ at, kind }) =>
    setTimeout(() => {
      const p = strike(kind).catch((err) => ctx.log(`chaos ${kind} failed: ${(err as Error).message}`));
      running.add(p);
      void p.finally(() => running.delete(p));
    }, at),
  );

  async function strike(kind: ChaosKind): Promise<void> {
    const n = ctx.nodes.length;
    let target: NodeSlot | undefined;
    for (let k = 0; k < n && !target; k++) {
      const candidate = ctx.nodes[(turn[kind] + k) % n];
      if (candidate.up) target = candidate;
    }
    turn[kind]++;
    const event: ChaosEvent = { kind, node: target?.id ?? '-', at: Date.now() };
    events.push(event);
    if (!target) {
      event.skipped = 'no node up';
      ctx.log(`chaos ${kind}: skipped, no node is up`);
      return;
    }
    if (kind === 'restart') {
      event.restart = await restart(target);
      const r = event.restart;
      ctx.log(
        `chaos restart ${target.id}: drained in ${r.drainMs} ms (exit ${r.exitCode ?? r.exitSignal}${r.killedAfterGrace ? ', SIGKILLed' : ''}), ` +
          `${r.leftoverChromiumAfter1s} Chromium left after 1 s; new process ready ${r.readyMs} ms, hub up ${r.hubUpMs} ms, HAProxy routes ${r.haproxyRoutesMs} ms${r.error ? ` (${r.error})` : ''}`,
      );
      return;
    }
    const tree = await chromiumTree(target.child.pid);
    const victims = tree.filter((p) => (kind === 'renderers' ? p.type === 'renderer' : p.type === 'browser')).map((p) => p.pid);
    killPids(victims);
    event.killed = victims.length;
    await new Promise((r) => setTimeout(r, 2000));
    const orphans = killOrphans(ctx.nodes);
    event.orphansAfter2s = orphans.length;
    event.orphanTypes = orphans.map(processKind);
    ctx.log(
      `chaos ${kind} on ${target.id}: killed ${victims.length} process(es); ${orphans.length} orphaned Chromium after 2 s ${orphans.length ? `(${event.orphanTypes.join(', ')})` : ''}`,
    );
  }

  async function restart(slot: NodeSlot): Promise<RestartFigures> {
    slot.up = false;
    const old = slot.child;
    const sigtermAt = Date.now();
    const how = await old.stop(ctx.plan.stopGraceMs + 10_000);
    const drainMs = Date.now() - sigtermAt;
    await new Promise((r) => setTimeout(r, 1000));
    const left = leftoverChromium().filter((p) => belongsTo(p, old.pid));
    killPids(left.map((p) => p.pid));
    const spawnAt = Date.now();
    const figures: RestartFigures = {
      drainMs,
      exitCode: how.code,
      exitSignal: how.signal,
      killedAfterGrace: how.killed,
      leftoverChromiumAfter1s: left.length,
      leftoverTypes: left.map(processKind),
      readyMs: null,
      hubUpMs: null,
      haproxyRoutesMs: null,
      sigtermAt,
      spawnAt,
      backAt: spawnAt + 120_000,
    };
    try {
      figures.readyMs = await startNodeProcess(slot);
    } catch (err) {
      figures.error = (err as Error).message.split('\n')[0];
      return figures;
    }
    const [hubUp, routes] = await Promise.all([
      until(async () => (await ctx.hub.nodes()).some((x) => x.id === slot.id && x.state === 'up'), 120_000, 100),
      until(() => ctx.haproxy.routes(slot.host, slot.port), 120_000, 100),
    ]);
    figures.hubUpMs = hubUp === null ? null : hubUp + (figures.readyMs ?? 0);
    figures.haproxyRoutesMs = routes === null ? null : routes + (figures.readyMs ?? 0);
    if (figures.haproxyRoutesMs !== null) figures.backAt = spawnAt + figures.haproxyRoutesMs;
    return figures;
  }

  return {
    events,
    async stop() {
      for (const t of timers) clearTimeout(t);
      await Promise.all(running);
    },
  };
}

/** Whether a leftover process was launched by the given shotfleet process (its profile directory says so). */
const belongsTo = (p: FoundProcess, nodePid: number) => p.cmd.includes(`shotfleet-chrome-${nodePid}-`);

export const processKind = (p: FoundProcess) => /--type=(\S+)/.exec(p.cmd)?.[1] ?? p.cmd.split(' ')[0].split('/').pop()!;

/**
 * Kills Chromium processes of ours whose parent is neither a live node nor another of our Chromium processes
 * (orphans: reparented once what started them died); returns them. A tree walk would race with processes
 * being forked and miss some, and killing a live one would be chaos of the bench's own making.
 */
function killOrphans(nodes: NodeSlot[]): FoundProcess[] {
  const ours = leftoverChromium();
  const parents = new Set([
    ...ours.map((p) => p.pid),
    ...nodes.filter((n) => n.child.proc.exitCode === null && n.child.proc.signalCode === null).map((n) => n.child.pid),
  ]);
  const orphans = ours.filter((p) => !parents.has(p.ppid));
  killPids(orphans.map((p) => p.pid));
  return orphans;
}
