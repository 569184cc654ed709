import { KnownDevices } from 'puppeteer-core';
import { z } from 'zod';
import { ShotError } from '../errors/shot-error.js';
import { checkUserFacingConflicts, userFacingOptions } from './user-options.js';
import { defaultViewport } from './viewport.js';
import { knownSizeIssues } from './pixel-budget.js';

/** The node's limits that bound a request; anything above them is a 400, never silently clamped. */
export interface RenderLimits {
  maxViewport: number;
  maxTimeoutMs: number;
  defaultTimeoutMs: number;
  /** SHOTFLEET_MAX_PIXELS: an image known in advance to be larger is a 400 (pixel-budget.ts). */
  maxPixels: number;
  /** SHOTFLEET_CACHE_TTL: the cacheTtl of a request that names none; unset or 0: results are not served from the cache. */
  defaultCacheTtl?: number;
}

/** The longest a result may be served from the result cache: 30 days. */
export const maxCacheTtlSeconds = 2_592_000;

/**
 * The largest limits any node can be configured with (the maxima of SHOTFLEET_MAX_VIEWPORT and
 * SHOTFLEET_MAX_TIMEOUT_MS in src/config/schema.ts): what a client checks a request against before it knows
 * the node's own limits. Only the node's limits decide; these let a client catch every other mistake early.
 */
export const widestLimits: RenderLimits = { maxViewport: 16384, maxTimeoutMs: 3_600_000, defaultTimeoutMs: 30_000, maxPixels: 1_000_000_000 };

const resourceTypes = [
  'document',
  'stylesheet',
  'image',
  'media',
  'font',
  'script',
  'texttrack',
  'xhr',
  'fetch',
  'prefetch',
  'eventsource',
  'websocket',
  'manifest',
  'signedexchange',
  'ping',
  'cspviolationreport',
  'preflight',
  'other',
] as const;

const waitUntil = ['load', 'domcontentloaded', 'networkidle0', 'networkidle2'] as const;

