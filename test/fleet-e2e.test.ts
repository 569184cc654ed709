import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntimeApi } from '../src/haproxy/runtime-api.js';
import { createLogger } from '../src/log/logger.js';
import { startMembership, type Membership } from '../src/server/membership.js';
import { chromiumPids, startShotfleet, waitForLog, type RunningProcess } from './helpers/processes.js';
import { freePort, startFakeFleetNode, startHaproxy, waitFor, type FakeFleetNode, type RunningHaproxy } from './helpers/haproxy.js';

/**
 * The end-to-end fleet: a hub, real nodes (1 page each) and a real HAProxy started from the hub's
 * /haproxy.cfg and kept in step through its Runtime API. Intervals are shortened by config. The node that joins the
 * running fleet is a stand-in registered by the node's own membership code: what is under test there is the hub and
 * HAProxy taking it in (a real node's start and registration are the two started first).
 */
describe('fleet end to end (hub, real nodes, HAProxy 2.6)', () => {
  const token = 'e2e-fleet-token';
  const auth = { Authorization: `Bearer ${token}` };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shotfleet-e2e-fleet-'));
  const socket = path.join(dir, 'admin.sock');
  const api = createRuntimeApi(socket);
  const nodes = new Map<string, RunningProcess>();
  let hub: RunningProcess;
  let joining: { node: FakeFleetNode; membership: Membership } | undefined;
  let haproxy: RunningHaproxy;
  let front: string;
  let pages: http.Server;
  let pageUrl: string;
  /** Cookies the test page received, per visit: proves a session's browser context kept them. */
  const cookiesSeen: string[] = [];
  /** Answers the held /slow page (and so frees the render holding its node's only page). */
  let releaseSlow = () => {};

  // A ping times out after its interval: on a loaded machine a busy node's /status has taken longer than 250 ms three
  // times in a row, and the hub dropped a live node (moving its sessions). Four missed 1 s pings (~4–5 s of silence)
  // still drop a dead node well within the kill -9 test's wait.
  const fleetEnv = {
    SHOTFLEET_TOKEN: token,
    SHOTFLEET_PING_INTERVAL_MS: '1000',
    SHOTFLEET_PING_FAILURES: '4',
    SHOTFLEET_HEARTBEAT_INTERVAL_MS: '1000',
  };

  async function startNode(id: string, extra: Record<string, string> = {}): Promise<RunningProcess> {
    // Within the helper's own bound (120 s): two nodes start at once, and a loaded 2-core machine has taken over a minute.
    const node = await startShotfleet('serve', {
      ...fleetEnv,
      SHOTFLEET_NODE_ID: id,
      SHOTFLEET_HUB_URL: hub.url,
      SHOTFLEET_PAGES: '1',
      SHOTFLEET_ALLOW_HOSTS: '127.0.0.1',
      SHOTFLEET_SHUTDOWN_GRACE_MS: '3000',
      ...extra,
    });
    nodes.set(id, node);
    return node;
  }

  const hubNodes = async () => (await (await fetch(`${hub.url}/nodes`, { headers: auth })).json()) as { id: string; state: string }[];
  const upAtHub = (id: string) => waitFor(`${id} up at the hub`, async () => (await hubNodes()).some((n) => n.id === id && n.state === 'up'), 60_000);
  const shoot = async (session?: string) => {
    const res = await fetch(`${front}/screenshot?url=${encodeURIComponent(pageUrl)}&format=jpeg&width=200&height=150`, {
      headers: { ...auth, ...(session ? { Cookie: `shot_session=${session}` } : {}) },
    });
    await res.arrayBuffer();
    return { status: res.status, node: res.headers.get('x-shotfleet-node'), session: res.headers.get('x-shotfleet-session') };
  };
  const portOf = (p: { url: string }) => Number(new URL(p.url).port);
  const inRotation = async (p: { url: string }) => (await api.servers('shotfleet_nodes')).some((s) => s.port === portOf(p) && !s.maintenance);

  beforeAll(async () => {
    pages = http.createServer((req, res) => {
      if (req.url === '/slow') {
        // Holds a render (and so the node's only page) until the test is done with it (at most 30 s).
        const answer = () => {
          clearTimeout(timer);
          if (!res.headersSent) res.writeHead(200, { 'Content-Type': 'text/html' }).end('<h1>slow</h1>');
        };
        const timer = setTimeout(answer, 30_000);
        releaseSlow = answer;
        res.on('close', () => clearTimeout(timer));
        return;
      }
      cookiesSeen.push(req.headers.cookie ?? '');
      const visits = Number(/visits=(\d+)/.exec(req.headers.cookie ?? '')?.[1] ?? 0) + 1;
      res.writeHead(200, { 'Content-Type': 'text/html', 'Set-Cookie': `visits=${visits}; Path=/` });
      res.end(`<html><body style="background:#eef"><h1>visit ${visits}</h1></body></html>`);
    });
    await new Promise<void>((resolve) => pages.listen(0, '127.0.0.1', resolve));
    pageUrl = `http://127.0.0.1:${(pages.address() as net.AddressInfo).port}/page`;

    hub = await startShotfleet('hub', { ...fleetEnv, SHOTFLEET_HAPROXY_SOCKET: socket });
    // e2e-a has no queue: with its page busy it sheds at once (503 queue_full), which HAProxy must retry.
    await Promise.all([startNode('e2e-a', { SHOTFLEET_QUEUE_MAX: '0' }), startNode('e2e-b')]);
    await Promise.all([upAtHub('e2e-a'), upAtHub('e2e-b')]);

    const frontPort = await freePort();
    front = `http://127.0.0.1:${frontPort}`;
    const cfg = await (await fetch(`${hub.url}/haproxy.cfg?bind=127.0.0.1:${frontPort}&stats=`, { headers: auth })).text();
    haproxy = await startHaproxy(cfg, frontPort, dir);
  }, 180_000);

  afterAll(async () => {
    await joining?.membership.stop();
    await joining?.node.close();
    const pids = [...nodes.values()].map((n) => n.proc.pid!);
    await Promise.all([...nodes.values()].map((n) => n.stop()));
    // A node killed with -9 leaves its Chromium behind: end exactly those (marked by the node's pid).
    for (const pid of pids) for (const chrome of await chromiumPids(`shotfleet-chrome-${pid}-`)) process.kill(chrome, 'SIGKILL');
    await hub?.stop();
    await haproxy?.stop();
    await new Promise((resolve) => pages?.close(resolve));
    fs.rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it('serves session-less requests through HAProxy from every node', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 12 && seen.size < 2; i++) {
      const r = await shoot();
      expect(r.status).toBe(200);
      seen.add(r.node!);
    }
    expect(seen).toEqual(new Set(['e2e-a', 'e2e-b']));
  });

  it('keeps each session on its node, with the cookies its page set', async () => {
    let sticky = 0;
    let total = 0;
    const homes = new Set<string>();
    for (let s = 0; s < 3; s++) {
      const session = `e2e-session-${s}`;
      const first = await shoot(session);
      expect(first).toMatchObject({ status: 200, session: 'new' });
      homes.add(first.node!);
      for (let i = 0; i < 2; i++) {
        const again = await shoot(session);
        expect(again).toMatchObject({ status: 200, session: 'reused' });
        total++;
        if (again.node === first.node) sticky++;
      }
    }
    console.log(`sticky requests on their node: ${sticky}/${total} (${((100 * sticky) / total).toFixed(1)} %); sessions spread over ${[...homes].join(', ')}`);
    expect(sticky).toBe(total);
    // The page set visits=N on each visit; within a session the browser sent it back each time (visit 3 sends visits=2).
    expect(cookiesSeen.some((c) => /visits=2/.test(c))).toBe(true);
  });

  it("retries a saturated node's session-less request on another node", async () => {
    // e2e-a gets one slow render straight away (not through HAProxy) and, with no queue, sheds the rest.
    const a = nodes.get('e2e-a')!;
    const shedBefore = await shedTotal(a);
    const slowPage = pageUrl.replace('/page', '/slow');
    const slow = fetch(`${a.url}/screenshot?url=${encodeURIComponent(slowPage)}&format=jpeg&width=200&height=150`, { headers: auth });
    await waitFor('e2e-a busy', async () => {
      const s = (await (await fetch(`${a.url}/status`)).json()) as { pages: { inUse: number } };
      return s.pages.inUse >= 1;
    });
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await shoot());
    const stillBusy = ((await (await fetch(`${a.url}/status`)).json()) as { pages: { inUse: number } }).pages.inUse >= 1;
    expect(stillBusy, 'the slow render outlasted the probe requests').toBe(true);
    for (const r of results) expect(r).toMatchObject({ status: 200, node: 'e2e-b' });
    // e2e-a was offered some of them and shed them: the 200s came from HAProxy's retry.
    expect(await shedTotal(a)).toBeGreaterThan(shedBefore);
    releaseSlow();
    expect((await slow).status).toBe(200);
  }, 60_000);

  it('puts a new node into rotation without a reload', async () => {
    const c = await startFakeFleetNode('e2e-c');
    joining = {
      node: c,
      membership: startMembership({
        hubUrl: hub.url,
        token,
        nodeId: c.id,
        advertiseUrl: c.url,
        capacity: 1,
        heartbeatIntervalMs: 1000,
        log: createLogger('silent'),
      }),
    };
    await waitFor('e2e-c in rotation', () => inRotation(c), 60_000);
    await waitFor('a request on e2e-c', async () => (await shoot()).node === 'e2e-c', 30_000, 50);
    expect(haproxy.proc.exitCode).toBeNull();
  }, 120_000);

  it('drops a node killed with -9 after the failed pings, and HAProxy stops sending to it', async () => {
    const b = nodes.get('e2e-b')!;
    b.proc.kill('SIGKILL');
    await b.exited;
    await waitFor('e2e-b gone from the hub', async () => !(await hubNodes()).some((n) => n.id === 'e2e-b'), 30_000);
    await waitFor('e2e-b out of HAProxy', async () => !(await inRotation(b)), 10_000);
    await waitForLog(hub, 'removal', (l) => l.node === 'e2e-b' && /failed pings/.test(String(l.msg)));
    for (let i = 0; i < 4; i++) {
      const r = await shoot();
      expect(r.status).toBe(200);
      expect(r.node).not.toBe('e2e-b');
    }
  }, 60_000);

  it('relearns every live node within a heartbeat or so after a hub restart', async () => {
    expect(await hub.stop()).toBe(0);
    hub = await startShotfleet('hub', { ...fleetEnv, SHOTFLEET_HAPROXY_SOCKET: socket, SHOTFLEET_PORT: String(new URL(hub.url).port) });
    await waitFor(
      'fleet relearned',
      async () => {
        const ids = (await hubNodes()).map((n) => n.id).sort();
        return ids.join() === 'e2e-a,e2e-c';
      },
      10_000,
      50,
    );
    for (let i = 0; i < 2; i++) expect((await shoot()).status).toBe(200);
  }, 60_000);
});

async function shedTotal(node: RunningProcess): Promise<number> {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  return [...text.matchAll(/^shotfleet_shed_total\{[^}]*\} (\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
}
