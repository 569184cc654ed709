import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run as haproxyConfigCommand } from '../src/cli/haproxy-config-command.js';
import { startMembership, type Membership } from '../src/server/membership.js';
import { createLogger } from '../src/log/logger.js';
import { runCommandInProcess } from './helpers/cli-in-process.js';
import { startShotfleet, waitForLog, type RunningProcess } from './helpers/processes.js';
import { checkHaproxyConfig, freePort, startFakeFleetNode, waitFor, type FakeFleetNode } from './helpers/haproxy.js';

const token = 'hub-test-token';
const heartbeatMs = 1000;
const hubEnv = (port: number) => ({
  SHOTFLEET_PORT: String(port),
  SHOTFLEET_TOKEN: token,
  SHOTFLEET_PING_INTERVAL_MS: '200',
  SHOTFLEET_PING_FAILURES: '3',
  SHOTFLEET_HEARTBEAT_INTERVAL_MS: String(heartbeatMs),
  SHOTFLEET_TARGET_SATURATION: '0.7',
});

type NodeView = { id: string; url: string; state: string; saturation: number; lastSeen: string; failures: number; slot: number | null; routed: boolean };

describe('shotfleet hub with stand-in nodes', () => {
  let hubPort: number;
  let hub: RunningProcess;
  const nodes: FakeFleetNode[] = [];
  const memberships: Membership[] = [];
  const auth = { Authorization: `Bearer ${token}` };

  const listNodes = async (): Promise<NodeView[]> => (await fetch(`${hub.url}/nodes`, { headers: auth })).json() as Promise<NodeView[]>;
  const register = (body: unknown, headers: Record<string, string> = auth) =>
    fetch(`${hub.url}/nodes`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body) });

  beforeAll(async () => {
    hubPort = await freePort();
    hub = await startShotfleet('hub', hubEnv(hubPort));
  });

  afterAll(async () => {
    await Promise.all(memberships.map((m) => m.stop()));
    await hub?.stop();
    await Promise.all(nodes.map((n) => n.close()));
  });

  it('refuses a wrong or missing token with 401 in the node error shape, and registers nothing', async () => {
    const node = await startFakeFleetNode('intruder');
    nodes.push(node);
    for (const headers of [{ Authorization: 'Bearer wrong' }, { token: 'hub-test-tokeX' }, {}]) {
      const res = await register({ url: node.url, id: 'intruder' }, headers);
      expect(res.status).toBe(401);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('unauthorized');
      expect(body.error.message).toMatch(/token/);
    }
    expect((await fetch(`${hub.url}/nodes`)).status).toBe(401);
    expect((await listNodes()).map((n) => n.id)).not.toContain('intruder');
    expect(node.hits).toEqual([]);
  });

  it('registers a node (token header form too), pings it and lists it in the documented shape', async () => {
    const node = await startFakeFleetNode('alpha');
    nodes.push(node);
    node.status.saturation = 0.5;
    const res = await register({ url: node.url, id: 'alpha' }, { token });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ id: 'alpha', pingIntervalMs: 200, heartbeatIntervalMs: heartbeatMs });
    const listed = await waitFor('alpha up', async () => (await listNodes()).find((n) => n.id === 'alpha' && n.state === 'up'));
    expect(Object.keys(listed).sort()).toEqual(['failures', 'id', 'lastSeen', 'routed', 'saturation', 'slot', 'state', 'url']);
    expect(listed).toMatchObject({ url: node.url, saturation: 0.5, failures: 0, routed: true });
    expect(Number.isNaN(Date.parse(listed.lastSeen))).toBe(false);
    expect(node.hits).toContain('GET /status');
  });

  it.each([
    ['a path', 'http://127.0.0.1:3000/admin'],
    ['credentials', 'http://user:pw@127.0.0.1:3000'],
    ['a query', 'http://127.0.0.1:3000?x=1'],
    ['another scheme', 'ftp://127.0.0.1:3000'],
    ['no URL', 42],
  ])('refuses a node URL with %s (400 invalid_request)', async (_what, url) => {
    const res = await register({ url, id: 'bad' });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; details: { field: string } } };
    expect(body.error).toMatchObject({ code: 'invalid_request', details: { field: 'url' } });
  });

  it('answers 415 for a non-JSON body and 404 in the error shape for unknown routes', async () => {
    const res = await fetch(`${hub.url}/nodes`, { method: 'POST', headers: { ...auth, 'Content-Type': 'text/plain' }, body: 'x' });
    expect(res.status).toBe(415);
    const missing = await fetch(`${hub.url}/nope`, { headers: auth });
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('not_found');
  });

  it('removes a node after the configured number of failed pings, passing through suspect', async () => {
    const node = await startFakeFleetNode('doomed');
    nodes.push(node);
    expect((await register({ url: node.url, id: 'doomed' })).status).toBe(200);
    await waitFor('doomed up', async () => (await listNodes()).some((n) => n.id === 'doomed' && n.state === 'up'));
    node.status.status = 'no_browser'; // answers 503 without a browser: not serving, so it counts as a failure
    const suspect = await waitFor('doomed suspect', async () => (await listNodes()).find((n) => n.id === 'doomed' && n.state === 'suspect'), 10_000, 20);
    expect(suspect.failures).toBeGreaterThan(0);
    expect(suspect.failures).toBeLessThan(3);
    await node.close();
    await waitFor('doomed removed', async () => !(await listNodes()).some((n) => n.id === 'doomed'));
    // The log line may trail the HTTP answer through the pipe.
    await waitForLog(hub, 'removal', (l) => l.node === 'doomed' && /removed after 3 failed pings/.test(String(l.msg)));
  });

  it('marks a draining node draining and forgets a deregistered one', async () => {
    const node = await startFakeFleetNode('leaving');
    nodes.push(node);
    await register({ url: node.url, id: 'leaving' });
    await waitFor('leaving up', async () => (await listNodes()).some((n) => n.id === 'leaving' && n.state === 'up'));
    node.status.status = 'draining';
    await waitFor('leaving draining', async () => (await listNodes()).some((n) => n.id === 'leaving' && n.state === 'draining'));
    expect((await fetch(`${hub.url}/nodes/leaving`, { method: 'DELETE' })).status).toBe(401);
    expect((await fetch(`${hub.url}/nodes/leaving`, { method: 'DELETE', headers: auth })).status).toBe(200);
    expect((await listNodes()).some((n) => n.id === 'leaving')).toBe(false);
    expect((await fetch(`${hub.url}/nodes/leaving`, { method: 'DELETE', headers: auth })).status).toBe(404);
  });

  it('exposes promtool-clean metrics whose desired_nodes counts shed demand', async () => {
    // Two saturated nodes of 2 pages, each shedding 3 requests/s of 0.5 s renders:
    // demand = 2 × (1 × 2 + 3 × 0.5) = 7 pages; desired = ceil(7 ÷ (2 × 0.7)) = 5, where saturation alone says 3.
    for (const id of ['busy-1', 'busy-2']) {
      const node = await startFakeFleetNode(id);
      nodes.push(node);
      Object.assign(node.status, { saturation: 1, pagesMax: 2, shedPerSecond: 3, renderSecondsAvg: 0.5 });
      await register({ url: node.url, id });
    }
    for (const id of ['alpha', 'intruder']) await fetch(`${hub.url}/nodes/${id}`, { method: 'DELETE', headers: auth });
    await waitFor('busy nodes up', async () => (await listNodes()).filter((n) => n.id.startsWith('busy') && n.state === 'up').length === 2);
    const res = await fetch(`${hub.url}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/^shotfleet_hub_desired_nodes 5$/m);
    expect(text).toMatch(/^shotfleet_hub_fleet_saturation_ratio 1$/m);
    expect(text).toMatch(/^shotfleet_hub_nodes\{state="up"\} 2$/m);
    expect(text).toMatch(/^shotfleet_hub_nodes\{state="suspect"\} 0$/m);
    expect(text).toMatch(/^shotfleet_hub_nodes\{state="draining"\} 0$/m);
    expect(text).toMatch(/^process_cpu_seconds_total /m);

    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(`${check.stdout}${check.stderr}`).toBe('');
    expect(check.status).toBe(0);
    expect((await fetch(`${hub.url}/livez`)).status).toBe(200);
  });

  it('relearns every node within about one heartbeat after a restart', async () => {
    const log = createLogger('silent');
    const members: FakeFleetNode[] = [];
    for (const id of ['member-1', 'member-2']) {
      const node = await startFakeFleetNode(id);
      nodes.push(node);
      members.push(node);
      memberships.push(startMembership({ hubUrl: hub.url, token, nodeId: id, advertiseUrl: node.url, capacity: 2, heartbeatIntervalMs: heartbeatMs, log }));
    }
    await waitFor('members registered', async () => (await listNodes()).filter((n) => n.id.startsWith('member')).length === 2);

    expect(await hub.stop()).toBe(0);
    const stoppedAt = Date.now();
    hub = await startShotfleet('hub', hubEnv(hubPort));
    const restartedAt = Date.now();
    // The new hub kept nothing: whatever it lists already, a heartbeat sent to it told it (a member's retry can
    // land between the hub's first answer and this look).
    for (const n of await listNodes()) expect(Date.parse(n.lastSeen)).toBeGreaterThanOrEqual(stoppedAt);
    // Bounded by a few heartbeats so a loaded machine does not fail it; the time taken is what matters.
    await waitFor('members relearned', async () => (await listNodes()).filter((n) => n.id.startsWith('member')).length === 2, 4 * heartbeatMs, 25);
    const relearnedMs = Date.now() - restartedAt;
    console.log(`hub restart: fleet relearned in ${relearnedMs} ms (heartbeat ${heartbeatMs} ms)`);

    // Deregistration on stop removes a member at once.
    await memberships.shift()!.stop();
    const ids = (await listNodes()).map((n) => n.id);
    expect(ids).not.toContain('member-1');
    expect(ids).toContain('member-2');
  });

  it('serves its config to shotfleet haproxy-config --hub, which passes haproxy -c', async () => {
    // The command in this process (test/haproxy-config.test.ts runs it as a process).
    const cli = (args: string[]) => runCommandInProcess(haproxyConfigCommand, args);
    const ok = await cli(['--hub', hub.url, '--token', token, '--bind', '127.0.0.1:18080']);
    expect(ok.code).toBe(0);
    const member = nodes.find((n) => n.id === 'member-2')!;
    expect(ok.stdout).toMatch(new RegExp(`server s\\d+ 127\\.0\\.0\\.1:${member.port} id \\d+`));
    expect(ok.stdout).toContain('bind 127.0.0.1:18080');
    expect(checkHaproxyConfig(ok.stdout).ok).toBe(true);
    const refused = await cli(['--hub', hub.url, '--token', 'wrong']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/401.*--token/);
  });

  it('stops cleanly on SIGTERM', async () => {
    expect(await hub.stop()).toBe(0);
    await waitForLog(hub, 'stopped', (l) => l.msg === 'stopped');
  });
});
