import { z } from 'zod';

/**
 * The request options that shape what the page sees and what happens around the capture: blocking, lazy
 * content, emulation, credentials, scripts, and how a failing target or a slow page is answered.
 * Each one's effect ends with its render (see src/render/render-effects.ts).
 */
export function userFacingOptions() {
  return {
    blockAds: z
      .boolean()
      .default(false)
      .meta({
        description:
          'Block ad and tracker requests with the filter lists shipped in the package (nothing is fetched at run time); the blocked requests are never sent.',
        examples: [true],
      }),
    blockCookieBanners: z
      .boolean()
      .default(false)
      .meta({
        description: 'Hide the cookie-consent banners of common consent managers (OneTrust, Cookiebot, Didomi, Quantcast, …) before the capture.',
        examples: [true],
      }),
    scrollPage: z
      .boolean()
      .default(false)
      .meta({
        description:
          'Before the capture, scroll to the bottom in viewport steps (up to SHOTFLEET_MAX_PAGE_HEIGHT, within the deadline) so lazy images and content load, wait for those images, then scroll back to the top.',
        examples: [true],
      }),
    timezone: z
      .string()
      .max(64)
      .refine(isTimeZone, { error: 'timezone must be an IANA time zone name, e.g. "Europe/Paris"' })
      .optional()
      .meta({ description: 'Emulated time zone for Date and Intl (an IANA name).', examples: ['Asia/Tokyo', 'America/New_York'] }),
    locale: z
      .string()
      .max(64)
      .refine(isLocale, { error: 'locale must be a BCP 47 language tag, e.g. "fr-CH"' })
      .optional()
      .meta({
        description: "Emulated locale: navigator.language(s), the Intl default and the Accept-Language header of the page's requests.",
        examples: ['fr-CH', 'ja-JP'],
      }),
    geolocation: z
      .strictObject({
        latitude: z.number({ error: 'geolocation.latitude must be a number' }).min(-90).max(90),
        longitude: z.number({ error: 'geolocation.longitude must be a number' }).min(-180).max(180),
        accuracy: z.number().min(0).max(1_000_000).optional(),
      })
      .optional()
      .meta({
        description: 'Emulated position (accuracy in metres, default 10); the geolocation permission is granted for this render.',
        examples: [{ latitude: 48.8584, longitude: 2.2945, accuracy: 20 }],
      }),
    authenticate: z
      .strictObject({
        username: z
          .string()
          .min(1)
          .max(1024)
          // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
          .regex(/^[^:\x00-\x1f\x7f]*$/, { error: 'authenticate.username must not contain ":" or control characters' }),
        password: z
          .string()
          .max(1024)
          // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
          .regex(/^[^\x00-\x1f\x7f]*$/, { error: 'authenticate.password must not contain control characters' }),
      })
      .optional()
      .meta({
        description: 'HTTP basic auth credentials, sent only to the origin of `url` (never to other hosts the page loads from).',
        examples: [{ username: 'preview', password: 's3cret' }],
      }),
    scripts: z
      .string()
      .min(1)
      .max(1_000_000, { error: 'scripts must be at most 1000000 characters' })
      .optional()
      .meta({
        description:
          'JavaScript run in the page after it loaded, before `delay` and the capture. The value of its last expression is awaited when it is a promise; a script that throws fails the render with 422 script_failed.',
        examples: ["document.querySelector('#promo')?.remove()", 'new Promise((done) => setTimeout(done, 500))'],
      }),
    failOnHttpStatus: z
      .union([
        z.boolean(),
        z
          .array(
            z.number().int({ error: 'failOnHttpStatus lists whole numbers' }).min(100).max(599, { error: 'failOnHttpStatus holds HTTP statuses (100-599)' }),
          )
          .min(1)
          .max(100),
      ])
      .default(false)
      .meta({
        description:
          "Fail with 502 target_http_error (details.status) when the page's own document answers with such a status: true means any status of 400 or above, or list the statuses.",
        examples: [true, [404, 500, 503]],
      }),
    bestEffort: z
      .boolean()
      .default(false)
      .meta({
        description:
          'When waitUntil or waitForSelector is not met in time, capture what is there instead of answering 504; the answer then carries X-Shotfleet-Best-Effort: true.',
        examples: [true],
      }),
  };
}

interface UserFacingFields {
  url?: string;
  html?: string;
  javascript: boolean;
  headers?: Record<string, string>;
  authenticate?: unknown;
  scripts?: string;
  failOnHttpStatus: boolean | number[];
  scrollPage: boolean;
  blockCookieBanners: boolean;
}

/** Combinations that cannot do what they say: each is a 400 naming the field. */
export function checkUserFacingConflicts(o: UserFacingFields, conflict: (message: string, field: string) => void): void {
  if (o.html !== undefined) {
    // Credentials go to the page URL's own origin only; markup has none, so they would reach no one, or everyone.
    if (o.headers && Object.keys(o.headers).length > 0) conflict("headers need url: they are sent only to the page URL's origin, and html has none", 'headers');
    if (o.authenticate) conflict("authenticate needs url: credentials are sent only to the page URL's origin, and html has none", 'authenticate');
    if (o.failOnHttpStatus !== false) conflict('failOnHttpStatus needs url: html has no HTTP status', 'failOnHttpStatus');
  }
  if (o.authenticate && Object.keys(o.headers ?? {}).some((name) => name.toLowerCase() === 'authorization')) {
    conflict('give authenticate or an Authorization header, not both', 'authenticate');
  }
  if (!o.javascript) {
    if (o.scripts !== undefined) conflict('scripts need javascript: true', 'scripts');
    if (o.scrollPage)
      conflict("scrollPage needs javascript: true (lazy content is loaded by the page's scripts and the browser's scroll events)", 'scrollPage');
  }
}

function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: name });
    return /^[A-Za-z0-9_+\-/]+$/.test(name);
  } catch {
    return false;
  }
}

function isLocale(tag: string): boolean {
  try {
    return Intl.getCanonicalLocales(tag).length === 1;
  } catch {
    return false;
  }
}
