import net from 'node:net';
import type { Logger } from '../log/logger.js';

export interface AgentState {
  draining: boolean;
  /** Share of free capacity, 0..1 (free pages ÷ concurrency limit). */
  freeShare: number;
}

/**
 * The HAProxy agent-check answer. `ready` is always sent with `up` because after a `drain` a plain `up` leaves the
 * server in DRAIN (HAProxy 2.6); the weight never drops below 1 % while serving, so a busy node stays in rotation
 * (0 % would stop HAProxy sending it anything, which is what `drain` is for).
 */
export function agentReply(state: AgentState): string {
  if (state.draining) return 'drain\n';
  const share = Number.isFinite(state.freeShare) ? state.freeShare : 0;
  const percent = Math.min(100, Math.max(1, Math.round(share * 100)));
  return `ready up ${percent}%\n`;
}

/**
 * A TCP listener speaking HAProxy's agent-check protocol: one line per connection, then close.
 * HAProxy resets the connection after reading: socket errors are expected and only logged at debug.
 */
export function startAgent(opts: { port: number; host: string; state: () => AgentState; log: Logger }): Promise<{ port: number; close(): Promise<void> }> {
  const server = net.createServer((socket) => {
    socket.on('error', (err) => opts.log.debug({ err: err.message }, 'agent connection error'));
    socket.end(agentReply(opts.state()));
  });
  return new Promise((resolve, reject) => {
    const failed = (err: Error) =>
      reject(new Error(`the HAProxy agent cannot listen on ${opts.host}:${opts.port} (${err.message}); set SHOTFLEET_AGENT_PORT to a free port`));
    server.once('error', failed);
    server.listen(opts.port, opts.host, () => {
      server.off('error', failed);
      server.on('error', (err) => opts.log.error({ err: err.message }, 'agent listener error'));
      const address = server.address() as net.AddressInfo;
      opts.log.info({ host: opts.host, port: address.port }, 'agent listening');
      resolve({
        port: address.port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.unref();
          }),
      });
    });
  });
}
