import { settingsSchema } from '../config/schema.js';
import { settingsMarkdownTable } from '../config/setting-help.js';
import type { RenderLimits } from '../request/options.js';
import { optionsMarkdownTable } from './option-docs.js';
import { requestSurface } from './request-schema.js';

export const optionsStart = '<!-- options table: generated from src/request/options.ts by `npm run docs:readme` -->';
export const optionsEnd = '<!-- end of options table -->';

/** The limits of a node with the default configuration, which the README documents. */
export function defaultLimits(): RenderLimits {
  const defaults = settingsSchema.parse({});
  return {
    maxViewport: defaults.MAX_VIEWPORT,
    maxTimeoutMs: defaults.MAX_TIMEOUT_MS,
    defaultTimeoutMs: defaults.TIMEOUT_MS,
    maxPixels: defaults.MAX_PIXELS,
    defaultCacheTtl: defaults.CACHE_TTL,
  };
}

export const settingsStart = '<!-- settings table: generated from src/config/setting-docs.ts by `npm run docs:readme` -->';
export const settingsEnd = '<!-- end of settings table -->';

function replaceBetween(text: string, start: string, end: string, content: string): string {
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  if (from < 0 || to < from) throw new Error(`README.md lacks the markers ${start} … ${end}`);
  return `${text.slice(0, from + start.length)}\n${content}\n${text.slice(to)}`;
}

/** The README with its options and settings tables replaced by the ones generated from the request and settings schemas. */
export function readmeWithGeneratedTables(readme: string): string {
  const options = replaceBetween(readme, optionsStart, optionsEnd, optionsMarkdownTable(requestSurface(defaultLimits()).body));
  return replaceBetween(options, settingsStart, settingsEnd, settingsMarkdownTable());
}
