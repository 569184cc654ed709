import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { run as haproxyConfigCommand } from '../src/cli/haproxy-config-command.js';
import { renderHaproxyConfig, type SlotServer } from '../src/haproxy/config.js';
import { assignSlots, preferredSlot, SlotTable } from '../src/haproxy/slots.js';
import { runCommandInProcess } from './helpers/cli-in-process.js';
import { cliEntry, repoRoot } from './helpers/processes.js';
import { checkHaproxyConfig } from './helpers/haproxy.js';

const base = { bind: ':8080', statsBind: '127.0.0.1:8404', sessionCookie: 'shot_session', defaultMaxconn: 2 };

function servers(n: number, slots = 64): SlotServer[] {
  const placed = assignSlots(
    Array.from({ length: n }, (_, i) => `node-${i}:3000`),
    slots,
  );
  return Array.from({ length: n }, (_, i) => {
    const id = `node-${i}:3000`;
    return { slot: placed.get(id) ?? 0, host: `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}`, port: 3000, maxconn: 4, id };
  });
}

function section(text: string, header: string): string {
  const start = text.indexOf(`\n${header}\n`);
  expect(start, `section ${header}`).toBeGreaterThan(-1);
  const rest = text.slice(start + header.length + 2);
  const end = rest.search(/\n(backend|frontend|listen|global|defaults) /);
  return end === -1 ? rest : rest.slice(0, end);
}

describe('renderHaproxyConfig', () => {
  it('emits the documented layout: hashed session backend, retried session-less backend, checks and stats', () => {
    const text = renderHaproxyConfig({ ...base, slots: 4, servers: servers(2, 4), agentPort: 9999, runtimeSocket: '/run/hap.sock' });
    const sessions = section(text, 'backend shotfleet_sessions');
    expect(sessions).toContain('balance hash req.cook(shot_session)');
    expect(sessions).toContain('hash-type consistent');
    expect(sessions).not.toMatch(/retry-on[^\n]*503/);
    expect(sessions).not.toContain('agent-check');
    const nodes = section(text, 'backend shotfleet_nodes');
    expect(nodes).toContain('balance leastconn');
    expect(nodes).toContain('retry-on 503 conn-failure empty-response response-timeout');
    expect(nodes).toContain('option redispatch 1');
    expect(nodes).toContain('option http-buffer-request');
    expect(nodes).toContain('retries 2');
    expect(nodes).toMatch(/default-server weight 100 agent-check agent-port 9999/);
    expect(nodes.match(/^\s+server s\d+ .* maxconn \d+/gm)).toHaveLength(4);
    for (const b of [sessions, nodes]) {
      expect(b).toContain('option httpchk GET /status HTTP/1.1');
      expect(b).toContain('http-check send hdr Host shotfleet');
    }
    expect(text).toContain('stats socket /run/hap.sock mode 600 level admin');
    expect(text).toMatch(/use_backend shotfleet_sessions if \{ req\.cook\(shot_session\) -m len gt 0 \}/);
    expect(section(text, 'frontend shotfleet_stats')).toContain('stats enable');
  });

  it('puts each node in its slot with a fixed id, and empty slots disabled', () => {
    const placed = servers(3);
    const text = renderHaproxyConfig({ ...base, slots: 64, servers: placed });
    for (const s of placed) expect(text).toContain(`server s${s.slot} ${s.host}:3000 id ${s.slot} maxconn 4\n`);
    const disabled = text.match(/server s\d+ 127\.0\.0\.1:1 id \d+ maxconn 2 disabled/g) ?? [];
    expect(disabled).toHaveLength(64 - 3);
  });

  it('refuses values that would inject lines into the config', () => {
    expect(() => renderHaproxyConfig({ ...base, bind: ':8080\n  stats enable', slots: 1, servers: [] })).toThrow(/bind/);
    expect(() => renderHaproxyConfig({ ...base, slots: 1, servers: [{ slot: 1, host: 'a b', port: 1, maxconn: 1 }] })).toThrow(/host/);
    expect(() => renderHaproxyConfig({ ...base, slots: 1, servers: servers(2, 2) })).toThrow(/slots/);
  });

  it.each([0, 1, 32])('passes haproxy -c with %i nodes', (n) => {
    const result = checkHaproxyConfig(renderHaproxyConfig({ ...base, slots: 64, servers: servers(n), agentPort: 9100, runtimeSocket: '/tmp/x.sock' }));
    expect(result.output).not.toMatch(/ALERT/);
    expect(result.ok).toBe(true);
  });

  it('brackets IPv6 addresses', () => {
    const text = renderHaproxyConfig({ ...base, slots: 1, servers: [{ slot: 1, host: '::1', port: 3000, maxconn: 2 }] });
    expect(text).toContain('server s1 [::1]:3000 id 1');
    expect(checkHaproxyConfig(text).ok).toBe(true);
  });
});

