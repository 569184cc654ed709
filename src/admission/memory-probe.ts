import { readdir, readFile } from 'node:fs/promises';

const pageBytes = 4096;

/** Resident bytes of a process from /proc/PID/statm (second field, in pages); 0 when it is gone. */
async function residentBytes(pid: number): Promise<number> {
  try {
    const statm = await readFile(`/proc/${pid}/statm`, 'utf8');
    return Number(statm.split(' ')[1]) * pageBytes;
  } catch {
    return 0;
  }
}

/** Every process id with its parent, from /proc/PID/stat. */
async function parentsByPid(): Promise<Map<number, number>> {
  const parents = new Map<number, number>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      // The command name (2nd field) may hold spaces and parentheses: fields resume after the last ")".
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parents.set(Number(entry), Number(fields[1]));
    } catch {
      // it exited while we looked
    }
  }
  return parents;
}

/** The given processes and all their descendants. */
export async function processTree(roots: number[]): Promise<number[]> {
  const parents = await parentsByPid();
  const tree = new Set(roots.filter((pid) => parents.has(pid)));
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, parent] of parents) {
      if (!tree.has(pid) && tree.has(parent)) {
        tree.add(pid);
        grew = true;
      }
    }
  }
  return [...tree];
}

/** Summed RSS of the processes and their descendants (shared pages count once per process, as `ps` does). */
export async function treeResidentBytes(roots: number[]): Promise<number> {
  const sizes = await Promise.all((await processTree(roots)).map(residentBytes));
  return sizes.reduce((a, b) => a + b, 0);
}

/**
 * RSS of this process plus its browsers' process trees (renderers, GPU, zygote), read from /proc every
 * `intervalMs` so that `bytes()` — called on every admission — costs nothing. Before the first reading it
 * reports this process alone.
 */
export function createMemoryProbe(browserPids: () => number[], intervalMs = 1000): { bytes(): number; stop(): void } {
  let bytes = process.memoryUsage.rss();
  let reading = false;
  const read = async () => {
    if (reading) return;
    reading = true;
    try {
      const browsers = await treeResidentBytes(browserPids());
      bytes = process.memoryUsage.rss() + browsers;
    } finally {
      reading = false;
    }
  };
  void read();
  const timer = setInterval(() => void read(), intervalMs);
  timer.unref();
  return {
    bytes: () => bytes,
    stop: () => clearInterval(timer),
  };
}
