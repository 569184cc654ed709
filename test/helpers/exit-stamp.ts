import { randomUUID } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** Writes Date.now() to $TEST_EXIT_STAMP_FILE from the process's 'exit' event: the last JavaScript a process runs. */
const stampOnExit = `import { writeFileSync } from 'node:fs';
process.on('exit', () => writeFileSync(process.env.TEST_EXIT_STAMP_FILE, String(Date.now())));`;

export interface ExitStamp {
  /** Env for startShotfleet: the process loads the stamp before anything of its own (NODE_OPTIONS --import). */
  env: Record<string, string>;
  /** When the process exited (epoch ms, its own clock: the machine's), once it has. */
  read(): Promise<number>;
}

/**
 * When a child process exited, as the process itself saw it. A test that times a stop from its own signal to the
 * 'exit' event it observes also counts its own lag in noticing the exit (a loaded machine's scheduling, its event
 * loop, the child's reaping), which is not the process's; the stamp is written by the process as it exits.
 */
export function exitStamp(): ExitStamp {
  const file = path.join(os.tmpdir(), `shotfleet-exit-stamp-${randomUUID()}`);
  return {
    env: {
      NODE_OPTIONS: `--import=data:text/javascript,${encodeURIComponent(stampOnExit)}`,
      TEST_EXIT_STAMP_FILE: file,
    },
    async read() {
      const text = await readFile(file, 'utf8');
      await rm(file, { force: true });
      return Number(text);
    },
  };
}
