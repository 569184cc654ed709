import { type Config, ConfigError, loadConfig, type Role } from '../config/load.js';
import { settingNames, settingsSchema } from '../config/schema.js';
import { envName, flagName, rolesOf, settingDocs } from '../config/setting-docs.js';
import { settingsHelp } from '../config/setting-help.js';
import { answeredHelpOrVersion, refuseArguments, type FlagKind, readCommandLine, UsageError } from './command-line.js';

/** The flags of a long-running command: its role's settings, a boolean flag for each boolean setting. */
export function settingFlags(role: Role): Record<string, FlagKind> {
  const defaults = settingsSchema.parse({}) as Record<string, unknown>;
  return Object.fromEntries(
    settingNames
      .filter((key) => rolesOf(key).includes(role))
      .map((key) => [flagName(key).slice(2), typeof defaults[key] === 'boolean' ? 'boolean' : 'string'] as const),
  );
}

/** `--help` of serve and hub: what the command does, then its own settings with their meaning and default. */
export const commandHelp = (role: Role, about: string) =>
  `usage: shotfleet ${role} [options]\n\n${about}\n\nEvery option is also an environment variable (in brackets); a flag wins over its variable.\n\n${settingsHelp(role)}\n`;

/**
 * The settings of a long-running command from its flags and environment, or the exit code when there are none to
 * run with: 0 after --help or --version, 2 after a usage or configuration error (said on stderr, naming the flag or
 * variable).
 */
export function commandConfig(role: Role, argv: readonly string[], env: NodeJS.ProcessEnv, help: string): Config | number {
  try {
    const own = settingFlags(role);
    for (const arg of argv) {
      const name = /^--([^=]+)/.exec(arg)?.[1];
      const key = settingNames.find((k) => flagName(k) === `--${name}`);
      if (key && !(name! in own))
        throw new UsageError(`--${name} is a setting of shotfleet ${rolesOf(key).join(' and ')}, not of ${role}; run with --help to list ${role}'s`);
    }
    const args = readCommandLine(argv, own);
    if (answeredHelpOrVersion(args, help)) return 0;
    refuseArguments(args);
    for (const key of settingNames) {
      if (settingDocs[key].secret && args.flags[flagName(key).slice(2)] !== undefined) {
        console.error(
          `shotfleet ${role}: warning: ${flagName(key)} shows the secret to every user of this machine (ps); set ${envName(key)}${settingNames.includes(`${key}_FILE` as never) ? ` or ${envName(`${key}_FILE`)}` : ''} instead`,
        );
      }
    }
    return loadConfig(role, args.flags, env);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`shotfleet ${role}: ${err.message}`);
      return 2;
    }
    if (!(err instanceof ConfigError)) throw err;
    console.error(`shotfleet ${role}: ${err.message}`);
    return 2;
  }
}
