import { ShotError } from '../errors/shot-error.js';
import { createOptionsSchema, parseRenderOptions, widestLimits } from '../request/options.js';

/**
 * The batch file: one URL per line, or JSON Lines of POST /screenshot bodies. `#` comments and blank
 * lines are skipped; a line that is neither a URL nor a usable body is reported, never fatal.
 */

export type RequestBody = Record<string, unknown>;

export interface ShotItem {
  /** 1-based line number in the input: the item's identity in file names and the manifest. */
  line: number;
  /** The page URL, or null for a line that renders `html`. */
  url: string | null;
  body: RequestBody;
}

export interface InvalidLine {
  line: number;
  url: string | null;
  reason: string;
}

export interface ParsedInput {
  items: ShotItem[];
  invalid: InvalidLine[];
}

export function parseInput(text: string, defaults: RequestBody): ParsedInput {
  const items: ShotItem[] = [];
  const invalid: InvalidLine[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((raw, index) => {
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const parsed = trimmed.startsWith('{') ? parseJsonLine(trimmed) : parseUrlLine(trimmed);
    if ('reason' in parsed) {
      invalid.push({ line, url: parsed.url, reason: parsed.reason });
      return;
    }
    const body = applyDefaults(defaults, parsed.body);
    const problem = requestProblem(body);
    if (problem) invalid.push({ line, url: parsed.url, reason: problem });
    else items.push({ line, url: parsed.url, body });
  });
  return { items, invalid };
}

type LineResult = { url: string | null; body: RequestBody } | { url: string | null; reason: string };

function parseUrlLine(text: string): LineResult {
  const problem = httpUrlProblem(text);
  return problem ? { url: null, reason: problem } : { url: text, body: { url: text } };
}

function parseJsonLine(text: string): LineResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { url: null, reason: `not valid JSON (${(err as Error).message}); write one request object per line` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { url: null, reason: 'a JSON line must be an object with "url" or "html"' };
  }
  const body = value as RequestBody;
  const url = typeof body.url === 'string' ? body.url : null;
  if ('url' in body === 'html' in body) {
    return { url, reason: 'a request needs exactly one of "url" or "html"' };
  }
  if ('url' in body) {
    const problem = url === null ? '"url" must be a string' : httpUrlProblem(url);
    if (problem) return { url, reason: problem };
  } else if (typeof body.html !== 'string') {
    return { url, reason: '"html" must be a string' };
  }
  return { url, body };
}

/** The node's own request schema (with the widest limits a node may have) judges each request before it is sent. */
const requestSchema = createOptionsSchema(widestLimits);

function requestProblem(body: RequestBody): string | undefined {
  try {
    parseRenderOptions(requestSchema, body);
    return undefined;
  } catch (err) {
    if (err instanceof ShotError) return `not a valid request: ${err.message}`;
    throw err;
  }
}

function httpUrlProblem(text: string): string | undefined {
  if (!URL.canParse(text)) {
    return /^[\w.-]+\.[a-z]{2,}(\/|$)/i.test(text)
      ? `"${text}" has no scheme; write https://${text}`
      : `"${text}" is not a URL; write one http(s) URL or JSON object per line`;
  }
  const { protocol } = new URL(text);
  if (protocol !== 'http:' && protocol !== 'https:') return `"${text}" is not an http(s) URL`;
  return undefined;
}

/**
 * A line's own fields win over the command-line defaults. Defaults that would contradict what the line
 * asks for are dropped rather than sent, so the node does not reject the line with a 400 it never wrote.
 */
export function applyDefaults(defaults: RequestBody, line: RequestBody): RequestBody {
  const body: RequestBody = { ...defaults, ...line };
  const own = (field: string) => Object.hasOwn(line, field);
  if (isObject(defaults.viewport) && isObject(line.viewport)) body.viewport = { ...defaults.viewport, ...line.viewport };
  if (own('device') && !own('viewport')) delete body.viewport;
  if ((own('clip') || own('selector')) && !own('fullPage')) delete body.fullPage;
  if (own('format') && line.format === 'png' && !own('quality')) delete body.quality;
  return body;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
