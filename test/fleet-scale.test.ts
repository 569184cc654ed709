import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startMembership, type Membership } from '../src/server/membership.js';
import { renderHaproxyConfig } from '../src/haproxy/config.js';
import { createRuntimeApi } from '../src/haproxy/runtime-api.js';
import { createLogger } from '../src/log/logger.js';
import { startShotfleet, waitForLog, type RunningProcess } from './helpers/processes.js';
import { checkHaproxyConfig, freePort, startFakeFleetNode, startHaproxy, waitFor, type FakeFleetNode, type RunningHaproxy } from './helpers/haproxy.js';

const token = 'scale-token';
const auth = { token };
const log = createLogger('silent');
type NodeView = { id: string; url: string; state: string; slot: number | null; routed: boolean };

const listNodes = async (hub: string) => (await (await fetch(`${hub}/nodes`, { headers: auth })).json()) as NodeView[];
const register = (hub: string, id: string, url: string) =>
  fetch(`${hub}/nodes`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify({ id, url }) });
const metrics = async (hub: string) => (await fetch(`${hub}/metrics`)).text();
/** The config's server lines (with the comment naming each node), without the listener lines that differ per hub. */
const serverLines = (cfg: string) => cfg.split('\n').filter((l) => /^\s+(server s\d+|# node )/.test(l));

describe('fleet at scale (stand-in nodes, real hubs and HAProxy)', () => {
  const nodes: FakeFleetNode[] = [];
  const hubs: RunningProcess[] = [];
  const proxies: RunningHaproxy[] = [];
  const memberships: Membership[] = [];
  const dirs: string[] = [];
  const hubEnv = (extra: Record<string, string> = {}) => ({
    SHOTFLEET_HUB_TOKEN: token,
    // A hub pings a node as it registers (that is when the node goes up and into HAProxy); the rounds after that
    // would only re-ping up to 70 nodes a second. The HAProxy sockets test, which waits for rounds, sets its own.
    // Lenient: on a loaded machine a ping may take longer than its interval, and no node here should be dropped.
    SHOTFLEET_PING_INTERVAL_MS: '5000',
    SHOTFLEET_PING_FAILURES: '1000',
    SHOTFLEET_HEARTBEAT_INTERVAL_MS: '1000',
    ...extra,
  });
  const startHub = async (extra: Record<string, string> = {}) => {
    const hub = await startShotfleet('hub', hubEnv(extra));
    hubs.push(hub);
    return hub;
  };
  const fakeNodes = async (prefix: string, n: number) => {
    const started = await Promise.all(Array.from({ length: n }, (_, i) => startFakeFleetNode(`${prefix}-${i}`)));
    nodes.push(...started);
    return started;
  };
  const tempDir = () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shotfleet-fleet-scale-'));
    dirs.push(dir);
    return dir;
  };

  afterAll(async () => {
    await Promise.all(memberships.map((m) => m.stop()));
    await Promise.all(hubs.map((h) => h.stop()));
    await Promise.all(proxies.map((p) => p.stop()));
    await Promise.all(nodes.map((n) => n.close()));
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('70 nodes with 64 slots: 64 routed, 6 tracked as unrouted in /nodes and the metrics, one warning', async () => {
    const hub = await startHub();
    const fleet = await fakeNodes('many', 70);
    for (const node of fleet) expect((await register(hub.url, node.id, node.url)).status).toBe(200);
    await waitFor('70 nodes up', async () => (await listNodes(hub.url)).filter((n) => n.state === 'up').length === 70, 60_000);

    const list = await listNodes(hub.url);
    const unrouted = list.filter((n) => !n.routed);
    expect(unrouted).toHaveLength(6);
    expect(unrouted.every((n) => n.slot === null)).toBe(true);
    const slots = list.filter((n) => n.routed).map((n) => n.slot!);
    expect(new Set(slots).size).toBe(64);
    expect(Math.min(...slots)).toBe(1);
    expect(Math.max(...slots)).toBe(64);

    const text = await metrics(hub.url);
    expect(text).toMatch(/^shotfleet_hub_nodes\{state="unrouted"\} 6$/m);
    expect(text).toMatch(/^shotfleet_hub_nodes\{state="up"\} 64$/m);

    const cfg = await (await fetch(`${hub.url}/haproxy.cfg`, { headers: auth })).text();
    expect(cfg.match(/^\s+server s\d+ 127\.0\.0\.1:(?!1 )\d+ id \d+ maxconn 2$/gm)).toHaveLength(64);
    for (const n of unrouted) expect(cfg).not.toContain(`${n.url.replace('http://', '')} `);
    expect(checkHaproxyConfig(cfg).ok).toBe(true);

    await waitForLog(hub, 'the unrouted warning', (l) => /more nodes than HAProxy slots/.test(String(l.msg)));
    expect(hub.logs.filter((l) => /more nodes than HAProxy slots/.test(String(l.msg)))).toHaveLength(1);
    await hub.stop();
  });

  it('SHOTFLEET_HAPROXY_SLOTS=80 routes all 70', async () => {
    const hub = await startHub({ SHOTFLEET_HAPROXY_SLOTS: '80' });
    const fleet = nodes.filter((n) => n.id.startsWith('many-'));
    for (const node of fleet) expect((await register(hub.url, node.id, node.url)).status).toBe(200);
    await waitFor('70 nodes up', async () => (await listNodes(hub.url)).filter((n) => n.state === 'up').length === 70, 60_000);
    expect((await listNodes(hub.url)).every((n) => n.routed)).toBe(true);
    expect(await metrics(hub.url)).toMatch(/^shotfleet_hub_nodes\{state="unrouted"\} 0$/m);
    const cfg = await (await fetch(`${hub.url}/haproxy.cfg`, { headers: auth })).text();
    expect(cfg.match(/^\s+server s\d+ /gm)).toHaveLength(2 * 80);
    await hub.stop();
  });

  it('two HAProxy sockets, one down: the other is synced, the failures are counted, and the returning one is brought up to date', async () => {
    const dir = tempDir();
    const live = path.join(dir, 'live.sock');
    const late = path.join(dir, 'late.sock');
    // HAProxy is synced once a round: rounds of 500 ms count the missing socket's failures and bring it up to date soon.
    const hub = await startHub({ SHOTFLEET_HAPROXY_SOCKET: `${live},${late}`, SHOTFLEET_PING_INTERVAL_MS: '500' });
    const frontLive = await freePort();
    const frontLate = await freePort();
    // The live HAProxy starts from the hub's config for its socket, with no node yet.
    const cfgLive = await (
      await fetch(`${hub.url}/haproxy.cfg?bind=127.0.0.1:${frontLive}&stats=&socket=${encodeURIComponent(live)}`, { headers: auth })
    ).text();
    expect(cfgLive).toContain(`stats socket ${live} `);
    expect(cfgLive).not.toContain(late);
    const unknown = await fetch(`${hub.url}/haproxy.cfg?socket=${encodeURIComponent('/tmp/not-a-hub-socket.sock')}`, { headers: auth });
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as { error: { code: string; details: { field: string } } }).error).toMatchObject({
      code: 'invalid_request',
      details: { field: 'socket' },
    });
    fs.mkdirSync(path.join(dir, 'live'));
    proxies.push(await startHaproxy(cfgLive, frontLive, path.join(dir, 'live')));

    const [node] = await fakeNodes('synced', 1);
    memberships.push(startMembership({ hubUrl: hub.url, token, nodeId: node.id, advertiseUrl: node.url, capacity: 2, heartbeatIntervalMs: 1000, log }));
    const routedIn = async (socket: string) => (await createRuntimeApi(socket).servers('shotfleet_nodes')).some((s) => !s.maintenance && s.port === node.port);
    await waitFor('node in the live HAProxy', () => routedIn(live), 20_000);
    const through = (front: number) => async () => {
      const r = await fetch(`http://127.0.0.1:${front}/anything`);
      return r.status === 200 ? r.headers.get('x-shotfleet-node') : undefined;
    };
    expect(await waitFor('traffic through the live HAProxy', through(frontLive), 20_000)).toBe(node.id);

    const errors = (text: string, socket: string) =>
      Number(
        new RegExp(`^shotfleet_hub_haproxy_sync_errors_total\\{socket="${socket.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}"\\} (\\d+)$`, 'm').exec(text)?.[1] ??
          NaN,
      );
    // From here on the live socket syncs without error while the missing one keeps failing.
    const liveErrors = errors(await metrics(hub.url), live);
    const lateErrors = errors(await metrics(hub.url), late);
    await waitFor('more failures counted for the missing socket', async () => errors(await metrics(hub.url), late) >= lateErrors + 2);
    expect(errors(await metrics(hub.url), live)).toBe(liveErrors);

    // The second HAProxy comes up from an empty config (as if started before the node existed): the hub fills it in.
    const empty = renderHaproxyConfig({
      slots: 64,
      servers: [],
      bind: `127.0.0.1:${frontLate}`,
      statsBind: '',
      sessionCookie: 'shot_session',
      runtimeSocket: late,
      defaultMaxconn: 2,
    });
    fs.mkdirSync(path.join(dir, 'late'));
    proxies.push(await startHaproxy(empty, frontLate, path.join(dir, 'late')));
    await waitFor('node in the returning HAProxy', () => routedIn(late), 20_000);
    const viaLate = await waitFor('traffic through the returning HAProxy', through(frontLate), 20_000);
    expect(viaLate).toBe(node.id);
    await hub.stop();
  });

  it('two hubs that see the same nodes, in opposite orders, give identical slot maps and /haproxy.cfg server lines', async () => {
    const [a, b] = await Promise.all([startHub(), startHub()]);
    const fleet = await fakeNodes('pair', 40);
    for (const node of fleet) expect((await register(a.url, node.id, node.url)).status).toBe(200);
    for (const node of [...fleet].reverse()) expect((await register(b.url, node.id, node.url)).status).toBe(200);
    // Two more that register themselves with both hubs through one SHOTFLEET_HUB_URL list.
    for (const node of await fakeNodes('both', 2)) {
      memberships.push(
        startMembership({ hubUrl: `${a.url},${b.url}`, token, nodeId: node.id, advertiseUrl: node.url, capacity: 2, heartbeatIntervalMs: 1000, log }),
      );
    }
    for (const hub of [a, b]) await waitFor('42 nodes up', async () => (await listNodes(hub.url)).filter((n) => n.state === 'up').length === 42, 60_000);

    const slotMap = async (hub: string) => Object.fromEntries((await listNodes(hub)).map((n) => [n.id, n.slot]).sort());
    const mapA = await slotMap(a.url);
    expect(Object.keys(mapA)).toHaveLength(42);
    expect(await slotMap(b.url)).toEqual(mapA);
    const cfg = async (hub: string) => await (await fetch(`${hub}/haproxy.cfg`, { headers: auth })).text();
    const linesA = serverLines(await cfg(a.url));
    expect(linesA.filter((l) => l.includes('# node '))).toHaveLength(2 * 42);
    expect(serverLines(await cfg(b.url))).toEqual(linesA);

    // Killing one hub changes nothing at the other.
    await a.stop();
    expect(await slotMap(b.url)).toEqual(mapA);
    await b.stop();
  });
});
