import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { PNG } from 'pngjs';
import type { Corpus } from './corpus.js';

/**
 * A realistic corpus, built in memory at start (deterministic, no network): four kinds of page of 1–2 MB each
 * — a tall article, a shop grid, a dashboard and an animated landing page — with two web fonts, 20–40 images of
 * several sizes, a shared script bundle of a few hundred KB that builds part of the DOM and forces layout, and CSS
 * animations. Each page is served from one loopback host and takes its fonts, bundle and half its images from the
 * next one (a "CDN"), so a render crosses sites as real pages do. Assets are cacheable (max-age); pages are not.
 */

/** Two fonts from Debian's fonts-dejavu-core (a dependency of fontconfig, so present wherever Chromium is). */
const fontCandidates = [['/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf', '/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf']];

function findFonts(): [Buffer, Buffer] {
  for (const [a, b] of fontCandidates) {
    if (fs.existsSync(a) && fs.existsSync(b)) return [fs.readFileSync(a), fs.readFileSync(b)];
  }
  const found = listFonts('/usr/share/fonts').sort();
  if (found.length < 2) {
    throw new Error('the realistic corpus needs two .ttf/.otf fonts under /usr/share/fonts: apt-get install -y fonts-dejavu-core');
  }
  return [fs.readFileSync(found[0]), fs.readFileSync(found[1])];
}

function listFonts(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return listFonts(full);
    return /\.(ttf|otf)$/i.test(e.name) ? [full] : [];
  });
}

/** A deterministic pseudo-random sequence (LCG), so every run serves the same bytes. */
function rng(seed: number): () => number {
  let state = (seed * 2654435761) >>> 0 || 1;
  return () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 2 ** 32;
  };
}

/** A photo-like PNG: smooth colour fields, a few shapes and some grain (grain is what makes real photos weigh). */
function photo(width: number, height: number, seed: number): Buffer {
  const png = new PNG({ width, height });
  const next = rng(seed);
  const hue = next() * 255;
  const blobs = Array.from({ length: 6 }, () => ({
    x: next() * width,
    y: next() * height,
    r: (0.1 + next() * 0.4) * Math.min(width, height),
    c: next() * 255,
  }));
  const grainRow = new Uint8Array((width >> 3) + 1);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let r = (hue + (x / width) * 90) & 255;
      let g = ((y / height) * 200 + 30) & 255;
      const b = (hue * 0.5 + ((x + y) / (width + height)) * 150) & 255;
      for (const blob of blobs) {
        const dx = x - blob.x;
        const dy = y - blob.y;
        if (dx * dx + dy * dy < blob.r * blob.r) {
          r = (r + blob.c) >> 1;
          g = (g + 255 - blob.c) >> 1;
        }
      }
      // Grain in 8×8 blocks, a few levels deep: photo-like weight (~0.3 byte a pixel) rather than noise's ~3.
      if ((x & 7) === 0 && (y & 7) === 0) grainRow[x >> 3] = (next() * 3) | 0;
      const grain = grainRow[x >> 3];
      const o = (y * width + x) * 4;
      png.data[o] = Math.min(255, r + grain);
      png.data[o + 1] = Math.min(255, g + grain);
      png.data[o + 2] = Math.min(255, b + grain);
      png.data[o + 3] = 255;
    }
  }
  return PNG.sync.write(png, { deflateLevel: 6 });
}

/** Image sizes a page uses, name → [width, height]. Names are stable so each page links the same files every run. */
const imageSizes: [number, number][] = [
  [960, 360],
  [480, 270],
  [480, 270],
  [400, 225],
  [360, 200],
  [320, 180],
  [240, 180],
  [240, 180],
  [240, 240],
  [200, 200],
  [160, 160],
  [160, 160],
  [120, 90],
  [96, 96],
  [64, 64],
];
/** Each page draws its images from a pool of this many (size, seed) pairs. */
const poolSize = 48;
const imageName = (i: number) => {
  const [w, h] = imageSizes[i % imageSizes.length];
  return `img/${i}-${w}x${h}.png`;
};

