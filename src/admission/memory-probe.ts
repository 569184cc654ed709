import { readdirSync, readFileSync } from 'node:fs';

const pageBytes = 4096;

/**
 * /proc files are made by the kernel on reading, from memory: a synchronous read takes microseconds. Read through
 * fs/promises (open, stat, read, close, each a trip through the thread pool) the ~40 reads of one reading cost an
 * idle node ~2.5 % of a core at one reading a second; the event loop is held for well under a millisecond instead.
 */
function readProc(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Private resident bytes of a process: resident minus shared pages, from /proc/PID/statm; 0 when it is gone.
 * Summing plain RSS over Chromium's dozen processes counts the mapped binary and shared memory once per process
 * (measured: 1.7 GB "RSS" for 0.49 GB of PSS on an idle 2-page node); the private sum came within 6 % of PSS,
 * which costs ~40 ms of kernel time per reading against ~3 ms for statm.
 */
function privateResidentBytes(pid: number): number {
  const statm = readProc(`/proc/${pid}/statm`);
  if (!statm) return 0;
  const [, resident, shared] = statm.split(' ').map(Number);
  return (resident - shared) * pageBytes;
}

/** Children forked by one thread of a process, from /proc/PID/task/TID/children. */
function childrenOfThread(pid: number, tid: number | string): number[] {
  return readProc(`/proc/${pid}/task/${tid}/children`).split(' ').filter(Boolean).map(Number);
}

function threadsOf(pid: number): string[] {
  try {
    return readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
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
      const threads = rootSet.has(pid) ? threadsOf(pid) : [pid];
      for (const tid of threads) next.push(...childrenOfThread(pid, tid));
    }
    frontier = next;
  }
  return [...tree];
}

/** Memory of the processes and their descendants: the sum of their private resident bytes. */
export async function treeMemoryBytes(roots: number[]): Promise<number> {
  return (await processTree(roots)).map(privateResidentBytes).reduce((a, b) => a + b, 0);
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
