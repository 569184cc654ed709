import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config/load.js';
import { startHub, type RunningHub } from '../src/fleet/hub.js';
import { readNodeStatus } from '../src/fleet/node-status.js';
import { createLogger } from '../src/log/logger.js';
import { startShotfleet } from './helpers/processes.js';
import { checkHaproxyConfig, startFakeFleetNode, waitFor, type FakeFleetNode } from './helpers/haproxy.js';

const log = createLogger('silent');

/**
 * A hub in this process (startHub, as `shotfleet hub` runs it) from these settings on top of loopback and a free port:
 * the same registry, pings and routes without a process start. The refusal to start is checked once as a process.
 */
function hubHere(env: Record<string, string>): Promise<RunningHub> {
  return startHub(loadConfig('hub', {}, { SHOTFLEET_HOST: '127.0.0.1', SHOTFLEET_PORT: '0', ...env }), log);
}
type NodeView = { id: string; url: string; state: string; failures: number };

describe('the hub is never open to the network', () => {
  it('refuses to start on a non-loopback address without a token, naming the variables', async () => {
    let started: Awaited<ReturnType<typeof startShotfleet>> | undefined;
    const outcome = await startShotfleet('hub', { SHOTFLEET_HOST: '0.0.0.0' }, { timeoutMs: 20_000 }).then(
      (hub) => {
        started = hub;
        return 'started';
      },
      (err: Error) => err.message,
    );
    await started?.stop();
    expect(outcome).toMatch(/exited with 2 before it was ready/);
    expect(outcome).toContain('SHOTFLEET_HUB_TOKEN');
    expect(outcome).toContain('SHOTFLEET_TOKEN');
    expect(outcome).toContain('SHOTFLEET_HOST');
  });

  it('starts on loopback without a token, and anywhere with either token', async () => {
    for (const env of [{}, { SHOTFLEET_HOST: '0.0.0.0', SHOTFLEET_HUB_TOKEN: 'h' }, { SHOTFLEET_HOST: '0.0.0.0', SHOTFLEET_TOKEN: 't' }]) {
      const hub = await hubHere(env);
      expect((await fetch(`${hub.url}/livez`)).status).toBe(200);
      await hub.stop();
    }
  });

  it('SHOTFLEET_HUB_TOKEN defaults to SHOTFLEET_TOKEN and can differ from it', () => {
    expect(loadConfig('hub', {}, { SHOTFLEET_TOKEN: 'api' }).HUB_TOKEN).toBe('api');
    expect(loadConfig('serve', {}, { SHOTFLEET_TOKEN: 'api', SHOTFLEET_HUB_TOKEN: 'fleet' }).HUB_TOKEN).toBe('fleet');
    expect(loadConfig('hub', { 'hub-token': 'flag' }, {}).HUB_TOKEN).toBe('flag');
    expect(loadConfig('hub', {}, {}).HUB_TOKEN).toBeUndefined();
  });

  it('with its own token, the hub refuses the API token every client holds', async () => {
    const hub = await hubHere({ SHOTFLEET_TOKEN: 'api', SHOTFLEET_HUB_TOKEN: 'fleet' });
    try {
      const node = await startFakeFleetNode('member');
      try {
        const post = (token: string) =>
          fetch(`${hub.url}/nodes`, {
            method: 'POST',
            headers: { token, 'Content-Type': 'application/json' },
            body: JSON.stringify({ url: node.url, id: 'member' }),
          });
        const refused = await post('api');
        expect(refused.status).toBe(401);
        expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
        expect((await post('fleet')).status).toBe(200);
      } finally {
        await node.close();
      }
    } finally {
      await hub.stop();
    }
  });

  it.each([
    ['0.0.0.0:9999', false],
    ['10.0.0.5:9999', false],
    ['[::]:9999', false],
    ['haproxy.internal:9999', false],
    ['/run/haproxy/admin.sock,0.0.0.0:9999', false],
    ['9999', false],
    ['/run/haproxy/admin.sock', true],
    ['127.0.0.1:9999', true],
    ['[::1]:9999', true],
    ['localhost:9999', true],
    ['/run/a.sock, 127.0.0.2:9999', true],
  ])('SHOTFLEET_HAPROXY_SOCKET=%s accepted: %s (unix path or loopback only)', (value, accepted) => {
    const load = () => loadConfig('hub', {}, { SHOTFLEET_HAPROXY_SOCKET: value });
    if (accepted) expect(load().HAPROXY_SOCKET!.length).toBeGreaterThan(0);
    else {
      expect(load).toThrow(ConfigError);
      expect(load).toThrow(/SHOTFLEET_HAPROXY_SOCKET.*(loopback|unix socket path)/);
    }
  });
});

