import { readdir, readFile } from 'node:fs/promises';
import { processTree } from '../../src/admission/memory-probe.js';

const pageBytes = 4096;

export interface ChromiumProcess {
  pid: number;
  /** Chromium's --type= (renderer, zygote, gpu-process, utility, …); 'browser' for the process without one. */
  type: string;
}

/** The Chromium processes under a node (its browsers and everything they started), by walking its process tree. */
export async function chromiumTree(nodePid: number): Promise<ChromiumProcess[]> {
  // A browser starts its helpers from any of its threads, and processTree asks every thread only of its roots:
  // the node's own children (its browsers) are roots too.
  const threads = await readdir(`/proc/${nodePid}/task`).catch(() => []);
  const children = (await Promise.all(threads.map((t) => readFile(`/proc/${nodePid}/task/${t}/children`, 'utf8').catch(() => '')))).flatMap((l) =>
    l.split(' ').filter(Boolean).map(Number),
  );
  const pids = (await processTree([nodePid, ...children])).filter((p) => p !== nodePid);
  const found: ChromiumProcess[] = [];
  for (const pid of pids) {
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (!/chrom/i.test(cmd)) continue;
    const type = /--type=([^\0 ]+)/.exec(cmd)?.[1] ?? 'browser';
    found.push({ pid, type });
  }
  return found;
}

export interface ProcessFigures {
  /** Resident bytes of the node process itself. */
  nodeRss: number;
  nodeFds: number;
  /** Private resident bytes summed over its Chromium processes (shared pages counted once would need PSS). */
  chromiumPrivate: number;
  chromiumFds: number;
  chromiumProcesses: number;
  renderers: number;
}

async function statm(pid: number): Promise<{ resident: number; shared: number }> {
  const [, resident, shared] = (await readFile(`/proc/${pid}/statm`, 'utf8')).split(' ').map(Number);
  return { resident: resident * pageBytes, shared: shared * pageBytes };
}

const fdCount = async (pid: number) => (await readdir(`/proc/${pid}/fd`).catch(() => [])).length;

export async function processFigures(nodePid: number): Promise<ProcessFigures> {
  const node = await statm(nodePid);
  const chromium = await chromiumTree(nodePid);
  let chromiumPrivate = 0;
  let chromiumFds = 0;
  for (const c of chromium) {
    try {
      const m = await statm(c.pid);
      chromiumPrivate += m.resident - m.shared;
      chromiumFds += await fdCount(c.pid);
    } catch {
      // ended while we looked
    }
  }
  return {
    nodeRss: node.resident,
    nodeFds: await fdCount(nodePid),
    chromiumPrivate,
    chromiumFds,
    chromiumProcesses: chromium.length,
    renderers: chromium.filter((c) => c.type === 'renderer').length,
  };
}