function lorem(next: () => number, words: number): string {
  const vocabulary =
    'the of render pixel font layout browser window request cache queue shot fleet node page image script style frame paint encode decode latency throughput memory process thread isolate context storage cookie origin site network loopback host'.split(
      ' ',
    );
  return Array.from({ length: words }, () => vocabulary[(next() * vocabulary.length) | 0]).join(' ');
}

const stylesheet = (cdn: string) =>
  [
    `@font-face{font-family:"Corpus Serif";src:url(${cdn}/static/serif.ttf) format("truetype");font-display:block}`,
    `@font-face{font-family:"Corpus Mono";src:url(${cdn}/static/mono.ttf) format("truetype");font-display:block}`,
    'body{margin:0;font:17px/1.6 "Corpus Serif",serif;color:#1d1d1f;background:#fbfbfd}',
    'header{position:sticky;top:0;display:flex;gap:24px;padding:14px 32px;background:#fff;box-shadow:0 1px 8px #0002;z-index:5}',
    'main{max-width:1100px;margin:0 auto;padding:24px}',
    'h1,h2{font-family:"Corpus Serif",serif;letter-spacing:-.3px}code,pre,.num{font-family:"Corpus Mono",monospace}',
    'pre{background:#f2f2f5;padding:12px;border-radius:6px;overflow:hidden}',
    'figure{margin:18px 0}figure img{max-width:100%;border-radius:6px;display:block}',
    '.grid{display:grid;grid-template-columns:repeat(4,1fr);gap:16px}.card{background:#fff;border-radius:10px;padding:10px;box-shadow:0 2px 10px #0001}',
    '.card img{width:100%;aspect-ratio:1;object-fit:cover;border-radius:8px}.price{font:600 18px "Corpus Mono",monospace}',
    'table{border-collapse:collapse;width:100%;font-size:13px}td,th{padding:3px 6px;border-bottom:1px solid #e3e3e8;text-align:right}',
    '.hero{position:relative;overflow:hidden;border-radius:14px}.hero img{width:100%;display:block}',
    '.spin{animation:spin 3s linear infinite}.pulse{animation:pulse 1.4s ease-in-out infinite}.slide{animation:slide 6s linear infinite}',
    '@keyframes spin{to{transform:rotate(360deg)}}@keyframes pulse{50%{opacity:.4;transform:scale(1.08)}}@keyframes slide{from{transform:translateX(0)}to{transform:translateX(-50%)}}',
    '.badge{display:inline-block;width:48px;height:48px;border-radius:50%;background:conic-gradient(#f60,#fc0,#0c6,#06f,#f60);margin:6px}',
    '.marquee{white-space:nowrap;overflow:hidden}.marquee div{display:inline-block}',
    ...Array.from({ length: 600 }, (_, i) => `.u${i}{color:hsl(${(i * 37) % 360},45%,32%);margin-top:${i % 9}px;padding-left:${i % 5}px}`),
  ].join('\n');

