import fs from 'node:fs';

const clockTicksPerSecond = 100;
const ticksToMs = (ticks: number) => (ticks * 1000) / clockTicksPerSecond;

/** CPU ms used so far by the whole machine (every process, user + system): includes other people's work. */
export function machineCpuMs(): number {
  const [user, nice, system, , , irq, softirq] = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].split(/\s+/).slice(1).map(Number);
  return ticksToMs(user + nice + system + irq + softirq);
}

/**
 * CPU ms used so far by a process and every descendant (user + system), including descendants that exited and
 * were reaped (their time moves into their parent's cutime/cstime, so the sum never goes back). A Chromium
 * renderer that exits mid-run therefore still counts, under its zygote.
 */
export function treeCpuMs(rootPid: number): number {
  const stats = new Map<number, { ppid: number; ticks: number }>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const fields = fs.readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1].split(' ');
      const [utime, stime, cutime, cstime] = fields.slice(11, 15).map(Number);
      stats.set(Number(entry), { ppid: Number(fields[1]), ticks: utime + stime + cutime + cstime });
    } catch {
      // exited meanwhile
    }
  }
  const children = new Map<number, number[]>();
  for (const [pid, { ppid }] of stats) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  let ticks = 0;
  const stack = [rootPid];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    ticks += stats.get(pid)?.ticks ?? 0;
    stack.push(...(children.get(pid) ?? []));
  }
  return ticksToMs(ticks);
}

/** CPU ms used so far by one process itself (user + system), without its children: a node's own work, not Chromium's. */
export function processCpuMs(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  const [utime, stime] = fields.slice(11, 13).map(Number);
  return ticksToMs(utime + stime);
}
