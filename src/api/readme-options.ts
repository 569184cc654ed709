import { settingsSchema } from '../config/schema.js';
import type { RenderLimits } from '../render/options.js';
import { optionsMarkdownTable } from './option-docs.js';
import { requestSurface } from './request-schema.js';

export const optionsStart = '<!-- options table: generated from src/render/options.ts by `npm run docs:readme` -->';
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

/** The README with its options table replaced by the one generated from the request schema. */
export function readmeWithOptionsTable(readme: string): string {
  const start = readme.indexOf(optionsStart);
  const end = readme.indexOf(optionsEnd);
  if (start < 0 || end < start) throw new Error(`README.md lacks the markers ${optionsStart} … ${optionsEnd}`);
  const table = optionsMarkdownTable(requestSurface(defaultLimits()).body);
  return `${readme.slice(0, start + optionsStart.length)}\n${table}\n${readme.slice(end)}`;
}
