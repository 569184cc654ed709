import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** What one route answers: a string is served as text/html with status 200. */
export type Route =
  | string
  | { body: string | Buffer; type?: string; status?: number; headers?: Record<string, string> }
  | ((req: http.IncomingMessage, res: http.ServerResponse) => void);

export interface SeenRequest {
  method: string;
  /** Path with its query string. */
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface TestSite {
  /** http://127.0.0.1:PORT */
  url: string;
  /** Adds or replaces a route; the path is matched without its query string. */
  route(path: string, answer: Route): void;
  /** How many requests reached `path` (any query string). */
  hits(path: string): number;
  /** Every request that reached `path`, oldest first. */
  requests(path: string): SeenRequest[];
  close(): Promise<void>;
}

/**
 * A small web site on 127.0.0.1 for a node to render: routes answer with the HTML (or bytes) a test
 * hands in, and every request is recorded with its headers and body, so a test can tell what the
 * page asked for — or never asked for. Unknown paths answer 404.
 */
export async function startTestSite(routes: Record<string, Route> = {}): Promise<TestSite> {
  const table = new Map<string, Route>(Object.entries(routes));
  const seen = new Map<string, SeenRequest[]>();

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0];
      const list = seen.get(path) ?? [];
      list.push({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      seen.set(path, list);
      const answer = table.get(path);
      if (answer === undefined) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('no such test route');
      } else if (typeof answer === 'function') {
        answer(req, res);
      } else if (typeof answer === 'string') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(answer);
      } else {
        res
          .writeHead(answer.status ?? 200, { 'content-type': answer.type ?? 'text/html; charset=utf-8', ...answer.headers })
          .end(answer.body);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    route: (path, answer) => void table.set(path, answer),
    hits: (path) => seen.get(path)?.length ?? 0,
    requests: (path) => [...(seen.get(path) ?? [])],
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A whole page whose body is `body`, with no margins so coordinates in the page are image coordinates. */
export function page(body: string, head = ''): string {
  return `<!doctype html><html><head><meta charset="utf-8"><style>html,body{margin:0;padding:0}</style>${head}</head><body>${body}</body></html>`;
}
