#!/usr/bin/env node
/** `shotfleet <command>`: one binary for every role; `serve` is the default. */
import { processEnvironment } from '../config/environment.js';
import { versionLine } from './command-line.js';

type CommandModule = { run(argv: string[], env: NodeJS.ProcessEnv): Promise<number> };

const commands: Record<string, { summary: string; load: () => Promise<CommandModule> }> = {
  serve: { summary: 'run a node that renders screenshots (default)', load: () => import('./serve-command.js') },
  hub: { summary: 'run the registry that tracks nodes and keeps HAProxy in sync', load: () => import('./hub-command.js') },
  'haproxy-config': { summary: 'print an HAProxy config for --nodes or a --hub', load: () => import('./haproxy-config-command.js') },
  shoot: { summary: 'batch client: a file of URLs in, screenshots or S3 links out', load: () => import('./shoot-command.js') },
  sign: { summary: 'print a signed GET /screenshot link (served without the token until it expires)', load: () => import('./sign-command.js') },
  demo: { summary: 'a local fleet to try: hub, two nodes, HAProxy, local S3; Ctrl-C stops it', load: () => import('./demo-command.js') },
};

function usage(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(16)} ${c.summary}`);
  return `usage: shotfleet <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun "shotfleet <command> --help" for a command's options, "shotfleet --version" for the release.`;
}

/**
 * Loading a command's modules takes a moment (puppeteer, the AWS SDK): a SIGTERM or SIGINT meanwhile finds
 * nothing started yet, so it ends the process with 0 rather than the default signal death. Each command installs
 * its own handlers synchronously when it starts running.
 */
const beforeCommand = () => process.exit(0);
process.on('SIGTERM', beforeCommand);
process.on('SIGINT', beforeCommand);

async function main(): Promise<void> {
  const [first, ...rest] = process.argv.slice(2);
  if (first === '--help' || first === '-h' || first === 'help') {
    console.log(usage());
    return;
  }
  if (first === '--version') {
    console.log(versionLine());
    return;
  }
  const name = first === undefined || first.startsWith('-') ? 'serve' : first;
  const argv = name === first ? rest : process.argv.slice(2);
  const command = commands[name];
  if (!command) {
    console.error(`shotfleet: unknown command "${name}"\n\n${usage()}`);
    process.exitCode = 2;
    return;
  }
  const mod = await command.load();
  process.off('SIGTERM', beforeCommand);
  process.off('SIGINT', beforeCommand);
  process.exitCode = await mod.run(argv, processEnvironment());
}

main().catch((err) => {
  console.error(`shotfleet: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