/** The shared bundle: a data set (most of its weight, as in real bundles) and the code that builds DOM from it. */
function bundle(): string {
  const next = rng(99);
  const records = Array.from({ length: 2400 }, (_, i) => ({
    id: i,
    name: lorem(next, 4),
    price: Math.round(next() * 100000) / 100,
    qty: (next() * 500) | 0,
    region: ['north', 'south', 'east', 'west'][i % 4],
    trend: Array.from({ length: 6 }, () => (next() * 100) | 0),
  }));
  const code = `
(function () {
  var page = document.body.dataset.page;
  function el(tag, cls, text) { var e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = text; return e; }
  function table(target, rows) {
    var t = el('table'); var head = el('tr');
    ['id', 'name', 'region', 'qty', 'price', 'trend'].forEach(function (h) { head.appendChild(el('th', null, h)); });
    t.appendChild(head);
    rows.forEach(function (r) {
      var tr = el('tr', 'u' + (r.id % 600));
      [r.id, r.name, r.region, r.qty, r.price.toFixed(2), r.trend.join(' ')].forEach(function (v) { tr.appendChild(el('td', 'num', String(v))); });
      t.appendChild(tr);
    });
    target.appendChild(t);
    // Read layout row by row, as widgets that size themselves do: forces style and layout passes.
    var total = 0; for (var i = 0; i < t.rows.length; i += 25) { t.rows[i].style.height = (20 + (i % 3)) + 'px'; total += t.rows[i].offsetHeight; }
    return total;
  }
  function chart(target, rows) {
    var ns = 'http://www.w3.org/2000/svg'; var svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('width', '1000'); svg.setAttribute('height', '260');
    rows.forEach(function (r, i) { var c = document.createElementNS(ns, 'rect'); c.setAttribute('x', String(i * 2.5)); c.setAttribute('y', String(260 - r.qty / 2)); c.setAttribute('width', '2'); c.setAttribute('height', String(r.qty / 2)); c.setAttribute('fill', 'hsl(' + (r.id * 7 % 360) + ',60%,50%)'); svg.appendChild(c); });
    target.appendChild(svg);
  }
  var mount = document.getElementById('app'); if (!mount) return;
  var sorted = DATA.slice().sort(function (a, b) { return b.price - a.price; });
  if (page === 'dashboard') { chart(mount, DATA.slice(0, 400)); table(mount, sorted.slice(0, 300)); }
  else if (page === 'shop') { DATA.slice(0, 24).forEach(function (r, i) { var c = mount.children[i]; if (c) c.appendChild(el('div', 'price', '$' + r.price.toFixed(2))); }); table(mount.parentNode, sorted.slice(0, 60)); }
  else if (page === 'article') { var toc = el('ol'); document.querySelectorAll('h2').forEach(function (h) { toc.appendChild(el('li', null, h.textContent)); }); mount.appendChild(toc); table(mount, sorted.slice(0, 40)); }
  else { for (var i = 0; i < 40; i++) mount.appendChild(el('span', 'badge ' + (i % 2 ? 'spin' : 'pulse'))); }
})();`;
  return `var DATA = ${JSON.stringify(records)};\n${code}`;
}

interface PageSpec {
  name: string;
  body: (img: (i: number) => string, next: () => number) => string;
}

const specs: PageSpec[] = [
  {
    name: 'article',
    body: (img, next) =>
      `<main><h1>${lorem(next, 8)}</h1><figure>${img(27)}</figure><div id="app"></div>` +
      Array.from({ length: 27 }, (_, i) => {
        const code = i % 4 === 0 ? `<pre><code>${Array.from({ length: 6 }, () => lorem(next, 9)).join('\n')}</code></pre>` : '';
        return `<h2>${lorem(next, 5)}</h2><p>${lorem(next, 120)}</p>${code}<figure>${img(i)}<figcaption>${lorem(next, 10)}</figcaption></figure><p>${lorem(next, 90)}</p>`;
      }).join('') +
      '</main>',
  },
  {
    name: 'shop',
    body: (img, next) =>
      `<main><div class="hero">${img(0)}</div><h1>${lorem(next, 4)}</h1><div class="grid" id="app">` +
      Array.from({ length: 20 }, (_, i) => `<div class="card">${img(i + 1)}<h3>${lorem(next, 3)}</h3><p>${lorem(next, 14)}</p></div>`).join('') +
      `</div><div class="marquee"><div class="slide">${Array.from({ length: 9 }, (_, i) => img(21 + i)).join('')}</div></div></main>`,
  },
  {
    name: 'dashboard',
    body: (img, next) =>
      `<main><h1>${lorem(next, 3)}</h1><div>${Array.from({ length: 12 }, (_, i) => `<span class="pulse" style="display:inline-block">${img(i)}</span>`).join('')}</div>` +
      `<div class="grid">${Array.from({ length: 10 }, (_, i) => `<div class="card"><b class="num">${(next() * 1e6).toFixed(0)}</b> ${img(12 + i)}</div>`).join('')}</div>` +
      `<div id="app"></div><p>${lorem(next, 200)}</p></main>`,
  },
  {
    name: 'landing',
    body: (img, next) =>
      `<main><div class="hero">${img(0)}<h1 style="position:absolute;top:30%;left:6%;color:#fff" class="pulse">${lorem(next, 5)}</h1></div>` +
      `<div id="app"></div><div class="grid">${Array.from({ length: 16 }, (_, i) => `<div class="card ${i % 3 === 0 ? 'pulse' : ''}">${img(i + 1)}<p>${lorem(next, 30)}</p></div>`).join('')}</div>` +
      `<div class="marquee"><div class="slide">${Array.from({ length: 9 }, (_, i) => img(17 + i)).join('')}</div></div><p>${lorem(next, 300)}</p></main>`,
  },
];

