import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A small local corpus: a few pages of different weight (text, tables, gradients, SVG), served on 0.0.0.0 so that
 * 127.0.0.1, 127.0.0.2, … all reach it. Chrome treats each IP as its own site and swaps renderer processes
 * between them (FIELD-NOTES), so cycling hosts is closer to real traffic than one URL over and over.
 */
const pages: Record<string, string> = {
  article: page(
    'Article',
    Array.from({ length: 30 }, (_, i) => `<h2>Section ${i + 1}</h2><p>${lorem(6)}</p>`).join(''),
  ),
  table: page(
    'Table',
    `<table>${Array.from({ length: 60 }, (_, r) => `<tr>${Array.from({ length: 8 }, (_, c) => `<td>${r * 8 + c}</td>`).join('')}</tr>`).join('')}</table>`,
  ),
  gradients: page(
    'Gradients',
    Array.from({ length: 24 }, (_, i) => `<div class="tile" style="background:linear-gradient(${i * 15}deg,hsl(${i * 15},70%,60%),hsl(${i * 15 + 120},70%,40%))"></div>`).join(''),
  ),
  svg: page(
    'SVG',
    `<svg width="1200" height="700">${Array.from({ length: 300 }, (_, i) => `<circle cx="${(i * 37) % 1200}" cy="${(i * 53) % 700}" r="${10 + (i % 30)}" fill="hsl(${i * 7},60%,50%)" opacity="0.6"/>`).join('')}</svg>`,
  ),
};

function page(title: string, body: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title><style>
body{font:16px/1.5 system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse}td{border:1px solid #ccc;padding:2px 8px}
.tile{display:inline-block;width:180px;height:120px;margin:6px;border-radius:12px;box-shadow:0 4px 12px #0004}
</style></head><body><h1>${title}</h1>${body}</body></html>`;
}

function lorem(sentences: number): string {
  const words = 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua'.split(' ');
  return Array.from({ length: sentences }, (_, s) => Array.from({ length: 14 }, (_, w) => words[(s * 5 + w * 3) % words.length]).join(' ') + '.').join(' ');
}

export interface Corpus {
  port: number;
  /** One URL per page and host, hosts 127.0.0.1 … 127.0.0.<hosts>, interleaved so consecutive URLs differ in site. */
  urls: string[];
  /** The hosts, for SHOTFLEET_ALLOW_HOSTS. */
  hosts: string[];
  close(): Promise<void>;
}

export async function startCorpus(hostCount = 4): Promise<Corpus> {
  const server = http.createServer((req, res) => {
    const name = (req.url ?? '/').slice(1).split('?')[0];
    const html = pages[name];
    if (!html) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(html);
  });
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  const { port } = server.address() as AddressInfo;
  const hosts = Array.from({ length: hostCount }, (_, i) => `127.0.0.${i + 1}`);
  const names = Object.keys(pages);
  const urls: string[] = [];
  for (let i = 0; i < hosts.length * names.length; i++) urls.push(`http://${hosts[i % hosts.length]}:${port}/${names[i % names.length]}`);
  return {
    port,
    urls,
    hosts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
