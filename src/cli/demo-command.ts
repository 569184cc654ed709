import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { answeredHelpOrVersion, refuseArguments, readCommandLine, UsageError } from './command-line.js';

const help = `usage: shotfleet demo [options]

A local fleet to try shotfleet: a hub, two nodes, HAProxy started from the hub's GET /haproxy.cfg (and kept in
sync by the hub through its Runtime API), and a local S3 (s3rver) so "store": true works. Everything listens on
127.0.0.1; Ctrl-C stops it all. Needs HAProxy (apt-get install -y haproxy) and the dev dependencies (npm ci).

  --port P          HAProxy, where clients go (default 8080)
  --stats-port P    HAProxy's stats page (default 8404)
  --hub-port P      the hub (default 4000)
  --node-ports P,P  the two nodes (default 3001,3002)
  --s3-port P       s3rver (default 4568)`;

interface Ports {
  haproxy: number;
  stats: number;
  hub: number;
  nodes: number[];
  s3: number;
}

function readPorts(flags: Record<string, string | boolean>): Ports {
  const port = (name: string, fallback: number) => {
    const raw = flags[name];
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new UsageError(`--${name} must be a port number (1–65535)`);
    return n;
  };
  const nodes = typeof flags['node-ports'] === 'string' ? flags['node-ports'].split(',').map(Number) : [3001, 3002];
  if (nodes.length < 1 || nodes.some((n) => !Number.isInteger(n) || n < 1 || n > 65535))
    throw new UsageError('--node-ports must be a comma list of port numbers');
  return { haproxy: port('port', 8080), stats: port('stats-port', 8404), hub: port('hub-port', 4000), nodes, s3: port('s3-port', 4568) };
}

interface Child {
  name: string;
  proc: ChildProcess;
  exited: Promise<number | null>;
  logFile: string;
}

type S3rverInstance = { run(): Promise<unknown>; close(): Promise<void> };

/** s3rver is a development dependency: the demo runs from a checkout (npm ci), not from a production install. */
function loadS3rver(): new (opts: Record<string, unknown>) => S3rverInstance {
  try {
    return createRequire(import.meta.url)('s3rver');
  } catch {
    throw new Error('s3rver is not installed: run the demo from a checkout after "npm ci" (it is a development dependency)');
  }
}

export async function run(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  let ports: Ports;
  try {
    const args = readCommandLine(argv, { port: 'string', 'stats-port': 'string', 'hub-port': 'string', 'node-ports': 'string', 's3-port': 'string' });
    if (answeredHelpOrVersion(args, help)) return 0;
    refuseArguments(args);
    ports = readPorts(args.flags);
  } catch (err) {
    console.error(`shotfleet demo: ${(err as Error).message}`);
    return 2;
  }
  return runDemo(ports, env);
}

