import { urlForLog } from '../log/cap-url.js';
import type { HTTPRequest } from 'puppeteer-core';
import type { RequestRules } from '../render-pool/page-slot.js';
import type { Logger } from '../log/logger.js';
import type { RenderOptions } from '../request/options.js';
import type { AdBlocker } from './ad-blocking.js';

/**
 * What the render wants done with each request its page makes: resource types and ad/tracker requests refused,
 * and the client's headers and basic-auth credentials added to requests for the page URL's own origin only —
 * never to the CDNs, analytics or ad hosts the page also loads from, nor to a host it redirects to.
 * Blocked ad URLs are collected in `blockedAds` so the frames and images that showed them can be hidden.
 */
export function requestRules(options: RenderOptions, log: Logger, adBlocker: AdBlocker | null, blockedAds: Set<string>): RequestRules {
  const scoped = scopedHeaders(options);
  const pageOrigin = options.url !== undefined ? originOf(options.url) : undefined;
  const blocksAd = (request: HTTPRequest) => {
    const blocked = adBlocker!.blocks(request, options.url);
    if (blocked && blockedAds.size < 1000) blockedAds.add(request.url());
    return blocked;
  };
  return {
    blockResourceTypes: new Set(options.blockResourceTypes ?? []),
    ...(adBlocker ? { blocks: blocksAd } : {}),
    ...(scoped && pageOrigin ? { extraHeaders: (url) => (originOf(url) === pageOrigin ? scoped : undefined) } : {}),
    onRefused: (url, reason) => log.warn({ ...urlForLog(url), reason }, 'sub-resource refused by the URL policy'),
    confidential: carriesClientData(options),
  };
}

/**
 * A client's credentials (cookies, headers, basic auth) or its own code and markup (scripts, html): what the page
 * fetches with them may be that client's alone. An html page also inherits the origin of the blank page it is
 * written into, so its fetches would land in another site's cache partition.
 */
function carriesClientData(options: RenderOptions): boolean {
  return (
    (options.cookies?.length ?? 0) > 0 ||
    Object.keys(options.headers ?? {}).length > 0 ||
    options.authenticate !== undefined ||
    options.scripts !== undefined ||
    options.html !== undefined
  );
}

/** True when the render needs every request held for a verdict (interception costs a round trip per request). */
export function needsInterception(rules: RequestRules): boolean {
  return rules.blockResourceTypes.size > 0 || rules.blocks !== undefined || rules.extraHeaders !== undefined;
}

/** Names lower-cased so they replace, not duplicate, what the browser was about to send. */
function scopedHeaders(options: RenderOptions): Record<string, string> | undefined {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(options.headers ?? {})) headers[name.toLowerCase()] = value;
  if (options.authenticate) {
    const { username, password } = options.authenticate;
    headers.authorization = `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
  }
  return Object.keys(headers).length > 0 ? headers : undefined;
}

function originOf(url: string): string | undefined {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}
