import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestSite, type TestSite } from './helpers/pages.js';
import { cliEntry, freePort, repoRoot } from './helpers/processes.js';
import { nodeChromiumPids, shoot, type Answer } from './helpers/node-client.js';
import { waitFor } from './helpers/wait.js';

/**
 * A node started the way an operator's tools start it: the process is spawned, and traffic (or a SIGTERM) comes
 * as soon as anything answers — no log line is waited for. HAProxy counts a node ready at its first /status 200.
 */
interface Launched {
  proc: ChildProcess;
  url: string;
  agentPort: number;
  logs: string[];
  exited: Promise<number | null>;
}

const running: ChildProcess[] = [];

/** Pixels do not matter here: small renders are cheap. */
const small = { width: 200, height: 150 };

async function launch(env: Record<string, string> = {}): Promise<Launched> {
  const port = await freePort();
  const agentPort = await freePort();
  const proc = spawn(process.execPath, [cliEntry, 'serve'], {
    cwd: repoRoot,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      AWS_EC2_METADATA_DISABLED: 'true',
      SHOTFLEET_HOST: '127.0.0.1',
      SHOTFLEET_PORT: String(port),
      SHOTFLEET_AGENT_PORT: String(agentPort),
      SHOTFLEET_PAGES: '2',
      SHOTFLEET_ALLOW_HOSTS: '127.0.0.1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.push(proc);
  const logs: string[] = [];
  proc.stdout!.on('data', (d) => logs.push(String(d)));
  proc.stderr!.on('data', (d) => logs.push(String(d)));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return { proc, url: `http://127.0.0.1:${port}`, agentPort, logs, exited };
}

async function statusCode(url: string): Promise<number> {
  return fetch(`${url}/status`, { signal: AbortSignal.timeout(5000) }).then(
    async (res) => {
      await res.arrayBuffer();
      return res.status;
    },
    () => 0,
  );
}

/** What the HAProxy agent listener answers, or the connection error's code. */
function agentAnswer(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    socket.on('data', (d) => (data += d));
    socket.on('end', () => resolve(data.trim()));
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
}

/** A stand-in hub that records registrations (the real hub has tests of its own). */
async function startRecordingHub() {
  const registered: string[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/nodes') registered.push(body);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: 'n', pingIntervalMs: 4000, heartbeatIntervalMs: 10000 }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    registered,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function noChromiumLeft(pid: number): Promise<void> {
  await waitFor('no Chromium left', async () => (await nodeChromiumPids(pid)).length === 0, 10_000, 100);
}

/** Waits (polling every 10 ms) until the node's port answers at all: /livez says alive from the first moment. */
async function portAnswers(url: string): Promise<void> {
  const livez = () =>
    fetch(`${url}/livez`).then(
      (r) => r.status,
      () => 0,
    );
  await waitFor('the port to answer', async () => (await livez()) === 200, 60_000, 10);
}

describe('a node started as an operator starts it: ready means started, SIGTERM always drains', () => {
  let site: TestSite;

  beforeAll(async () => {
    site = await startTestSite({
      '/page': '<!doctype html><body style="margin:0;background:rgb(0,90,200)"><p>hello</p></body>',
      // Holds a render long enough for a SIGTERM to find it in flight.
      '/slow': '<!doctype html><body style="background:rgb(0,150,0)"><p>slow</p></body>',
    });
  });

  afterAll(async () => {
    for (const proc of running) if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await site?.close();
  });

  it('renders sent from the moment the port answers never keep the node from starting: /status turns 200 with pages warm, the agent up and the hub told', async () => {
    const hub = await startRecordingHub();
    const node = await launch({ SHOTFLEET_HUB_URL: hub.url, SHOTFLEET_PAGES: '1', SHOTFLEET_QUEUE_MAX: '50' });
    try {
      await portAnswers(node.url);
      // Still starting: /status says so, and HAProxy's agent check hears "drain", not a refused connection.
      const early = await fetch(`${node.url}/status`);
      if (early.status !== 200) {
        expect(early.status).toBe(503);
        expect(await early.json()).toMatchObject({ status: 'starting' });
      }

      // Four clients send renders back to back — more than the node has pages — from now until the end.
      let sending = true;
      const answers: Answer[] = [];
      const clients = [0, 1, 2, 3].map(async (c) => {
        for (let i = 0; sending; i++) {
          answers.push(await shoot(node.url, { url: `${site.url}/page?c=${c}&i=${i}`, format: 'jpeg', viewport: small }, { timeoutMs: 60_000 }));
        }
      });

      await waitFor('/status 200 under traffic', async () => (await statusCode(node.url)) === 200, 60_000, 20);
      // The first 200 means fully started: every part is already up, not on its way.
      const [agent, pages] = await Promise.all([
        agentAnswer(node.agentPort),
        fetch(`${node.url}/status`).then((r) => r.json() as Promise<{ pages: { max: number } }>),
      ]);
      expect(agent).toMatch(/^ready up \d+%$/);
      expect(pages.pages.max).toBe(1);
      await waitFor('the hub to hear from the node', () => hub.registered.length > 0, 5000, 20);
      // The log line is written before /status can say 200; the pipe that carries it may still be on its way.
      await waitFor('the listening line', () => node.logs.join('').includes('"msg":"listening"'), 5000, 20);

      // The clients keep sending until the started node has served one of them.
      await waitFor('a render served', () => answers.some((a) => a.status === 200), 60_000, 20);
      sending = false;
      await Promise.all(clients);
      expect(answers.length).toBeGreaterThan(0);
      console.log('ANSWERS', answers.length, answers.filter((a) => a.status === 200).length);
      // Every render got an HTTP answer: an image, or a 503 with Retry-After while the node was starting.
      for (const answer of answers) {
        if (answer.status !== 200) {
          expect(answer.status).toBe(503);
          expect(answer.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
        }
      }
      expect(answers.some((a) => a.status === 200)).toBe(true);

      node.proc.kill('SIGTERM');
      expect(await node.exited).toBe(0);
      await noChromiumLeft(node.proc.pid!);
    } finally {
      await hub.close();
    }
  }, 180_000);

  it('SIGTERM while the node is still starting: exit 0, no Chromium left', async () => {
    const node = await launch({ SHOTFLEET_PAGES: '1' });
    await portAnswers(node.url);
    expect(await statusCode(node.url)).toBe(503);
    node.proc.kill('SIGTERM');
    expect(await node.exited).toBe(0);
    await waitFor('the stopped line', () => node.logs.join('').includes('"msg":"stopped"'), 5000, 20);
    await noChromiumLeft(node.proc.pid!);
  }, 120_000);

  it('SIGTERM right after the first 200, with renders in flight: they finish, exit 0, no Chromium left', async () => {
    const node = await launch();
    await waitFor('/status 200', async () => (await statusCode(node.url)) === 200, 60_000, 10);
    const inFlight = [0, 1].map((i) => shoot(node.url, { url: `${site.url}/slow?i=${i}`, delay: 1500, viewport: small }));
    await waitFor(
      'both renders to hold a page',
      async () => {
        const res = await fetch(`${node.url}/status`);
        return ((await res.json()) as { pages: { inUse: number } }).pages.inUse === 2;
      },
      20_000,
      10,
    );
    node.proc.kill('SIGTERM');
    for (const answer of await Promise.all(inFlight)) expect(answer.status).toBe(200);
    expect(await node.exited).toBe(0);
    await noChromiumLeft(node.proc.pid!);
  }, 120_000);
});
