import { KnownDevices } from 'puppeteer-core';
import { z } from 'zod';
import { ShotError } from '../errors/shot-error.js';
import { checkUserFacingConflicts, userFacingOptions } from './user-options.js';

/** The node's limits that bound a request; anything above them is a 400, never silently clamped. */
export interface RenderLimits {
  maxViewport: number;
  maxTimeoutMs: number;
  defaultTimeoutMs: number;
}

const resourceTypes = [
  'document', 'stylesheet', 'image', 'media', 'font', 'script', 'texttrack', 'xhr', 'fetch', 'prefetch',
  'eventsource', 'websocket', 'manifest', 'signedexchange', 'ping', 'cspviolationreport', 'preflight', 'other',
] as const;

const waitUntil = ['load', 'domcontentloaded', 'networkidle0', 'networkidle2'] as const;

/** Header field values Chromium accepts: no CR, LF, NUL or other control characters, nothing past Latin-1. */
const fieldValue = /^[\t\x20-\x7e\x80-\xff]*$/;
/** Headers Chromium refuses to send as extra headers: accepting them would fail the navigation with a 502. */
const connectionHeaders = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'keep-alive', 'upgrade', 'te', 'trailer', 'cookie2']);
const settableHeader = (name: string) => !connectionHeaders.has(name.toLowerCase()) && !name.toLowerCase().startsWith('proxy-');
/** What Chromium's cookie parser takes: no control characters, spaces (names), `;` or `=` (names). */
const cookieName = /^[^\x00-\x20\x7f;=,]+$/;
const cookieValue = /^[^\x00-\x1f\x7f;]*$/;

export function createOptionsSchema(limits: RenderLimits) {
  const px = (name: string, min = 1) =>
    z.number().int({ error: `${name} must be a whole number` }).min(min, { error: `${name} must be at least ${min}` }).max(limits.maxViewport, {
      error: `${name} must be at most ${limits.maxViewport} (SHOTFLEET_MAX_VIEWPORT)`,
    });
  const coord = (name: string) => z.number({ error: `${name} must be a number` }).min(0, { error: `${name} must be at least 0` }).max(1_000_000);

  return z
    .strictObject({
      url: z.string().max(8192, { error: 'url is longer than 8192 characters' }).optional(),
      html: z.string().optional(),
      format: z.enum(['png', 'jpeg', 'webp']).default('png'),
      quality: z.number().int({ error: 'quality must be a whole number' }).min(1).max(100).optional(),
      viewport: z
        .strictObject({
          width: px('viewport.width').default(1280),
          height: px('viewport.height').default(800),
          deviceScaleFactor: z.number().min(0.1, { error: 'deviceScaleFactor must be at least 0.1' }).max(4, { error: 'deviceScaleFactor must be at most 4' }).default(1),
          isMobile: z.boolean().default(false),
        })
        .optional(),
      device: z
        .string()
        .refine((name) => Object.hasOwn(KnownDevices, name), { error: 'device must be one of puppeteer\'s KnownDevices names, e.g. "iPhone 15"' })
        .optional(),
      fullPage: z.boolean().default(false),
      clip: z
        .strictObject({ x: coord('clip.x'), y: coord('clip.y'), width: px('clip.width'), height: px('clip.height') })
        .optional(),
      selector: z.string().min(1).max(1024).optional(),
      omitBackground: z.boolean().default(false),
      optimizeForSpeed: z.boolean().default(false),
      waitUntil: z.enum(waitUntil).default('load'),
      waitForSelector: z.string().min(1).max(1024).optional(),
      delay: z.number().int().min(0).max(10_000, { error: 'delay must be at most 10000 ms' }).default(0),
      timeout: z
        .number()
        .int()
        .min(100, { error: 'timeout must be at least 100 ms' })
        .max(limits.maxTimeoutMs, { error: `timeout must be at most ${limits.maxTimeoutMs} ms (SHOTFLEET_MAX_TIMEOUT_MS)` })
        .default(limits.defaultTimeoutMs),
      headers: z
        .record(
          z
            .string()
            .regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, { error: 'header names must be HTTP tokens' })
            .refine(settableHeader, { error: 'Host, Connection, Content-Length, Transfer-Encoding, Proxy-* and other connection headers cannot be set' }),
          z.string().max(8192).regex(fieldValue, { error: 'header values must not contain control characters (CR, LF, NUL…)' }),
        )
        .optional(),
      cookies: z
        .array(
          z.strictObject({
            name: z.string().min(1).max(4096).regex(cookieName, { error: 'cookie names must not contain spaces, control characters, ";", "=" or ","' }),
            value: z.string().max(4096).regex(cookieValue, { error: 'cookie values must not contain control characters or ";"' }),
            domain: z.string().max(253).regex(cookieName, { error: 'cookie domains are host names' }).optional(),
            path: z.string().max(1024).regex(cookieValue, { error: 'cookie paths must not contain control characters or ";"' }).optional(),
          }),
        )
        .max(100)
        .optional(),
      userAgent: z.string().min(1).max(1024).regex(fieldValue, { error: 'userAgent must not contain control characters' }).optional(),
      colorScheme: z.enum(['light', 'dark']).optional(),
      reducedMotion: z.boolean().default(false),
      mediaType: z.enum(['screen', 'print']).optional(),
      javascript: z.boolean().default(true),
      hideSelectors: z.array(z.string().min(1).max(1024)).max(100).optional(),
      css: z.string().max(1_000_000).optional(),
      blockResourceTypes: z.array(z.enum(resourceTypes)).optional(),
      ...userFacingOptions(),
      store: z.boolean().default(false),
      key: z.string().optional(),
    })
    .superRefine((o, ctx) => {
      const conflict = (message: string, path: string) => ctx.addIssue({ code: 'custom', message, path: [path] });
      if ((o.url === undefined) === (o.html === undefined)) conflict('give exactly one of url or html', 'url');
      if (o.quality !== undefined && o.format === 'png') conflict('quality applies to jpeg and webp only', 'quality');
      if (o.optimizeForSpeed && o.format !== 'png') conflict('optimizeForSpeed applies to png only', 'optimizeForSpeed');
      if (o.omitBackground && o.format === 'jpeg') conflict('omitBackground needs png or webp: jpeg has no transparency', 'omitBackground');
      if (o.device && o.viewport) conflict('give device or viewport, not both', 'device');
      if (o.clip && o.fullPage) conflict('clip conflicts with fullPage', 'clip');
      if (o.clip && o.selector) conflict('clip conflicts with selector', 'clip');
      if (o.selector && o.fullPage) conflict('selector conflicts with fullPage', 'selector');
      if (o.key !== undefined && !o.store) conflict('key needs store: true', 'key');
      if (o.html !== undefined && o.cookies?.some((c) => !c.domain)) conflict('cookies for html input need a domain: there is no url to take it from', 'cookies');
      checkUserFacingConflicts(o, conflict);
    });
}

