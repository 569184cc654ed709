import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startMembership, type Membership } from '../src/server/membership.js';
import { createLogger } from '../src/log/logger.js';
import { createRuntimeApi, parseServersState, type ServerState } from '../src/haproxy/runtime-api.js';
import { planSlotCommands } from '../src/haproxy/runtime-sync.js';
import { startShotfleet, waitForLog, type RunningProcess } from './helpers/processes.js';
import { checkHaproxyConfig, freePort, startFakeFleetNode, startHaproxy, waitFor, type FakeFleetNode, type RunningHaproxy } from './helpers/haproxy.js';

const server = (backend: string, slot: number, over: Partial<ServerState> = {}): ServerState => ({
  backend,
  name: `s${slot}`,
  address: '127.0.0.1',
  port: 1,
  maintenance: true,
  drained: false,
  running: false,
  ...over,
});
const both = (slot: number, over: Partial<ServerState> = {}) => ['shotfleet_sessions', 'shotfleet_nodes'].map((b) => server(b, slot, over));

describe('planSlotCommands', () => {
  it('fills an empty slot: address first, then maxconn (session-less only), then ready', () => {
    const cmds = planSlotCommands([{ slot: 2, address: '10.0.0.2', port: 3000, maxconn: 4, state: 'ready' }], [...both(1), ...both(2)], 2);
    expect(cmds).toEqual([
      'set server shotfleet_sessions/s2 addr 10.0.0.2 port 3000',
      'set server shotfleet_sessions/s2 state ready',
      'set server shotfleet_nodes/s2 addr 10.0.0.2 port 3000',
      'set maxconn server shotfleet_nodes/s2 4',
      'set server shotfleet_nodes/s2 state ready',
    ]);
  });

  it('empties slots of gone nodes, drains draining ones, leaves kept slots and settled ones alone', () => {
    const live = { address: '10.0.0.1', port: 3000, maintenance: false, running: true };
    const actual = [...both(1, live), ...both(2, live), ...both(3, live), ...both(4, live)];
    const cmds = planSlotCommands(
      [
        { slot: 1, address: '10.0.0.1', port: 3000, maxconn: 2, state: 'ready' },
        { slot: 3, address: '10.0.0.1', port: 3000, maxconn: 2, state: 'drain' },
      ],
      actual,
      4,
      new Set([4]),
    );
    expect(cmds).toEqual([
      'set server shotfleet_sessions/s2 state maint',
      'set server shotfleet_sessions/s3 state drain',
      'set server shotfleet_nodes/s2 state maint',
      'set server shotfleet_nodes/s3 state drain',
    ]);
  });

  it('reads show servers state by its header', () => {
    const text = [
      '1',
      '# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port',
      '4 b 1 s1 127.0.0.1 2 4 100 100 0 1 0 1 6 0 0 1 - 18001 - 0 0 - - 0',
      '4 b 2 s2 127.0.0.1 0 5 100 100 1 1 0 0 14 0 0 1 - 1 - 0 0 - - 0',
      '4 b 3 s3 10.1.1.1 2 8 100 100 1 1 0 0 14 0 0 1 - 80 - 0 0 - - 0',
    ].join('\n');
    expect(parseServersState(text)).toEqual([
      { backend: 'b', name: 's1', address: '127.0.0.1', port: 18001, maintenance: false, drained: false, running: true },
      { backend: 'b', name: 's2', address: '127.0.0.1', port: 1, maintenance: true, drained: false, running: false },
      { backend: 'b', name: 's3', address: '10.1.1.1', port: 80, maintenance: false, drained: true, running: true },
    ]);
  });
});

