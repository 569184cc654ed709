import { shoot, UsageError, type ShootOptions } from '../shoot/shoot.js';
import { versionLine } from './command-line.js';
import { parseShootOptions, shootUsage } from './shoot-options.js';

/** `shotfleet shoot FILE --endpoint URL …`: exit 0 when every line succeeded, 1 otherwise, 2 for usage errors. */
export async function run(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  let options: ShootOptions | undefined | 'version';
  try {
    options = parseShootOptions(argv, env);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`shotfleet shoot: ${err.message}\nRun "shotfleet shoot --help" for the options.\n`);
    return 2;
  }
  if (!options) {
    process.stdout.write(shootUsage());
    return 0;
  }
  if (options === 'version') {
    console.log(versionLine());
    return 0;
  }

  const interrupt = new AbortController();
  const onSignal = () => {
    if (interrupt.signal.aborted) process.exit(130);
    process.stderr.write('\ninterrupted: recording what finished (press Ctrl-C again to quit at once)\n');
    interrupt.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await shoot(options, { stdin: process.stdin, stderr: process.stderr, signal: interrupt.signal });
  } catch (err) {
    process.stderr.write(`shotfleet shoot: ${err instanceof Error ? err.message : String(err)}\n`);
    return err instanceof UsageError ? 2 : 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
