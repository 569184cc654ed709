import net from 'node:net';

/** HAProxy's Runtime API (the stats socket at `level admin`): one connection per batch of commands. */
export interface RuntimeApi {
  /** Runs the commands in one connection; resolves with HAProxy's answer to each, in order. */
  run(commands: string[]): Promise<string[]>;
  /**
   * Runs groups of commands over up to `connections` connections at once, each group whole and in order on one
   * connection; resolves with the answers in the groups' order. HAProxy answers one command per turn of its
   * event loop, so on a busy machine one connection is the bottleneck of a large sync.
   */
  runGroups(groups: string[][], connections?: number): Promise<string[][]>;
  /** Slot servers as HAProxy sees them now. */
  servers(backend: string): Promise<ServerState[]>;
}

export interface ServerState {
  backend: string;
  name: string;
  address: string;
  port: number;
  /** Put in maintenance by an operator, the config or DNS: takes no traffic at all. */
  maintenance: boolean;
  /** Drained by an operator or the hub (not by the agent): takes no new sessions. */
  drained: boolean;
  /** Passing its health checks. */
  running: boolean;
}

// `show servers state` admin flags (src/server.h): FMAINT | IMAINT | RMAINT, and FDRAIN.
const adminMaintenance = 0x01 | 0x02 | 0x20;
const adminForcedDrain = 0x08;

/** `socket` is a Unix socket path, or host:port for a TCP stats socket. */
export function createRuntimeApi(socket: string, timeoutMs = 5000): RuntimeApi {
  const connectOptions = (): net.NetConnectOpts => {
    if (socket.includes('/')) return { path: socket };
    const colon = socket.lastIndexOf(':');
    return {
      host: socket
        .slice(0, colon)
        .replace(/^ipv[46]@/, '')
        .replace(/^\[|\]$/g, ''),
      port: Number(socket.slice(colon + 1)),
    };
  };

  async function run(commands: string[]): Promise<string[]> {
    if (commands.length === 0) return [];
    for (const c of commands) {
      if (/[;\n]/.test(c)) throw new Error(`runtime API command must not contain ";" or a newline: ${c}`);
    }
    // Interactive mode ("prompt") ends every answer with "\n> ", which lets us split the answers apart.
    const script = `prompt\n${commands.join('\n')}\nquit\n`;
    const raw = await exchange(connectOptions(), script, timeoutMs);
    const answers = raw.split('\n> ').slice(1, commands.length + 1);
    return answers.map((a) => a.trim());
  }

  return {
    run,
    async runGroups(groups, connections = 4) {
      const lanes = Array.from({ length: Math.max(1, Math.min(connections, groups.length)) }, () => [] as number[]);
      // Round-robin by group, balanced by command count.
      const sizes = lanes.map(() => 0);
      groups.forEach((g, i) => {
        const lane = sizes.indexOf(Math.min(...sizes));
        lanes[lane].push(i);
        sizes[lane] += g.length;
      });
      const answers: string[][] = groups.map(() => []);
      await Promise.all(
        lanes.map(async (indexes) => {
          const flat = await run(indexes.flatMap((i) => groups[i]));
          let at = 0;
          for (const i of indexes) {
            answers[i] = flat.slice(at, at + groups[i].length);
            at += groups[i].length;
          }
        }),
      );
      return answers;
    },
    async servers(backend) {
      const [answer] = await run([`show servers state ${backend}`]);
      return parseServersState(answer ?? '');
    },
  };
}

function exchange(options: net.NetConnectOpts, script: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const conn = net.connect(options, () => conn.end(script));
    conn.setTimeout(timeoutMs, () => conn.destroy(new Error(`HAProxy runtime API did not answer within ${timeoutMs} ms`)));
    conn.on('data', (d) => chunks.push(d));
    conn.on('error', (err) =>
      reject(new Error(`HAProxy runtime API unreachable (${err.message}); check SHOTFLEET_HAPROXY_SOCKET and the "stats socket … level admin" line`)),
    );
    conn.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

/** Parses `show servers state` (format version 1) by its header line. */
export function parseServersState(text: string): ServerState[] {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const header = lines.find((l) => l.startsWith('# be_id'));
  if (!header) return [];
  const columns = header.slice(2).split(' ');
  const col = (name: string) => columns.indexOf(name);
  const [be, name, addr, op, admin, port] = ['be_name', 'srv_name', 'srv_addr', 'srv_op_state', 'srv_admin_state', 'srv_port'].map(col);
  return lines
    .filter((l) => !l.startsWith('#') && /^\d/.test(l))
    .map((l) => l.split(' '))
    .filter((f) => f.length >= columns.length)
    .map((f) => ({
      backend: f[be],
      name: f[name],
      address: f[addr],
      port: Number(f[port]),
      maintenance: (Number(f[admin]) & adminMaintenance) !== 0,
      drained: (Number(f[admin]) & adminForcedDrain) !== 0,
      running: Number(f[op]) === 2,
    }));
}