async function runDemo(ports: Ports, env: NodeJS.ProcessEnv): Promise<number> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'shotfleet-demo-'));
  const children: Child[] = [];
  let s3: S3rverInstance | undefined;
  let stopping = false;
  let stopped: Promise<void> | undefined;

  // The same CLI, started the way this process was (node, or node --import tsx from a checkout).
  const cli = [...process.execArgv, process.argv[1]];
  const baseEnv = {
    PATH: env.PATH ?? '/usr/bin:/bin',
    HOME: env.HOME ?? work,
    SHOTFLEET_HOST: '127.0.0.1',
    SHOTFLEET_LOG_LEVEL: 'info',
  };

  function start(name: string, command: string, args: string[], childEnv: Record<string, string>): Child {
    const logFile = path.join(work, `${name}.log`);
    const log = fs.openSync(logFile, 'a');
    // Its own process group: Ctrl-C reaches the demo alone, which stops the fleet in order.
    const proc = spawn(command, args, { env: childEnv, stdio: ['ignore', log, log], detached: true });
    fs.closeSync(log);
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    const child = { name, proc, exited, logFile };
    children.push(child);
    void exited.then((code) => {
      if (!stopping) {
        console.error(`shotfleet demo: ${name} exited (${code}); its log:\n${tail(logFile)}`);
        void stopAll().then(() => process.exit(1));
      }
    });
    return child;
  }

  /** Stops HAProxy first (no new traffic), then the nodes (they drain, deregister and close their browsers), the hub, S3. */
  function stopAll(): Promise<void> {
    stopping = true;
    stopped ??= (async () => {
      const order = ['haproxy', ...ports.nodes.map((_, i) => `node-${i + 1}`), 'hub'];
      for (const name of order) {
        const child = children.find((c) => c.name === name);
        if (!child || child.proc.exitCode !== null || child.proc.signalCode !== null) continue;
        child.proc.kill('SIGTERM');
        const killer = setTimeout(() => child.proc.kill('SIGKILL'), 40_000);
        await child.exited;
        clearTimeout(killer);
      }
      await s3?.close().catch(() => undefined);
      fs.rmSync(work, { recursive: true, force: true });
    })();
    return stopped;
  }

  const onSignal = () => {
    if (stopping) return;
    console.log('\nstopping the demo fleet…');
    void stopAll().then(() => {
      console.log('stopped: HAProxy, nodes, hub and S3');
      process.exit(0);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // However the demo ends, nothing it started outlives it (the nodes take their browsers with them).
  process.once('exit', () => {
    for (const child of children) if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGKILL');
  });

  try {
    const S3rver = loadS3rver();
    s3 = new S3rver({ address: '127.0.0.1', port: ports.s3, silent: true, directory: path.join(work, 's3'), configureBuckets: [{ name: 'shots' }] });
    await s3.run();

    const hubUrl = `http://127.0.0.1:${ports.hub}`;
    const socket = path.join(work, 'haproxy-admin.sock');
    start('hub', process.execPath, [...cli, 'hub'], { ...baseEnv, SHOTFLEET_PORT: String(ports.hub), SHOTFLEET_HAPROXY_SOCKET: socket });
    await until(`the hub on ${hubUrl}`, async () => (await fetch(`${hubUrl}/livez`)).ok);

    const s3Env = {
      SHOTFLEET_S3_BUCKET: 'shots',
      SHOTFLEET_S3_ENDPOINT: `http://127.0.0.1:${ports.s3}`,
      SHOTFLEET_S3_REGION: 'us-east-1',
      SHOTFLEET_S3_FORCE_PATH_STYLE: 'true',
      // s3rver accepts any credentials; explicit ones keep the AWS SDK from probing cloud metadata.
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_EC2_METADATA_DISABLED: 'true',
    };
    ports.nodes.forEach((port, i) => {
      const url = `http://127.0.0.1:${port}`;
      start(`node-${i + 1}`, process.execPath, [...cli, 'serve'], {
        ...baseEnv,
        ...s3Env,
        SHOTFLEET_PORT: String(port),
        SHOTFLEET_NODE_ID: `node-${i + 1}`,
        SHOTFLEET_HUB_URL: hubUrl,
        SHOTFLEET_ADVERTISE_URL: url,
      });
    });
    await until(
      'both nodes up at the hub',
      async () => {
        const nodes = (await (await fetch(`${hubUrl}/nodes`)).json()) as { state: string }[];
        return nodes.filter((n) => n.state === 'up').length === ports.nodes.length;
      },
      120_000,
    );

    const query = new URLSearchParams({ bind: `127.0.0.1:${ports.haproxy}`, stats: `127.0.0.1:${ports.stats}` });
    const config = await (await fetch(`${hubUrl}/haproxy.cfg?${query}`)).text();
    const configFile = path.join(work, 'haproxy.cfg');
    fs.writeFileSync(configFile, config);
    start('haproxy', 'haproxy', ['-W', '-db', '-f', configFile], { PATH: baseEnv.PATH });
    const front = `http://127.0.0.1:${ports.haproxy}`;
    await until(`HAProxy on ${front}`, async () => (await fetch(`${front}/status`)).ok);

    console.log(
      [
        '',
        'shotfleet demo fleet is up (Ctrl-C stops everything):',
        `  HAProxy (send requests here)  ${front}`,
        `  try it in a browser           ${front}/docs`,
        `  API description               ${front}/openapi.json`,
        `  hub: registered nodes         ${hubUrl}/nodes`,
        `  HAProxy stats                 http://127.0.0.1:${ports.stats}/`,
        `  S3 (s3rver, bucket "shots")   http://127.0.0.1:${ports.s3}`,
        '',
        `  curl -s -X POST ${front}/screenshot -H 'Content-Type: application/json' -d '{"url":"https://example.com"}' -o shot.png`,
        `  curl -s -X POST ${front}/screenshot -H 'Content-Type: application/json' -d '{"url":"https://example.com","store":true}'`,
        '',
        `logs: ${work}/*.log`,
        JSON.stringify({ msg: 'demo ready', pids: Object.fromEntries(children.map((c) => [c.name, c.proc.pid])) }),
      ].join('\n'),
    );
    await new Promise<never>(() => undefined); // until a signal
    return 0;
  } catch (err) {
    console.error(`shotfleet demo: ${(err as Error).message}`);
    for (const child of children) console.error(`--- ${child.name}:\n${tail(child.logFile)}`);
    await stopAll();
    return 1;
  }
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function tail(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    return '(no log)';
  }
}
