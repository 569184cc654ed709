import { type Config, ConfigError, loadConfig, type Role } from '../config/load.js';
import type { ParsedArgs } from './args.js';

/**
 * The settings of a long-running command from its flags and environment, or the exit code when there are none to
 * run with: 0 after --help, 2 after a usage or configuration error (said on stderr, naming the flag or variable).
 */
export function commandConfig(role: Role, args: ParsedArgs, env: NodeJS.ProcessEnv, help: string): Config | number {
  if (args.help) {
    console.log(help);
    return 0;
  }
  if (args.positionals.length > 0) {
    console.error(`shotfleet ${role}: unexpected argument "${args.positionals[0]}"; run with --help`);
    return 2;
  }
  try {
    return loadConfig(role, args.flags, env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`shotfleet ${role}: ${err.message}`);
    return 2;
  }
}
