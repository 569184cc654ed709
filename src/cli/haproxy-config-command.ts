import { settingFlags } from './command-config.js';
import { answeredHelpOrVersion, refuseArguments, readCommandLine, UsageError } from './command-line.js';
import { ConfigError, loadConfig } from '../config/load.js';
import { parseNodeUrl } from '../fleet/node-url.js';
import { renderHaproxyConfig, type SlotServer } from '../haproxy/config.js';
import { maxNodePages } from '../haproxy/layout.js';
import { assignSlots } from '../haproxy/slots.js';

const help = `usage: shotfleet haproxy-config (--nodes URL,URL,… | --hub URL) [options]

Prints an HAProxy config (2.6+) for a fleet: a session backend balanced by a consistent hash of the session
cookie, a session-less backend (leastconn, maxconn = each node's pages, 503s retried elsewhere), health checks
on GET /status and a stats page. Nodes sit in fixed slots so a hub can change them at runtime without a reload.

  --nodes URL,URL,…        node base URLs; each node's /status is read (2 s) for its id and page count
  --hub URL                fetch the config from a hub's GET /haproxy.cfg instead (uses --token)
  --hub-token T            the hub's token (or SHOTFLEET_HUB_TOKEN, else --token / SHOTFLEET_TOKEN)
  --haproxy-slots N        server slots per backend (or SHOTFLEET_HAPROXY_SLOTS; default 64, at least the
                           node count); --slots N is the same
  --socket PATH            with --hub: which of the hub's HAProxy sockets the config names (default its first)
  --maxconn N              per-node maxconn when a node's /status cannot be read (default 2)
  --agent-port P           the nodes' SHOTFLEET_AGENT_PORT: adds agent-check to the session-less backend
  --bind ADDR              client listener (default :8080)
  --stats-bind ADDR        stats page listener (default 127.0.0.1:8404; "" for none)
  --session-cookie NAME    session cookie (default shot_session, or SHOTFLEET_SESSION_COOKIE)
  --haproxy-socket PATH    adds "stats socket PATH level admin" for a hub's Runtime API sync (a unix socket
                           path or a loopback host:port; with a comma list, the first)

Check the result with: haproxy -c -f <file>`;

const ownFlags = { nodes: 'string', hub: 'string', slots: 'string', socket: 'string', maxconn: 'string', bind: 'string', 'stats-bind': 'string' } as const;

export async function run(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  try {
    const args = readCommandLine(argv, { ...settingFlags('hub'), ...ownFlags });
    if (answeredHelpOrVersion(args, help)) return 0;
    refuseArguments(args);
    process.stdout.write(await generate(args.flags, env));
    return 0;
  } catch (err) {
    console.error(`shotfleet haproxy-config: ${(err as Error).message}`);
    return err instanceof UsageError || err instanceof ConfigError ? 2 : 1;
  }
}

async function generate(flags: Record<string, string | boolean>, env: NodeJS.ProcessEnv): Promise<string> {
  const configFlags = Object.fromEntries(Object.entries(flags).filter(([k]) => !(k in ownFlags)));
  const config = loadConfig('hub', configFlags, env);
  const text = (name: string, fallback: string) => {
    const v = flags[name];
    return v === undefined ? fallback : String(v);
  };
  const count = (name: string, fallback: number) => {
    const v = Number(text(name, String(fallback)));
    if (!Number.isInteger(v) || v < 1) throw new UsageError(`--${name} must be a whole number ≥ 1`);
    return v;
  };
  const bind = text('bind', ':8080');
  const statsBind = text('stats-bind', '127.0.0.1:8404');

  if (flags.hub !== undefined) {
    if (flags.nodes !== undefined) throw new UsageError('give --nodes or --hub, not both');
    const hub = text('hub', '').replace(/\/+$/, '');
    const query = new URLSearchParams({ bind, stats: statsBind });
    if (flags.socket !== undefined) query.set('socket', text('socket', ''));
    const url = `${hub}/haproxy.cfg?${query}`;
    const res = await fetch(url, {
      headers: config.HUB_TOKEN ? { Authorization: `Bearer ${config.HUB_TOKEN}` } : {},
      signal: AbortSignal.timeout(10_000),
    });
    const body = await res.text();
    if (!res.ok) throw new Error(`the hub answered ${res.status}${res.status === 401 ? ' (pass its token with --hub-token or --token)' : ''}: ${body}`);
    return body;
  }

  const list = text('nodes', '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (flags.nodes === undefined) throw new UsageError('give --nodes URL,URL,… or --hub URL (see --help)');
  const endpoints = list.map((u) => {
    try {
      return parseNodeUrl(u);
    } catch (err) {
      throw new UsageError(`--nodes: ${(err as Error).message}`);
    }
  });
  const slots = count('slots', Math.max(config.HAPROXY_SLOTS, endpoints.length));
  if (endpoints.length > slots) throw new UsageError(`${endpoints.length} nodes do not fit in --slots ${slots}`);
  const fallbackMaxconn = count('maxconn', 2);
  const explicitMaxconn = flags.maxconn !== undefined;

  const described = await Promise.all(endpoints.map((e) => describeNode(e.url)));
  const ids = endpoints.map((e, i) => described[i]?.id ?? `${e.host}:${e.port}`);
  // The hub's own placement, so this file and a hub's agree on every node's slot.
  const placed = assignSlots(ids, slots);
  const servers: SlotServer[] = endpoints.map((e, i) => {
    const id = ids[i];
    if (!described[i] && !explicitMaxconn) console.error(`note: ${e.url}/status did not answer; maxconn ${fallbackMaxconn} for it`);
    return {
      slot: placed.get(id)!,
      host: e.host,
      port: e.port,
      id,
      maxconn: explicitMaxconn ? fallbackMaxconn : (described[i]?.pages ?? fallbackMaxconn),
    };
  });
  return renderHaproxyConfig({
    slots,
    servers,
    bind,
    statsBind,
    sessionCookie: config.SESSION_COOKIE,
    agentPort: config.AGENT_PORT,
    runtimeSocket: config.HAPROXY_SOCKET?.[0],
    defaultMaxconn: fallbackMaxconn,
  });
}

/** A node's own id and page count, so the slot matches what its hub would pick. */
async function describeNode(url: string): Promise<{ id?: string; pages?: number } | undefined> {
  try {
    const res = await fetch(`${url}/status`, { signal: AbortSignal.timeout(2000) });
    const body = (await res.json()) as { node?: unknown; pages?: { max?: unknown } };
    const pages = Number(body.pages?.max);
    // The figure becomes maxconn: only a sane whole number of pages is taken.
    return {
      id: typeof body.node === 'string' && body.node ? body.node : undefined,
      pages: Number.isInteger(pages) && pages > 0 && pages <= maxNodePages ? pages : undefined,
    };
  } catch {
    return undefined;
  }
}
