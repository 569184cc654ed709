import { spawn } from 'node:child_process';
import readline from 'node:readline';

/**
 * The floor for a shed answer on this machine: a separate Node.js process whose only work is to answer every
 * POST /screenshot with 503 at once. Driven at the same rate and time as the node, its answer times are what any
 * server gets from the loaded CPUs, the kernel and the client's own event loop; what the node's shed answers take
 * beyond them is the node's share.
 */
export async function startFloorServer(): Promise<{ url: string; close(): void }> {
  const program = `
    const server = require('node:http').createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' });
        res.end('{"error":{"code":"saturated","details":{"reason":"floor"}}}');
      });
    });
    server.listen(0, '127.0.0.1', () => console.log(server.address().port));
    process.stdin.on('end', () => process.exit(0)); // dies with the bench
    process.stdin.resume();`;
  const proc = spawn(process.execPath, ['-e', program], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<string>((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`the floor server exited with ${code}`)));
    readline.createInterface({ input: proc.stdout! }).once('line', resolve);
  });
  return { url: `http://127.0.0.1:${port}`, close: () => proc.kill() };
}
