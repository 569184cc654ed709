import { createHash } from 'node:crypto';
import type { RenderOptions } from '../request/options.js';

/** Fields that change how a request is answered, not its image: requests differing only in them are the same request. */
const answerOnlyFields = new Set(['timeout', 'cacheTtl', 'store', 'key']);

/**
 * The cache key of a request: a digest of its validated options (defaults filled in, so `{}` and
 * `{"format":"png"}` are one request) in canonical form, with `scope` — what else decides the image on this node
 * (its limits and URL policy), so that nodes configured differently never answer each other's results. Every
 * other option is in it: html, cookies, headers, credentials and scripts included, so only an identical
 * request can be answered another's image.
 */
export function resultKey(options: RenderOptions, scope: string): string {
  const material = Object.fromEntries(Object.entries(options).filter(([name]) => !answerOnlyFields.has(name)));
  return createHash('sha256')
    .update(`result v1\n${scope}\n${canonicalJson(material)}`)
    .digest('hex');
}

/**
 * JSON with every object's keys in sorted order and unset fields left out, so the same options give the same text
 * however the client ordered them. Arrays keep their order: in cookies or blockResourceTypes it can matter.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const fields = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${fields.map(([name, v]) => `${JSON.stringify(name)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