describe('hub keeps a running HAProxy in step (real HAProxy 2.6, stand-in nodes)', () => {
  const token = 'fleet-haproxy-token';
  const log = createLogger('silent');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shotfleet-fleet-haproxy-'));
  const socket = path.join(dir, 'admin.sock');
  const nodes = new Map<string, FakeFleetNode>();
  const memberships = new Map<string, Membership>();
  let hubPort: number;
  let hub: RunningProcess;
  let haproxy: RunningHaproxy;
  let frontPort: number;
  const hubEnv = () => ({
    SHOTFLEET_PORT: String(hubPort),
    SHOTFLEET_TOKEN: token,
    SHOTFLEET_PING_INTERVAL_MS: '200',
    SHOTFLEET_PING_FAILURES: '3',
    SHOTFLEET_HEARTBEAT_INTERVAL_MS: '500',
    SHOTFLEET_HAPROXY_SOCKET: socket,
  });

  /** A stand-in node that keeps itself registered, or (heartbeats: false) registers once, like a node about to be killed. */
  async function join(id: string, heartbeats = true): Promise<FakeFleetNode> {
    const node = await startFakeFleetNode(id);
    nodes.set(id, node);
    if (heartbeats) {
      memberships.set(id, startMembership({ hubUrl: hub.url, token, nodeId: id, advertiseUrl: node.url, capacity: 2, heartbeatIntervalMs: 500, log }));
    } else {
      const res = await fetch(`${hub.url}/nodes`, {
        method: 'POST',
        headers: { token, 'Content-Type': 'application/json' },
        body: JSON.stringify({ id, url: node.url }),
      });
      expect(res.status).toBe(200);
    }
    return node;
  }

  const api = createRuntimeApi(socket);
  const liveSlots = async () => (await api.servers('shotfleet_nodes')).filter((s) => !s.maintenance).map((s) => `${s.address}:${s.port}`);
  const get = (cookie?: string) =>
    fetch(`http://127.0.0.1:${frontPort}/screenshot?url=x`, { headers: cookie ? { Cookie: `shot_session=${cookie}` } : {} }).then(async (r) => ({
      status: r.status,
      node: r.headers.get('x-shotfleet-node'),
      body: await r.text(),
    }));

  beforeAll(async () => {
    hubPort = await freePort();
    frontPort = await freePort();
    hub = await startShotfleet('hub', hubEnv());
    const first = await join('node-a');
    await waitFor('node-a up at the hub', async () => {
      const list = (await (await fetch(`${hub.url}/nodes`, { headers: { token } })).json()) as { id: string; state: string }[];
      return list.some((n) => n.id === 'node-a' && n.state === 'up');
    });
    const cfg = await (await fetch(`${hub.url}/haproxy.cfg?bind=127.0.0.1:${frontPort}&stats=`, { headers: { token } })).text();
    expect(cfg).toContain(`${first.url.replace('http://', '')} id`);
    expect(cfg).toContain(`stats socket ${socket} mode 600 level admin`);
    expect(checkHaproxyConfig(cfg).ok).toBe(true);
    haproxy = await startHaproxy(cfg, frontPort, dir);
  });

  afterAll(async () => {
    await Promise.all([...memberships.values()].map((m) => m.stop()));
    await hub?.stop();
    await haproxy?.stop();
    await Promise.all([...nodes.values()].map((n) => n.close()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('routes to the node the config was generated with', async () => {
    const r = await get();
    expect(r).toMatchObject({ status: 200, node: 'node-a' });
  });

  it('puts a new node into rotation without a reload', async () => {
    const b = await join('node-b');
    await waitFor('node-b in a slot', async () => (await liveSlots()).includes(`127.0.0.1:${b.port}`));
    const seen = await waitFor('traffic on node-b', async () => ((await get()).node === 'node-b' ? true : undefined), 10_000, 20);
    expect(seen).toBe(true);
    expect(haproxy.proc.exitCode).toBeNull();
    // One HAProxy process all along: no reload or restart happened.
    expect(haproxy.output()).not.toMatch(/reload|Reexecuting/i);
  });

  it('keeps a session on its node and spreads sessions over the nodes', async () => {
    const homes = new Map<string, string>();
    for (let i = 0; i < 24; i++) {
      const cookie = `session-${i}`;
      const first = await get(cookie);
      expect(first.status).toBe(200);
      for (let j = 0; j < 3; j++) expect((await get(cookie)).node).toBe(first.node);
      homes.set(cookie, first.node!);
    }
    expect(new Set(homes.values())).toEqual(new Set(['node-a', 'node-b']));
  });

  it("retries a saturated node's session-less requests on another node", async () => {
    const b = nodes.get('node-b')!;
    b.saturated = true;
    const before = b.hits.filter((h) => h.startsWith('GET /screenshot')).length;
    try {
      // One at a time: node-a has room (maxconn 2) for each retried request.
      for (let i = 0; i < 12; i++) expect(await get()).toMatchObject({ status: 200, node: 'node-a' });
      // node-b was tried (and said 503) at least once: the 200s came from HAProxy's retry, not from luck.
      expect(b.hits.filter((h) => h.startsWith('GET /screenshot')).length).toBeGreaterThan(before);
    } finally {
      b.saturated = false;
    }
  });

  it('takes a dead node out of HAProxy once the hub drops it', async () => {
    const b = nodes.get('node-b')!;
    await memberships.get('node-b')!.stop(); // deregisters: the slot empties at once
    memberships.delete('node-b');
    await b.close();
    await waitFor('node-b out of HAProxy', async () => !(await liveSlots()).includes(`127.0.0.1:${b.port}`));
    for (let i = 0; i < 10; i++) expect(await get()).toMatchObject({ status: 200, node: 'node-a' });
  });

  it('drops a node that dies without deregistering, after its failed pings', async () => {
    const c = await join('node-c', false);
    await waitFor('node-c in a slot', async () => (await liveSlots()).includes(`127.0.0.1:${c.port}`));
    await c.close(); // like kill -9: no deregistration, no more heartbeats
    await waitFor('node-c out of HAProxy', async () => !(await liveSlots()).includes(`127.0.0.1:${c.port}`), 20_000);
    await waitForLog(hub, 'removal', (l) => l.node === 'node-c' && /failed pings/.test(String(l.msg)));
  });

  it('keeps HAProxy routing while the hub restarts, and relearns the slots', async () => {
    const a = nodes.get('node-a')!;
    const slotBefore = (await api.servers('shotfleet_nodes')).find((s) => s.port === a.port)!.name;
    expect(await hub.stop()).toBe(0);
    hub = await startShotfleet('hub', hubEnv());
    for (let i = 0; i < 10; i++) expect(await get()).toMatchObject({ status: 200, node: 'node-a' });
    await waitFor('node-a relearned', async () => {
      const list = (await (await fetch(`${hub.url}/nodes`, { headers: { token } })).json()) as { id: string; state: string }[];
      return list.some((n) => n.id === 'node-a' && n.state === 'up');
    });
    const after = (await api.servers('shotfleet_nodes')).filter((s) => !s.maintenance);
    expect(after.map((s) => s.name)).toEqual([slotBefore]);
    const cfg = await (await fetch(`${hub.url}/haproxy.cfg`, { headers: { token } })).text();
    expect(cfg).toContain(`server ${slotBefore} 127.0.0.1:${a.port} id ${slotBefore.slice(1)}`);
  });
});
