import { createHash } from 'node:crypto';
import { html, raw } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import { optionDocs } from './option-docs.js';
import type { JsonSchema, RequestSurface } from './request-schema.js';

export interface DocsPage {
  html: string;
  /** A strict Content-Security-Policy for the page: its one script and stylesheet by hash, nothing from elsewhere. */
  csp: string;
}

/** Options the form offers as fields of their own (generated from their schemas); every other one goes in the JSON box. */
const formFields = ['format', 'quality', 'fullPage', 'waitUntil', 'delay', 'colorScheme'];

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

type FieldSchema = JsonSchema & { type?: string; enum?: string[]; minimum?: number; maximum?: number; default?: unknown; description?: string };

/**
 * hono/html's template escapes every interpolated string; with no promise among the values it returns the
 * markup itself, which is all this page ever interpolates.
 */
const markup = (strings: TemplateStringsArray, ...values: unknown[]) => html(strings, ...values) as HtmlEscapedString;

/** A form control for one option, from its JSON Schema: a select for an enum, a checkbox for a bool, a number box… */
function control(name: string, s: FieldSchema, label = name, path?: string): HtmlEscapedString {
  const id = `f-${name}`;
  const title = s.description ?? '';
  const caption = markup`<label for="${id}" title="${title}">${label}</label>`;
  if (s.enum) {
    const blank = s.default === undefined ? markup`<option value="">(default)</option>` : '';
    const options = s.enum.map((v) => (v === s.default ? markup`<option selected>${v}</option>` : markup`<option>${v}</option>`));
    return markup`${caption}<select id="${id}" name="${name}" data-kind="string">${blank}${options}</select>`;
  }
  if (s.type === 'boolean') {
    return s.default === true
      ? markup`${caption}<input id="${id}" type="checkbox" name="${name}" data-kind="boolean" checked>`
      : markup`${caption}<input id="${id}" type="checkbox" name="${name}" data-kind="boolean">`;
  }
  if (s.type === 'integer' || s.type === 'number') {
    // An absent attribute is left out (hono/html drops undefined values, but not the attribute's name around it).
    const attributes = [
      s.minimum !== undefined ? markup` min="${s.minimum}"` : '',
      s.maximum !== undefined ? markup` max="${s.maximum}"` : '',
      s.default !== undefined ? markup` placeholder="${String(s.default)}"` : '',
      s.type === 'number' ? markup` step="any"` : '',
      path ? markup` data-path="${path}"` : '',
    ];
    return markup`${caption}<input id="${id}" type="number" name="${name}" data-kind="number"${attributes}>`;
  }
  return markup`${caption}<input id="${id}" type="text" name="${name}" data-kind="string">`;
}

// The page's only script: builds the request from the form, POSTs it, shows the image or the error's JSON.
const script = `
const form = document.getElementById('try');
const image = document.getElementById('result-image');
const output = document.getElementById('result-json');
const status = document.getElementById('result-status');
let shown = null;
form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const body = {};
  for (const field of form.querySelectorAll('[data-kind]')) {
    const kind = field.dataset.kind;
    if (kind === 'boolean') { if (field.checked !== field.defaultChecked) body[field.name] = field.checked; continue; }
    if (field.value === '') continue;
    const value = kind === 'number' ? Number(field.value) : field.value;
    if (field.dataset.path) { body[field.dataset.path] = Object.assign(body[field.dataset.path] || {}, { [field.name]: value }); }
    else body[field.name] = value;
  }
  const extra = form.elements.options.value.trim();
  status.textContent = '';
  output.textContent = '';
  image.hidden = true;
  if (extra) {
    try { Object.assign(body, JSON.parse(extra)); }
    catch (err) { status.textContent = 'More options is not valid JSON: ' + err.message; return; }
  }
  const headers = { 'Content-Type': 'application/json' };
  const token = form.elements.token.value.trim();
  if (token) headers.Authorization = 'Bearer ' + token;
  status.textContent = 'Rendering…';
  const started = performance.now();
  let response;
  try { response = await fetch('screenshot', { method: 'POST', headers, body: JSON.stringify(body) }); }
  catch (err) { status.textContent = 'The request failed: ' + err.message; return; }
  const took = Math.round(performance.now() - started) + ' ms';
  const type = response.headers.get('content-type') || '';
  if (response.ok && type.startsWith('image/')) {
    if (shown) URL.revokeObjectURL(shown);
    shown = URL.createObjectURL(await response.blob());
    image.src = shown;
    image.hidden = false;
    status.textContent = response.status + ' ' + type + ' in ' + took + (response.headers.get('x-shotfleet-truncated') ? ' (truncated)' : '');
    return;
  }
  const text = await response.text();
  try { output.textContent = JSON.stringify(JSON.parse(text), null, 2); } catch { output.textContent = text; }
  status.textContent = response.status + ' in ' + took;
});
`;