describe('the hub pings and routes only the address it checked', () => {
  let hub: RunningHub;
  let node: FakeFleetNode;
  let impostor: FakeFleetNode;
  const lookups: string[] = [];
  const token = 'rebind-token';
  const auth = { token };

  beforeAll(async () => {
    node = await startFakeFleetNode('real-node', 0, '127.0.0.1');
    // Same port on another loopback address: where a rebinding name would send a second lookup.
    impostor = await startFakeFleetNode('impostor', node.port, '127.0.0.2');
    const config = loadConfig(
      'hub',
      {},
      { SHOTFLEET_HOST: '127.0.0.1', SHOTFLEET_PORT: '0', SHOTFLEET_HUB_TOKEN: token, SHOTFLEET_PING_INTERVAL_MS: '100', SHOTFLEET_PING_FAILURES: '1000' },
    );
    // A rebinding name: the first answer is the node, every later one another address.
    const lookup = async (host: string) => {
      lookups.push(host);
      return lookups.length === 1 ? '127.0.0.1' : '127.0.0.2';
    };
    hub = await startHub(config, log, { lookup });
  });

  afterAll(async () => {
    await hub?.stop();
    await Promise.all([node?.close(), impostor?.close()]);
  });

  const listNodes = async () => (await (await fetch(`${hub.url}/nodes`, { headers: auth })).json()) as NodeView[];

  it('resolves a node name once; every ping goes to that address with the name in Host', async () => {
    const res = await fetch(`${hub.url}/nodes`, {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ url: `http://node.rebind.test:${node.port}`, id: 'rebound' }),
    });
    expect(res.status).toBe(200);
    await waitFor('rebound up', async () => (await listNodes()).some((n) => n.id === 'rebound' && n.state === 'up'));
    // Several rounds at 100 ms: a second lookup would have had every chance to happen.
    await waitFor('several pings', () => node.hits.filter((h) => h === 'GET /status').length >= 4);
    expect(lookups).toEqual(['node.rebind.test']);
    expect(impostor.hits).toEqual([]);
    expect(new Set(node.hosts)).toEqual(new Set([`node.rebind.test:${node.port}`]));
    const cfg = await (await fetch(`${hub.url}/haproxy.cfg`, { headers: auth })).text();
    expect(cfg).toMatch(new RegExp(`server s\\d+ 127\\.0\\.0\\.1:${node.port} id`));
    expect(cfg).not.toContain('127.0.0.2');
  });

  it.each(['169.254.169.254', '0.0.0.0', '224.0.0.1', '[fe80::1]', '[::ffff:169.254.169.254]'])(
    'refuses a node at %s, an address no node can have (400 in the node error shape)',
    async (host) => {
      const res = await fetch(`${hub.url}/nodes`, {
        method: 'POST',
        headers: { ...auth, 'Content-Type': 'application/json' },
        body: JSON.stringify({ url: `http://${host}:80`, id: 'metadata' }),
      });
      expect(res.status).toBe(400);
      const body = (await res.json()) as { error: { code: string; message: string; details: { field: string } } };
      expect(body.error).toMatchObject({ code: 'invalid_request', details: { field: 'url' } });
      expect((await listNodes()).some((n) => n.id === 'metadata')).toBe(false);
    },
  );
});

