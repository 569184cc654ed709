import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Pages that fight the renderer, served on a loopback host of their own:
 *   /loop      — a script that never returns: the load event never fires and the renderer's main thread is stuck;
 *   /popups    — loads, then opens windows as fast as it can until the page is taken away;
 *   /endless   — a document whose body keeps trickling in and never ends.
 */
const loop = '<!doctype html><html><head><title>loop</title></head><body><h1>spinning</h1><script>for(;;){}</script></body></html>';
const popups = `<!doctype html><html><head><title>popups</title></head><body><h1>popups</h1><script>
  setInterval(() => { for (let i = 0; i < 50; i++) window.open('about:blank', '_blank'); }, 20);
</script></body></html>`;

export interface HostilePages {
  urls: string[];
  host: string;
  close(): Promise<void>;
}

export async function startHostilePages(host: string): Promise<HostilePages> {
  const trickling = new Set<NodeJS.Timeout>();
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/loop' || path === '/popups') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(path === '/loop' ? loop : popups);
      return;
    }
    if (path === '/endless') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.write('<!doctype html><html><head><title>endless</title></head><body><h1>still loading</h1>');
      let n = 0;
      const timer = setInterval(() => res.write(`<p>${++n}</p>`), 250);
      trickling.add(timer);
      res.on('close', () => {
        clearInterval(timer);
        trickling.delete(timer);
      });
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host,
    urls: ['loop', 'popups', 'endless'].map((p) => `http://${host}:${port}/${p}`),
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of trickling) clearInterval(t);
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
