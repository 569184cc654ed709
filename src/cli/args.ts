/**
 * Splits argv into positionals and `--flag[=value]` options. A flag followed by another flag,
 * or by nothing, is a boolean `true`. `--help`/`-h` is reported separately.
 */
export interface ParsedArgs {
  positionals: string[];
  flags: Record<string, string | boolean>;
  help: boolean;
}

export function parseArgs(argv: string[], booleanFlags: ReadonlySet<string> = new Set()): ParsedArgs {
  const positionals: string[] = [];
  const flags: Record<string, string | boolean> = {};
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') {
      help = true;
    } else if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    } else if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      if (eq > 0) {
        flags[arg.slice(2, eq)] = arg.slice(eq + 1);
      } else {
        const name = arg.slice(2);
        const next = argv[i + 1];
        if (booleanFlags.has(name) || next === undefined || next.startsWith('--')) flags[name] = true;
        else flags[name] = argv[++i];
      }
    } else {
      positionals.push(arg);
    }
  }
  return { positionals, flags, help };
}
