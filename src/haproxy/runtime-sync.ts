import type { Logger } from '../log/logger.js';
import { fleetBackends, sessionlessBackend, slotServerName } from './layout.js';
import type { RuntimeApi, ServerState } from './runtime-api.js';

/** What a filled slot should look like in the running HAProxy. Slots not listed are emptied. */
export interface DesiredSlot {
  slot: number;
  address: string;
  port: number;
  maxconn: number;
  state: 'ready' | 'drain';
}

/**
 * The Runtime API commands that take HAProxy from `actual` to `desired`, in both backends. Pure, so every
 * transition can be tested without HAProxy. Address before state: a slot never becomes ready pointing at
 * its previous node.
 */
export function planSlotCommands(
  desired: DesiredSlot[],
  actual: ServerState[],
  slotCount: number,
  /** Slots to leave exactly as they are (a restarted hub's nodes that have not re-announced yet). */
  keep: ReadonlySet<number> = new Set(),
): string[] {
  const wanted = new Map(desired.map((d) => [d.slot, d]));
  const current = new Map(actual.map((a) => [`${a.backend}/${a.name}`, a]));
  const commands: string[] = [];
  for (const backend of fleetBackends) {
    for (let slot = 1; slot <= slotCount; slot++) {
      const server = `${backend}/${slotServerName(slot)}`;
      const now = current.get(server);
      if (!now) continue;
      const want = wanted.get(slot);
      if (!want && keep.has(slot)) continue;
      if (!want) {
        if (!now.maintenance) commands.push(`set server ${server} state maint`);
        continue;
      }
      const moved = now.address !== want.address || now.port !== want.port;
      if (moved) commands.push(`set server ${server} addr ${want.address} port ${want.port}`);
      if ((moved || now.maintenance) && backend === sessionlessBackend) commands.push(`set maxconn server ${server} ${want.maxconn}`);
      if (want.state === 'ready' && (now.maintenance || now.drained)) commands.push(`set server ${server} state ready`);
      if (want.state === 'drain' && (now.maintenance || !now.drained)) commands.push(`set server ${server} state drain`);
    }
  }
  return commands;
}

export interface RuntimeSync {
  /** Brings HAProxy in line with `desired`; concurrent calls collapse into one more pass with the latest. */
  sync(desired: DesiredSlot[], keep?: ReadonlySet<number>): Promise<void>;
  /** Slots HAProxy routes to now ("address:port" → slot), so a restarted hub keeps nodes where they are. */
  occupiedSlots(): Promise<Map<string, number>>;
  /** Resolves once no pass is running. */
  idle(): Promise<void>;
}

/** One pass against one HAProxy: whether it ended in step, how long it took, how many commands it sent. */
export interface SyncOutcome {
  ok: boolean;
  seconds: number;
  commands: number;
}

export function createRuntimeSync(api: RuntimeApi, slotCount: number, log: Logger, report: (outcome: SyncOutcome) => void = () => undefined): RuntimeSync {
  let running: Promise<void> | undefined;
  let pending: { desired: DesiredSlot[]; keep: ReadonlySet<number> } | undefined;
  let failing = false;

  /** Sends what differs; returns the number of commands and of refused ones. */
  async function pass({ desired, keep }: { desired: DesiredSlot[]; keep: ReadonlySet<number> }): Promise<{ commands: number; refused: number }> {
    const actual = (await Promise.all(fleetBackends.map((b) => api.servers(b)))).flat();
    if (actual.length === 0) throw new Error("HAProxy has none of the shotfleet slots; start it from the hub's /haproxy.cfg");
    const commands = planSlotCommands(desired, actual, slotCount, keep);
    if (commands.length === 0) return { commands: 0, refused: 0 };
    // A server's commands stay together and in order (address before state); servers go in parallel.
    const byServer = new Map<string, string[]>();
    for (const command of commands) {
      const server = /(shotfleet_\w+\/s\d+)/.exec(command)?.[1] ?? command;
      byServer.set(server, [...(byServer.get(server) ?? []), command]);
    }
    const groups = [...byServer.values()];
    const answers = await api.runGroups(groups);
    let refused = 0;
    groups.forEach((group, g) => {
      group.forEach((command, i) => {
        const answer = answers[g][i] ?? '';
        // HAProxy answers successful "set server addr" with a description of the change; anything else is an error.
        if (answer !== '' && !/changed|no need to change/i.test(answer)) {
          refused++;
          log.warn({ command, answer }, 'HAProxy refused a runtime command');
        }
      });
    });
    log.debug({ commands: commands.length }, 'haproxy updated');
    return { commands: commands.length, refused };
  }

  async function loop(): Promise<void> {
    while (pending) {
      const desired = pending;
      pending = undefined;
      const started = process.hrtime.bigint();
      const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
      try {
        const { commands, refused } = await pass(desired);
        report({ ok: refused === 0, seconds: seconds(), commands });
        if (failing) log.info('HAProxy is in step again');
        failing = false;
      } catch (err) {
        report({ ok: false, seconds: seconds(), commands: 0 });
        // Once per outage at warn: the ping rounds retry every few seconds.
        (failing ? log.debug.bind(log) : log.warn.bind(log))({ err: (err as Error).message }, 'could not sync HAProxy; retrying every ping round');
        failing = true;
      }
    }
  }

  return {
    sync(desired, keep = new Set()) {
      pending = { desired, keep };
      running ??= loop().finally(() => (running = undefined));
      return running;
    },
    async occupiedSlots() {
      const servers = await api.servers(sessionlessBackend);
      const slots = new Map<string, number>();
      for (const s of servers) {
        const slot = Number(s.name.replace(/^s/, ''));
        if (!s.maintenance && Number.isInteger(slot)) slots.set(`${s.address}:${s.port}`, slot);
      }
      return slots;
    },
    async idle() {
      while (running) await running;
    },
  };
}
