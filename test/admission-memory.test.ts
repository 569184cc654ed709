import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { createMemoryProbe, processTree, treeMemoryBytes } from '../src/admission/memory-probe.js';

describe('memory probe (real /proc)', () => {
  it('sums a process and all its descendants, and the probe adds them to this process', async () => {
    // A parent shell with a grandchild (node holding ~64 MB), like Chromium's browser → zygote → renderers.
    const child = spawn('sh', ['-c', `${process.execPath} -e "globalThis.b=Buffer.alloc(64*1024*1024,1);setTimeout(()=>{},30000)" & wait`], {
      stdio: 'ignore',
    });
    try {
      const pid = child.pid!;
      let tree = 0;
      for (let i = 0; i < 50 && tree < 64 * 1024 * 1024; i++) {
        await new Promise((r) => setTimeout(r, 100));
        tree = await treeMemoryBytes([pid]);
      }
      expect(tree).toBeGreaterThan(64 * 1024 * 1024);
      expect(await treeMemoryBytes([2 ** 22 + 12345])).toBe(0); // no such process

      const probe = createMemoryProbe(() => [pid], 50);
      try {
        let seen = 0;
        for (let i = 0; i < 50 && seen < process.memoryUsage.rss() + 64 * 1024 * 1024; i++) {
          await new Promise((r) => setTimeout(r, 50));
          seen = probe.bytes();
        }
        expect(seen).toBeGreaterThan(process.memoryUsage.rss() + 60 * 1024 * 1024);
      } finally {
        probe.stop();
      }
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      // The grandchild is in the shell's process group only when job control is on: kill the tree by hand.
      for (const pid of (await processTree([child.pid!])).reverse()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await exited;
    }
  });
});