/** Header field values Chromium accepts: no CR, LF, NUL or other control characters, nothing past Latin-1. */
const fieldValue = /^[\t\x20-\x7e\x80-\xff]*$/;
/** Headers Chromium refuses to send as extra headers: accepting them would fail the navigation with a 502. */
const connectionHeaders = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'keep-alive', 'upgrade', 'te', 'trailer', 'cookie2']);
const settableHeader = (name: string) => !connectionHeaders.has(name.toLowerCase()) && !name.toLowerCase().startsWith('proxy-');
/** What Chromium's cookie parser takes: no control characters, spaces (names), `;` or `=` (names). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what these refuse
const cookieName = /^[^\x00-\x20\x7f;=,]+$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: as above
const cookieValue = /^[^\x00-\x1f\x7f;]*$/;

export function createOptionsSchema(limits: RenderLimits) {
  const px = (name: string, min = 1) =>
    z
      .number()
      .int({ error: `${name} must be a whole number` })
      .min(min, { error: `${name} must be at least ${min}` })
      .max(limits.maxViewport, {
        error: `${name} must be at most ${limits.maxViewport} (SHOTFLEET_MAX_VIEWPORT)`,
      });
  const coord = (name: string) =>
    z
      .number({ error: `${name} must be a number` })
      .min(0, { error: `${name} must be at least 0` })
      .max(1_000_000);

  return z
    .strictObject({
      url: z
        .string()
        .max(8192, { error: 'url is longer than 8192 characters' })
        .optional()
        .meta({ description: 'The http(s) page to capture. Give exactly one of url or html.', examples: ['https://example.com'] }),
      html: z
        .string()
        .optional()
        .meta({
          description: 'Markup to render instead of a URL; its sub-resources obey the same URL policy.',
          examples: ['<h1 style="color:teal">Hello</h1>'],
        }),
      format: z
        .enum(['png', 'jpeg', 'webp'])
        .default('png')
        .meta({ description: 'Image type.', examples: ['jpeg'] }),
      quality: z
        .number()
        .int({ error: 'quality must be a whole number' })
        .min(1)
        .max(100)
        .optional()
        .meta({ description: 'jpeg/webp quality (80 when unset); a 400 with png.', examples: [80] }),
      viewport: z
        .strictObject({
          width: px('viewport.width')
            .default(defaultViewport.width)
            .meta({ description: 'Width in CSS px, at most SHOTFLEET_MAX_VIEWPORT.', examples: [1280] }),
          height: px('viewport.height')
            .default(defaultViewport.height)
            .meta({ description: 'Height in CSS px, at most SHOTFLEET_MAX_VIEWPORT.', examples: [800] }),
          deviceScaleFactor: z
            .number()
            .min(0.1, { error: 'deviceScaleFactor must be at least 0.1' })
            .max(4, { error: 'deviceScaleFactor must be at most 4' })
            .default(defaultViewport.deviceScaleFactor)
            .meta({ description: 'Device pixels per CSS px (2 for a retina image).', examples: [2] }),
          isMobile: z
            .boolean()
            .default(defaultViewport.isMobile)
            .meta({ description: 'Mobile emulation (meta viewport, touch).', examples: [true] }),
        })
        .optional()
        .meta({
          description: 'The browser window: 1280×800 at scale 1 when neither viewport nor device is given. Conflicts with device.',
          examples: [{ width: 1024, height: 768, deviceScaleFactor: 2 }],
        }),
      device: z
        .string()
        .refine((name) => Object.hasOwn(KnownDevices, name), { error: 'device must be one of puppeteer\'s KnownDevices names, e.g. "iPhone 15"' })
        .optional()
        .meta({ description: 'A puppeteer KnownDevices name: its viewport and user agent. Conflicts with viewport.', examples: ['iPhone 15', 'Pixel 7'] }),
      fullPage: z
        .boolean()
        .default(false)
        .meta({
          description: 'The whole scrollable page, up to SHOTFLEET_MAX_PAGE_HEIGHT px; a cut image has the header X-Shotfleet-Truncated: true.',
          examples: [true],
        }),
      clip: z
        .strictObject({ x: coord('clip.x'), y: coord('clip.y'), width: px('clip.width'), height: px('clip.height') })
        .optional()
        .meta({
          description: 'A region in CSS px of the document. Conflicts with fullPage and selector.',
          examples: [{ x: 0, y: 0, width: 600, height: 400 }],
        }),
      selector: z
        .string()
        .min(1)
        .max(1024)
        .optional()
        .meta({ description: 'Capture the element this CSS selector matches; 422 selector_not_found when absent or of zero size.', examples: ['#main'] }),
      omitBackground: z
        .boolean()
        .default(false)
        .meta({ description: 'Transparent background (png/webp; a 400 with jpeg).', examples: [true] }),
      optimizeForSpeed: z
        .boolean()
        .default(false)
        .meta({ description: 'Faster PNG encoding (about 3×) at about twice the bytes; png only.', examples: [true] }),
      waitUntil: z
        .enum(waitUntil)
        .default('load')
        .meta({ description: 'When navigation counts as done.', examples: ['networkidle2'] }),
      waitForSelector: z
        .string()
        .min(1)
        .max(1024)
        .optional()
        .meta({ description: 'Wait for this CSS selector before capturing (504 if it never shows within timeout).', examples: ['.chart svg'] }),
      delay: z
        .number()
        .int()
        .min(0)
        .max(10_000, { error: 'delay must be at most 10000 ms' })
        .default(0)
        .meta({ description: 'Extra wait before the capture, in ms.', examples: [500] }),
      timeout: z
        .number()
        .int()
        .min(100, { error: 'timeout must be at least 100 ms' })
        .max(limits.maxTimeoutMs, { error: `timeout must be at most ${limits.maxTimeoutMs} ms (SHOTFLEET_MAX_TIMEOUT_MS)` })
        .default(limits.defaultTimeoutMs)
        .meta({
          description:
            'Whole-request deadline in ms, counted from arrival (queue wait included); default SHOTFLEET_TIMEOUT_MS, at most SHOTFLEET_MAX_TIMEOUT_MS.',
          examples: [15000],
        }),
      headers: z
        .record(
          z
            .string()
            .regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, { error: 'header names must be HTTP tokens' })
            .refine(settableHeader, { error: 'Host, Connection, Content-Length, Transfer-Encoding, Proxy-* and other connection headers cannot be set' }),
          z.string().max(8192).regex(fieldValue, { error: 'header values must not contain control characters (CR, LF, NUL…)' }),
        )
        .optional()
        .meta({ description: "Extra request headers for the page's own requests (its URL's origin only).", examples: [{ 'Accept-Language': 'de' }] }),
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
        .optional()
        .meta({
          description: "Cookies set before navigation (without domain, for the page's URL; html input needs a domain).",
          examples: [[{ name: 'consent', value: 'yes' }]],
        }),
      userAgent: z
        .string()
        .min(1)
        .max(1024)
        .regex(fieldValue, { error: 'userAgent must not contain control characters' })
        .optional()
        .meta({ description: 'The User-Agent the page sees.', examples: ['Mozilla/5.0 (compatible; shotfleet)'] }),
      colorScheme: z
        .enum(['light', 'dark'])
        .optional()
        .meta({ description: 'prefers-color-scheme.', examples: ['dark'] }),
      reducedMotion: z
        .boolean()
        .default(false)
        .meta({ description: 'prefers-reduced-motion: reduce, and CSS animations and transitions stopped at their end state.', examples: [true] }),
      mediaType: z
        .enum(['screen', 'print'])
        .optional()
        .meta({ description: 'CSS media type.', examples: ['print'] }),
      javascript: z
        .boolean()
        .default(true)
        .meta({ description: "Run the page's JavaScript.", examples: [false] }),
      hideSelectors: z
        .array(z.string().min(1).max(1024))
        .max(100)
        .optional()
        .meta({ description: 'Elements hidden (visibility: hidden) before the capture.', examples: [['.cookie-banner', '#chat']] }),
      css: z
        .string()
        .max(1_000_000)
        .optional()
        .meta({ description: 'A stylesheet injected before the capture.', examples: ['body { background: white }'] }),
      blockResourceTypes: z
        .array(z.enum(resourceTypes))
        .optional()
        .meta({ description: 'puppeteer resource types whose requests are aborted.', examples: [['image', 'font', 'media']] }),
      ...userFacingOptions(),
      cacheTtl: z
        .number()
        .int({ error: 'cacheTtl must be a whole number of seconds' })
        .min(0, { error: 'cacheTtl must be at least 0' })
        .max(maxCacheTtlSeconds, { error: `cacheTtl must be at most ${maxCacheTtlSeconds} s (30 days)` })
        .default(limits.defaultCacheTtl ?? 0)
        .meta({
          description:
            'Seconds a result may be served from the result cache instead of rendering (the same options, timeout, cacheTtl, store and key aside); 0 renders every time. Default SHOTFLEET_CACHE_TTL.',
          examples: [3600],
        }),
      store: z
        .boolean()
        .default(false)
        .meta({ description: 'Upload to S3 and answer JSON (bucket, key, url…) instead of the image; needs SHOTFLEET_S3_BUCKET.', examples: [true] }),
      key: z
        .string()
        .optional()
        .meta({
          description: "S3 key for store, under SHOTFLEET_S3_PREFIX: no '..', no leading '/', at most 512 bytes of letters, digits and / ! _ . * ' ( ) -.",
          examples: ['reports/home.webp'],
        }),
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
      if (o.html !== undefined && o.cookies?.some((c) => !c.domain))
        conflict('cookies for html input need a domain: there is no url to take it from', 'cookies');
      checkUserFacingConflicts(o, conflict);
      for (const issue of knownSizeIssues(o, limits)) conflict(issue.message, issue.path);
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
