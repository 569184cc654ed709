import { vi } from 'vitest';

/** What a command printed and its exit code. */
export interface CommandRun {
  code: number;
  stdout: string;
  stderr: string;
}

type Command = (argv: string[], env: NodeJS.ProcessEnv) => Promise<number>;

/**
 * Runs a command's run() (src/cli/*-command.ts) in this process, as src/cli/main.ts calls it, with what it wrote to
 * stdout and stderr (console or the streams): the same answers without the CPU of a process start. A thrown error
 * ends as main.ts ends it: "shotfleet: <message>" and exit code 1. Keep one run of each command as a real process
 * for the end-to-end check.
 */
export async function runCommandInProcess(run: Command, argv: string[], env: NodeJS.ProcessEnv = {}): Promise<CommandRun> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const line =
    (to: string[]) =>
    (...parts: unknown[]) =>
      void to.push(`${parts.join(' ')}\n`);
  const stream = (to: string[]) => (text: string | Uint8Array) => to.push(typeof text === 'string' ? text : Buffer.from(text).toString('utf8')) > 0;
  const spies = [
    vi.spyOn(console, 'log').mockImplementation(line(stdout)),
    vi.spyOn(console, 'error').mockImplementation(line(stderr)),
    vi.spyOn(process.stdout, 'write').mockImplementation(stream(stdout)),
    vi.spyOn(process.stderr, 'write').mockImplementation(stream(stderr)),
  ];
  try {
    const code = await run(argv, env);
    return { code, stdout: stdout.join(''), stderr: stderr.join('') };
  } catch (err) {
    return { code: 1, stdout: stdout.join(''), stderr: `${stderr.join('')}shotfleet: ${err instanceof Error ? err.message : String(err)}\n` };
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
}
