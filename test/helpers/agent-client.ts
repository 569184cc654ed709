import net from 'node:net';

/** Connects like HAProxy's agent-check: reads until the agent closes, bounded by 5 s; `reset` drops the connection at the first byte. */
export function askAgent(port: number, opts: { reset?: boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('agent did not answer within 5 s'));
    }, 5000);
    socket.setEncoding('utf8');
    socket.on('data', (d) => {
      text += d;
      if (opts.reset) socket.resetAndDestroy();
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