export type RenderOptions = z.output<ReturnType<typeof createOptionsSchema>>;

/** Parses a request body into options, or throws a 400 whose details name each field at fault. */
export function parseRenderOptions(schema: ReturnType<typeof createOptionsSchema>, body: unknown): RenderOptions {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ShotError('invalid_request', 'the body must be a JSON object with url or html');
  }
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const fields = parsed.error.issues.map((issue) => ({
    field: issue.path.join('.') || '(body)',
    message: issue.code === 'unrecognized_keys' ? `unknown field(s): ${issue.keys.join(', ')}` : issue.message,
  }));
  throw new ShotError('invalid_request', fields.map((f) => `${f.field}: ${f.message}`).join('; '), { fields });
}

const numberParams = new Set(['quality', 'delay', 'timeout']);
const boolParams = new Set(['fullPage', 'omitBackground', 'optimizeForSpeed', 'reducedMotion', 'javascript', 'blockAds', 'blockCookieBanners', 'scrollPage', 'bestEffort']);
const stringParams = new Set(['url', 'format', 'device', 'selector', 'waitUntil', 'waitForSelector', 'userAgent', 'colorScheme', 'mediaType', 'timezone', 'locale']);
/** Carried by signed links and checked by auth before the route runs (see src/server/signed-links.ts). */
const authParams = new Set(['token', 'expires', 'signature']);
const viewportParams = new Set(['width', 'height', 'deviceScaleFactor', 'isMobile']);

/** GET /screenshot: flat query parameters for the scalar options, turned into a body for the same schema. */
export function queryToBody(query: Record<string, string>): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  const viewport: Record<string, unknown> = {};
  for (const [name, raw] of Object.entries(query)) {
    if (authParams.has(name)) continue;
    if (numberParams.has(name)) body[name] = toNumber(name, raw);
    else if (name === 'failOnHttpStatus') body[name] = toStatusList(raw);
    else if (boolParams.has(name)) body[name] = toBool(name, raw);
    else if (stringParams.has(name)) body[name] = raw;
    else if (viewportParams.has(name)) viewport[name] = name === 'isMobile' ? toBool(name, raw) : toNumber(name, raw);
    else throw new ShotError('invalid_request', `unknown query parameter "${name}"`, { fields: [{ field: name, message: 'unknown parameter' }] });
  }
  if (Object.keys(viewport).length > 0) body.viewport = viewport;
  return body;
}

function toNumber(name: string, raw: string): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n)) {
    throw new ShotError('invalid_request', `${name} must be a number`, { fields: [{ field: name, message: 'must be a number' }] });
  }
  return n;
}

function toBool(name: string, raw: string): boolean {
  if (raw === 'true' || raw === '1' || raw === '') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new ShotError('invalid_request', `${name} must be true or false`, { fields: [{ field: name, message: 'must be true or false' }] });
}

/** failOnHttpStatus in a query: true/false, or a comma list of statuses such as `404,500`. */
function toStatusList(raw: string): boolean | number[] {
  if (!/^\d/.test(raw)) return toBool('failOnHttpStatus', raw);
  return raw.split(',').map((part) => toNumber('failOnHttpStatus', part));
}
