import { ConfigError } from '../config/load.js';
import { commandConfig, commandHelp } from './command-config.js';
import { createLogger } from '../log/logger.js';
import { type RunningHub, startHub } from '../fleet/hub.js';

const help = commandHelp(
  'hub',
  `Runs the registry: nodes register with it (POST /nodes), it pings their /status, drops the ones that stop
answering, serves an HAProxy config for the fleet (GET /haproxy.cfg) and, with --haproxy-socket, keeps a
running HAProxy in step through its Runtime API (a comma list: every HAProxy listed). Its routes need the hub
token (--hub-token, default: --token); on an address other than loopback it refuses to start without one.`,
);

export async function run(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const config = commandConfig('hub', argv, env, help);
  if (typeof config === 'number') return config;
  const log = createLogger(config.LOG_LEVEL, { role: 'hub' });
  let hub: RunningHub;
  try {
    hub = await startHub(config, log);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`shotfleet hub: ${err.message}`);
    return 2;
  }
  log.info({ url: hub.url }, 'listening');

  await new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      log.info({ signal }, 'stopping');
      hub.stop().then(resolve, resolve);
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  });
  log.info('stopped');
  return 0;
}