function renderPage(spec: PageSpec, pageIndex: number, self: string, cdn: string): string {
  const next = rng(1000 + pageIndex);
  // Half the images from the page's own host, half from the CDN host; the pool index is fixed per page and slot.
  const img = (i: number) => {
    const n = (pageIndex * 11 + i * 5) % poolSize;
    const [w, h] = imageSizes[n % imageSizes.length];
    const host = i % 2 === 0 ? self : cdn;
    return `<img src="${host}/${imageName(n)}" width="${w}" height="${h}" alt="">`;
  };
  const head =
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${spec.name}</title>` +
    `<link rel="stylesheet" href="${cdn}/static/site.css"></head>` +
    `<body data-page="${spec.name}"><header><b>${spec.name}</b>${Array.from({ length: 8 }, () => `<a href="#">${lorem(next, 1)}</a>`).join('')}</header>`;
  return `${head}${spec.body(img, next)}<script src="${cdn}/static/app.js"></script></body></html>`;
}

export interface RealisticCorpus extends Corpus {
  /** Bytes a cold load of each page fetches (document + every asset it links), by page name. */
  pageBytes: Record<string, number>;
}

export async function startRealisticCorpus(hostCount = 3): Promise<RealisticCorpus> {
  const [serif, mono] = findFonts();
  const images = new Map(Array.from({ length: poolSize }, (_, i) => [imageName(i), photo(...imageSizes[i % imageSizes.length], i + 1)] as const));
  const script = bundle();
  const assets = new Map<string, { type: string; body: Buffer | string }>([
    ['static/serif.ttf', { type: 'font/ttf', body: serif }],
    ['static/mono.ttf', { type: 'font/ttf', body: mono }],
    ['static/app.js', { type: 'text/javascript', body: script }],
    ...[...images].map(([name, body]) => [name, { type: 'image/png', body }] as const),
  ]);
  let port = 0;
  const hosts = Array.from({ length: hostCount }, (_, i) => `127.0.0.${i + 1}`);
  const origin = (hostIndex: number) => `http://${hosts[hostIndex % hosts.length]}:${port}`;

  const server = http.createServer((req, res) => {
    const name = (req.url ?? '/').slice(1).split('?')[0];
    const cors = { 'access-control-allow-origin': '*' };
    if (name === 'static/site.css') {
      const host = req.headers.host ?? '';
      res.writeHead(200, { 'content-type': 'text/css', 'cache-control': 'max-age=3600', ...cors }).end(stylesheet(`http://${host}`));
      return;
    }
    const asset = assets.get(name);
    if (asset) {
      res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'max-age=3600', ...cors }).end(asset.body);
      return;
    }
    const match = /^p\/(\w+)$/.exec(name);
    const specIndex = specs.findIndex((s) => s.name === match?.[1]);
    if (specIndex < 0) {
      res.writeHead(404).end();
      return;
    }
    const hostIndex = Math.max(0, hosts.indexOf((req.headers.host ?? '').split(':')[0]));
    const html = renderPage(specs[specIndex], specIndex, origin(hostIndex), origin(hostIndex + 1));
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(html);
  });
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  port = (server.address() as AddressInfo).port;

  const pageBytes: Record<string, number> = {};
  specs.forEach((spec, i) => {
    const html = renderPage(spec, i, origin(0), origin(1));
    const linked = new Set([...html.matchAll(/(?:src|href)="http:\/\/[^/]+\/([^"]+)"/g)].map((m) => m[1]));
    let bytes = Buffer.byteLength(html) + Buffer.byteLength(stylesheet(origin(1))) + serif.length + mono.length;
    for (const name of linked) bytes += name === 'static/site.css' ? 0 : Buffer.byteLength(assets.get(name)?.body ?? '');
    pageBytes[spec.name] = bytes;
  });

  const urls: string[] = [];
  for (let i = 0; i < hosts.length * specs.length; i++) urls.push(`http://${hosts[i % hosts.length]}:${port}/p/${specs[i % specs.length].name}`);
  return {
    port,
    urls,
    hosts,
    pageBytes,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