describe("a node's /status figures are checked before they reach HAProxy", () => {
  it.each([
    [{ status: 'ready', pages: { max: 1e21 } }, /pages\.max/],
    [{ status: 'ready', pages: { max: 0.5 } }, /pages\.max/],
    [{ status: 'ready', pages: { max: 0 } }, /pages\.max/],
    [{ status: 'ready', pages: { max: '4' } }, /pages\.max/],
    [{ status: 'ready', pages: 'many' }, /pages/],
    [{ status: 'ready', saturation: 7 }, /saturation/],
    [{ status: 'ready', saturation: -0.1 }, /saturation/],
    [{ status: 'ready', shedPerSecond: -1 }, /shedPerSecond/],
    [{ status: 'ready', renderSecondsAvg: 'slow' }, /renderSecondsAvg/],
    [{ status: 'ready\nmaxconn 1' }, /status/],
    [[1, 2], /object/],
    [null, /object/],
  ])('refuses %j', (body, reason) => {
    const read = readNodeStatus(body);
    expect(typeof read).toBe('string');
    expect(read).toMatch(reason);
  });

  it('takes well-formed figures, and leaves absent ones neutral', () => {
    expect(readNodeStatus({ status: 'ready', saturation: 0.25, pages: { max: 4 }, shedPerSecond: 1.5, renderSecondsAvg: 0.3, extra: 'ignored' })).toEqual({
      status: 'ready',
      saturation: 0.25,
      pagesMax: 4,
      shedPerSecond: 1.5,
      renderSecondsAvg: 0.3,
    });
    expect(readNodeStatus({ status: 'draining' })).toEqual({ status: 'draining', saturation: 0, pagesMax: 0, shedPerSecond: 0, renderSecondsAvg: 0 });
  });

  it('a node reporting pages.max 1e21 or 0.5 stays out of the config, which still passes haproxy -c', async () => {
    const token = 'figures-token';
    const hub = await hubHere({ SHOTFLEET_HUB_TOKEN: token, SHOTFLEET_PING_INTERVAL_MS: '250', SHOTFLEET_PING_FAILURES: '1000' });
    const nodes: FakeFleetNode[] = [];
    try {
      for (const [id, pagesMax] of [
        ['good', 3],
        ['huge', 1e21],
        ['half', 0.5],
      ] as const) {
        const node = await startFakeFleetNode(id);
        nodes.push(node);
        node.status.pagesMax = pagesMax;
        const res = await fetch(`${hub.url}/nodes`, {
          method: 'POST',
          headers: { token, 'Content-Type': 'application/json' },
          body: JSON.stringify({ url: node.url, id }),
        });
        expect(res.status).toBe(200);
      }
      const listNodes = async () => (await (await fetch(`${hub.url}/nodes`, { headers: { token } })).json()) as NodeView[];
      await waitFor('good up, the others failing', async () => {
        const list = await listNodes();
        return list.find((n) => n.id === 'good')?.state === 'up' && list.filter((n) => n.id !== 'good').every((n) => n.state === 'suspect' && n.failures >= 2);
      });
      const cfg = await (await fetch(`${hub.url}/haproxy.cfg`, { headers: { token } })).text();
      expect(cfg).toContain(`127.0.0.1:${nodes[0].port} id`);
      expect(cfg).toMatch(new RegExp(`127\\.0\\.0\\.1:${nodes[0].port} id \\d+ maxconn 3\\b`));
      for (const bad of nodes.slice(1)) expect(cfg).not.toContain(`:${bad.port} `);
      expect(cfg).not.toMatch(/e\+21|maxconn 0\.5/);
      const check = checkHaproxyConfig(cfg);
      expect(check.ok, check.output).toBe(true);
    } finally {
      await hub.stop();
      await Promise.all(nodes.map((n) => n.close()));
    }
  });
});
