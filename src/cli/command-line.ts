import { parseArgs } from 'node:util';
import { packageVersion } from '../metrics/package-version.js';

/** A mistake in how a command was called: exit 2 with the message and a pointer to --help. */
export class UsageError extends Error {}

export type FlagKind = 'string' | 'boolean';

export interface CommandLine {
  positionals: string[];
  /** The flags given, by name without `--`: a string, or a boolean flag's true/false. */
  flags: Record<string, string | boolean>;
  help: boolean;
  version: boolean;
}

const truthy = /^(true|1|yes|on)$/i;
const falsy = /^(false|0|no|off)$/i;

/**
 * argv → flags, strictly (node:util's parseArgs): an unknown flag, a missing value or a value that looks like a
 * flag is a UsageError. A boolean flag takes no separate value, so `--allow-private extra` leaves "extra" as a
 * positional (refused by the command) instead of reading it as the flag's value; `--flag=false` is still
 * understood, as the environment variable's values are. `--help`/`-h` and `--version` are every command's.
 */
export function readCommandLine(
  argv: readonly string[],
  kinds: Readonly<Record<string, FlagKind>>,
  aliases: Readonly<Record<string, string>> = {},
): CommandLine {
  const flags: Record<string, string | boolean> = {};
  const args: string[] = [];
  for (const arg of argv) {
    const inline = /^--([^=]+)=(.*)$/s.exec(arg);
    const name = inline ? (aliases[inline[1]] ?? inline[1]) : undefined;
    if (inline && name && kinds[name] === 'boolean') {
      if (!truthy.test(inline[2]) && !falsy.test(inline[2])) throw new UsageError(`--${inline[1]} is true or false, got "${inline[2]}"`);
      flags[name] = truthy.test(inline[2]);
      continue;
    }
    args.push(arg);
  }
  const options = Object.fromEntries([
    ...Object.entries(kinds).map(([name, type]) => [name, { type }] as const),
    ...Object.entries(aliases).map(([alias, name]) => [alias, { type: kinds[name] }] as const),
    ['help', { type: 'boolean', short: 'h' }] as const,
    ['version', { type: 'boolean' }] as const,
  ]);
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: true }) as typeof parsed;
  } catch (err) {
    throw usageErrorOf(err as NodeJS.ErrnoException);
  }
  const { help, version, ...values } = parsed.values;
  for (const [given, value] of Object.entries(values)) {
    if (value !== undefined) flags[aliases[given] ?? given] = value;
  }
  return { positionals: parsed.positionals, flags, help: help === true, version: version === true };
}

/** node:util's messages, said the way the rest of the CLI says them. */
function usageErrorOf(err: NodeJS.ErrnoException): UsageError {
  const flag = /'(-[^' ,]+(?:, )?-*[^' ]*)/.exec(err.message)?.[1]?.split(', ').pop();
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return new UsageError(`unknown option ${flag}; run with --help to list the options`);
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return err.message.includes('does not take an argument')
        ? new UsageError(`${flag} takes no value`)
        : new UsageError(`${flag} needs a value${err.message.includes('ambiguous') ? ` (to give one starting with "-", write ${flag}=VALUE)` : ''}`);
    default:
      return new UsageError(err.message);
  }
}

export const versionLine = () => `shotfleet ${packageVersion()}`;

/** Prints the help or the release when asked for; true when it did, and the command then exits 0. */
export function answeredHelpOrVersion(args: CommandLine, help: string): boolean {
  if (args.help) console.log(help);
  else if (args.version) console.log(versionLine());
  return args.help || args.version;
}

/** For commands that take no argument but flags. */
export function refuseArguments(args: CommandLine): void {
  if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"; run with --help`);
}
