import { readdir, readFile } from 'node:fs/promises';

const pageBytes = 4096;

/**
 * Private resident bytes of a process: resident minus shared pages, from /proc/PID/statm; 0 when it is gone.
 * Summing plain RSS over Chromium's dozen processes counts the mapped binary and shared memory once per process
 * (measured: 1.7 GB "RSS" for 0.49 GB of PSS on an idle 2-page node); the private sum came within 6 % of PSS,
 * which costs ~40 ms of kernel time per reading against ~3 ms for statm.
 */
async function privateResidentBytes(pid: number): Promise<number> {
  try {
    const [, resident, shared] = (await readFile(`/proc/${pid}/statm`, 'utf8')).split(' ').map(Number);
    return (resident - shared) * pageBytes;
  } catch {
    return 0;
  }
}

/** Children forked by one thread of a process, from /proc/PID/task/TID/children. */
async function childrenOfThread(pid: number, tid: number | string): Promise<number[]> {
  const list = await readFile(`/proc/${pid}/task/${tid}/children`, 'utf8').catch(() => '');
  return list.split(' ').filter(Boolean).map(Number);
}

/**
 * The given processes and all their descendants. Walking down from the roots reads only the browsers' own
 * processes, not every process on the machine (a full /proc scan each second cost the node ~30 % of its CPU
 * in the render benchmark). A root (the browser) starts its helpers from any of its threads, so each of its
 * threads is asked; below it only zygotes fork, from their main thread, so asking that thread alone finds the
 * same processes (checked against the every-thread walk on a browser with three sites open: 16 of 16) in ~40
 * reads instead of ~190.
 */
export async function processTree(roots: number[]): Promise<number[]> {
  const rootSet = new Set(roots);
  const tree = new Set<number>();
  let frontier = roots.filter((pid) => pid > 0);
  while (frontier.length > 0) {
    const next: number[] = [];
    for (const pid of frontier) {
      if (tree.has(pid)) continue;
      tree.add(pid);
      const threads = rootSet.has(pid) ? await readdir(`/proc/${pid}/task`).catch(() => []) : [pid];
      for (const tid of threads) next.push(...(await childrenOfThread(pid, tid)));
    }
    frontier = next;
  }
  return [...tree];
}

/** Memory of the processes and their descendants: the sum of their private resident bytes. */
export async function treeMemoryBytes(roots: number[]): Promise<number> {
  const sizes = await Promise.all((await processTree(roots)).map(privateResidentBytes));
  return sizes.reduce((a, b) => a + b, 0);
}

/**
 * Memory of this process (RSS) plus its browsers' process trees (renderers, GPU, zygote: private resident
 * bytes, see privateResidentBytes), read from /proc every
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
      const browsers = await treeMemoryBytes(browserPids());
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
