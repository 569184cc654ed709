import { commandConfig, commandHelp } from './command-config.js';
import { createLogger } from '../log/logger.js';
import { startNode } from '../server/node.js';
import { exitFallbackMs } from '../server/stop-budget.js';

const help = commandHelp('serve', 'Runs a node: a warm pool of Chromium pages behind POST /screenshot, with /status, /livez and /metrics.');

export async function run(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const config = commandConfig('serve', argv, env, help);
  if (typeof config === 'number') return config;
  const log = createLogger(config.LOG_LEVEL, { role: 'node' });
  // Signals are ours from here on, before anything starts: a SIGTERM while the node is still starting closes
  // what started and exits 0, instead of killing the process with Chromium's helpers left behind.
  let signalled: string | null = null;
  let onSignal: (signal: string) => void = (signal) => (signalled ??= signal);
  const onTerm = () => onSignal('SIGTERM');
  const onInt = () => onSignal('SIGINT');
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  // SIGHUP would otherwise end the process; before the node exists there are no keys to reread.
  let onHup = () => log.warn('SIGHUP before the node started: the keys file is read at start anyway');
  const hup = () => onHup();
  process.on('SIGHUP', hup);
  try {
    const node = await startNode(config, log);
    onHup = () => node.reloadKeys();
    const stopped = new Promise<void>((resolve) => {
      onSignal = (signal) => {
        process.off('SIGTERM', onTerm);
        process.off('SIGINT', onInt);
        node.shutdown(signal).then(resolve, (err) => {
          log.error({ err }, 'shutdown failed');
          resolve();
        });
      };
    });
    if (signalled) onSignal(signalled);
    try {
      await node.started;
    } catch (err) {
      // The listening socket would keep the process alive: a node with no browser must exit, not hang.
      await node.shutdown('start failed');
      throw err;
    }
    await stopped;
    // Everything is closed; a straggler (a socket, a browser's pipe) must not hold the exit past the grace.
    setTimeout(() => process.exit(), exitFallbackMs).unref();
  } finally {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
    process.off('SIGHUP', hup);
  }
  return 0;
}