const style = `
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 72rem; padding: 1rem 1.5rem; color: #1d232a; }
h1 { margin-bottom: .2rem; } code, pre, textarea { font-family: ui-monospace, monospace; font-size: 13px; }
form { display: grid; grid-template-columns: max-content 1fr; gap: .45rem .8rem; align-items: center; max-width: 46rem;
  padding: 1rem; border: 1px solid #c9d1d9; border-radius: 6px; background: #f6f8fa; }
form textarea { min-height: 4.5rem; } form input[type=text], form input[type=url], form input[type=password], form textarea { width: 100%; box-sizing: border-box; }
form button { grid-column: 2; justify-self: start; padding: .4rem 1.2rem; }
#result-status { margin: .8rem 0 .3rem; font-weight: 600; }
#result-image { max-width: 100%; border: 1px solid #c9d1d9; }
#result-json { background: #fff5f5; padding: .6rem; white-space: pre-wrap; } #result-json:empty { display: none; }
table { border-collapse: collapse; width: 100%; margin-top: 1rem; } th, td { border-top: 1px solid #d0d7de; padding: .35rem .5rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } td:first-child { white-space: nowrap; }
`;

/**
 * GET /docs: every option of the request schema, and a form to try a render. Self-contained (no asset from
 * elsewhere), so it works offline and under the strict Content-Security-Policy it is served with.
 */
export function docsPage(surface: RequestSurface, version: string): DocsPage {
  const props = surface.body.properties as Record<string, FieldSchema & { properties?: Record<string, FieldSchema> }>;
  const viewport = props.viewport?.properties ?? {};
  const viewportControls = ['width', 'height'].filter((name) => viewport[name]).map((name) => control(name, viewport[name], `viewport.${name}`, 'viewport'));
  const controls = formFields.filter((name) => props[name]).map((name) => control(name, props[name]));

  const rows = optionDocs(surface.body).map(
    (o) =>
      markup`<tr id="option-${o.name}"><td><code>${o.name}</code></td><td>${o.type.replace(/`/g, '')}</td><td>${
        o.defaultValue !== undefined ? markup`<code>${o.defaultValue}</code>` : ''
      }</td><td>${o.description}${o.example ? markup`<br>e.g. <code>${o.example}</code>` : ''}</td></tr>\n`,
  );

  const page = markup`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>shotfleet ${version} — API</title>
<style>${raw(style)}</style>
</head>
<body>
<h1>shotfleet</h1>
<p>Send <code>POST /screenshot</code> with JSON options (below); get the image back, or with <code>store</code> a link to it in S3.
Errors are JSON <code>{"error":{"code","message","details"}}</code>. The machine-readable description: <a href="openapi.json">openapi.json</a> (OpenAPI 3.1).</p>
<h2>Try it</h2>
<form id="try">
<label for="f-url">url</label><input id="f-url" type="url" name="url" data-kind="string" placeholder="https://example.com">
<label for="f-html">html</label><textarea id="f-html" name="html" data-kind="string" placeholder="or markup to render instead of a URL"></textarea>
${[...viewportControls, ...controls].map((c) => markup`${c}\n`)}<label for="f-options" title="Any other option, as a JSON object merged into the request">more options (JSON)</label><textarea id="f-options" name="options" placeholder='{"selector": "#main", "hideSelectors": [".banner"]}'></textarea>
<label for="f-token" title="Needed when the node has SHOTFLEET_TOKEN set">token</label><input id="f-token" type="password" name="token" autocomplete="off" placeholder="only when the node needs one">
<button type="submit">Render</button>
</form>
<p id="result-status" role="status"></p>
<img id="result-image" alt="the rendered screenshot" hidden>
<pre id="result-json"></pre>
<h2>Options</h2>
<p>Give exactly one of <code>url</code> or <code>html</code>. Unknown fields, contradictions and values above this node's limits are a 400 naming the field, never silently clamped.</p>
<table>
<thead><tr><th>option</th><th>type</th><th>default</th><th>meaning</th></tr></thead>
<tbody>
${rows}</tbody>
</table>
<script>${raw(script)}</script>
</body>
</html>
`;
  const csp = [
    "default-src 'none'",
    `script-src ${sha256(script)}`,
    `style-src ${sha256(style)}`,
    'img-src blob:',
    "connect-src 'self'",
    "form-action 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  return { html: page.toString(), csp };
}
