import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PNG } from 'pngjs';

/**
 * A small local corpus: a few pages of different weight (text, tables, gradients, SVG), served on 0.0.0.0 so that
 * 127.0.0.1, 127.0.0.2, … all reach it. Chrome treats each IP as its own site and swaps renderer processes
 * between them (FIELD-NOTES), so cycling hosts is closer to real traffic than one URL over and over.
 */
const pages: Record<string, string> = {
  article: page('Article', Array.from({ length: 30 }, (_, i) => `<h2>Section ${i + 1}</h2><p>${lorem(6)}</p>`).join('')),
  table: page(
    'Table',
    `<table>${Array.from({ length: 60 }, (_, r) => `<tr>${Array.from({ length: 8 }, (_, c) => `<td>${r * 8 + c}</td>`).join('')}</tr>`).join('')}</table>`,
  ),
  gradients: page(
    'Gradients',
    Array.from(
      { length: 24 },
      (_, i) => `<div class="tile" style="background:linear-gradient(${i * 15}deg,hsl(${i * 15},70%,60%),hsl(${i * 15 + 120},70%,40%))"></div>`,
    ).join(''),
  ),
  svg: page(
    'SVG',
    `<svg width="1200" height="700">${Array.from({ length: 300 }, (_, i) => `<circle cx="${(i * 37) % 1200}" cy="${(i * 53) % 700}" r="${10 + (i % 30)}" fill="hsl(${i * 7},60%,50%)" opacity="0.6"/>`).join('')}</svg>`,
  ),
};

/**
 * Sub-resources for `startCorpus(n, { assets: true })`: a shared stylesheet and a few photos-like images, so a
 * render also pays for the requests a real page makes (and, on a node, for its URL policy and proxy).
 */
const stylesheet = [
  'body{background:#fafafa}h1{font:700 40px/1.2 Georgia,serif;letter-spacing:-.5px}h2{color:#334;border-bottom:2px solid #dde}',
  '.hero{display:flex;gap:12px;margin:12px 0}.hero img{width:300px;height:200px;border-radius:8px;object-fit:cover}',
  ...Array.from({ length: 200 }, (_, i) => `.c${i}{color:hsl(${i * 9},50%,35%);margin:${i % 7}px}`),
].join('\n');
const imageCount = 3;
const images = Array.from({ length: imageCount }, (_, i) => noisyImage(300, 200, i));

function noisyImage(width: number, height: number, seed: number): Buffer {
  const png = new PNG({ width, height });
  let state = seed * 7919 + 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      state = (state * 1103515245 + 12345) & 0x7fffffff;
      const o = (y * width + x) * 4;
      png.data[o] = (x + seed * 80) & 255;
      png.data[o + 1] = (y * 2 + (state & 31)) & 255;
      png.data[o + 2] = (seed * 90 + ((x * y) >> 6)) & 255;
      png.data[o + 3] = 255;
    }
  }
  return PNG.sync.write(png);
}

function withAssets(html: string): string {
  const hero = `<div class="hero">${images.map((_, i) => `<img src="/img/${i}.png" alt="">`).join('')}</div>`;
  return html.replace('</head>', '<link rel="stylesheet" href="/style.css"></head>').replace('</h1>', `</h1>${hero}`);
}

function page(title: string, body: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title><style>
body{font:16px/1.5 system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse}td{border:1px solid #ccc;padding:2px 8px}
.tile{display:inline-block;width:180px;height:120px;margin:6px;border-radius:12px;box-shadow:0 4px 12px #0004}
</style></head><body><h1>${title}</h1>${body}</body></html>`;
}

function lorem(sentences: number): string {
  const words = 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua'.split(' ');
  return Array.from({ length: sentences }, (_, s) => `${Array.from({ length: 14 }, (_, w) => words[(s * 5 + w * 3) % words.length]).join(' ')}.`).join(' ');
}

function assetFor(name: string): { type: string; body: string | Buffer } | undefined {
  if (name === 'style.css') return { type: 'text/css', body: stylesheet };
  const image = /^img\/(\d+)\.png$/.exec(name);
  if (image && Number(image[1]) < imageCount) return { type: 'image/png', body: images[Number(image[1])] };
  return undefined;
}

export interface Corpus {
  port: number;
  /** One URL per page and host, hosts 127.0.0.1 … 127.0.0.<hosts>, interleaved so consecutive URLs differ in site. */
  urls: string[];
  /** The hosts, for SHOTFLEET_ALLOW_HOSTS. */
  hosts: string[];
  close(): Promise<void>;
}

export interface CorpusOptions {
  /** Pages link a stylesheet and a few images (cacheable, as on a real site). */
  assets?: boolean;
}

export async function startCorpus(hostCount = 4, opts: CorpusOptions = {}): Promise<Corpus> {
  const server = http.createServer((req, res) => {
    const name = (req.url ?? '/').slice(1).split('?')[0];
    const asset = opts.assets ? assetFor(name) : undefined;
    if (asset) {
      res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'max-age=3600' }).end(asset.body);
      return;
    }
    const html = pages[name];
    if (!html) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(opts.assets ? withAssets(html) : html);
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