describe('slot placement (assignSlots, SlotTable)', () => {
  const shuffled = <T>(items: T[], seed: number) => {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const j = seed % (i + 1);
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  };

  it('depends on the set of ids alone: any arrival order gives the same map, collisions included', () => {
    const ids = Array.from({ length: 40 }, (_, i) => `host-${i}:3000`);
    const colliding = ids.filter((id) => ids.some((o) => o !== id && preferredSlot(o, 64) === preferredSlot(id, 64)));
    expect(colliding.length).toBeGreaterThan(4); // 40 ids in 64 slots: the collisions are what this test is about
    const reference = assignSlots(ids, 64);
    expect(new Set(reference.values()).size).toBe(ids.length);
    for (let seed = 1; seed <= 20; seed++) expect(assignSlots(shuffled(ids, seed), 64)).toEqual(reference);
  });

  it('a node joining moves nobody unless it outranks a node on its probe path; a node leaving frees its slot', () => {
    const ids = Array.from({ length: 10 }, (_, i) => `n${i}`);
    const before = assignSlots(ids, 1024);
    const after = assignSlots([...ids, 'newcomer'], 1024);
    for (const id of ids) expect(after.get(id)).toBe(before.get(id));
    expect(assignSlots(ids.slice(1), 1024)).toEqual(new Map(ids.slice(1).map((id) => [id, before.get(id)])));
  });

  it('with more nodes than slots, the same nodes go unrouted whatever the order', () => {
    const ids = Array.from({ length: 70 }, (_, i) => `node-${i}`);
    const a = assignSlots(ids, 64);
    const b = assignSlots(shuffled(ids, 7), 64);
    expect(b).toEqual(a);
    const unrouted = [...a].filter(([, slot]) => slot === undefined);
    expect(unrouted).toHaveLength(6);
    expect(new Set([...a.values()].filter((s) => s !== undefined)).size).toBe(64);
  });

  it('keeps an adopted slot for the node at that address, and from others until adoptions end', () => {
    const t = new SlotTable(8);
    const wanted = preferredSlot('newcomer', 8);
    t.adopt('10.0.0.9:3000', wanted);
    expect(t.place([{ id: 'newcomer', endpoint: '10.0.0.1:3000' }]).get('newcomer')).not.toBe(wanted);
    t.forgetAdoptions();
    expect(t.place([{ id: 'newcomer', endpoint: '10.0.0.1:3000' }]).get('newcomer')).toBe(wanted);
  });
});

describe('shotfleet haproxy-config', () => {
  /** The command as a process (compiled for this run): run once, the end-to-end check. */
  const cli = (args: string[]) => {
    const r = spawnSync(process.execPath, [cliEntry, 'haproxy-config', ...args], {
      cwd: repoRoot,
      encoding: 'utf8',
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
      timeout: 30_000,
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  /** The command's run() in this process, as main.ts calls it: the same output without a process start. */
  const here = async (args: string[]) => {
    const r = await runCommandInProcess(haproxyConfigCommand, args);
    return { status: r.code, stdout: r.stdout, stderr: r.stderr };
  };

  it.each([
    [1, 'in process', here],
    [32, 'as a process', async (args: string[]) => cli(args)],
  ] as const)('prints a config that passes haproxy -c for %i nodes from --nodes (%s)', async (n, _how, shotfleet) => {
    // Closed loopback ports: /status fails fast and --maxconn is used.
    const nodes = Array.from({ length: n }, (_, i) => `http://127.0.0.1:${1 + i}`).join(',');
    const r = await shotfleet(['--nodes', nodes, '--maxconn', '3', '--agent-port', '9100', '--bind', '127.0.0.1:18080']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.match(/^\s+server s\d+ 127\.0\.0\.1:\d+ id \d+ maxconn 3$/gm)).toHaveLength(n);
    expect(checkHaproxyConfig(r.stdout).ok).toBe(true);
  });

  it('prints a valid config for an empty node list', async () => {
    const r = await here(['--nodes', '']);
    expect(r.status).toBe(0);
    expect(checkHaproxyConfig(r.stdout).ok).toBe(true);
  });

  it('refuses a node URL with a path, naming the problem', async () => {
    const r = await here(['--nodes', 'http://127.0.0.1:3000/admin']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/without a path/);
  });
});
