import type { CDPSession, Page, Viewport } from 'puppeteer-core';
import { defaultWindow } from '../request/viewport.js';

/** Everything a render may change about its page, with the value each setting has when the render does not ask. */
export interface Emulation {
  viewport: Viewport;
  /** undefined: the browser's own user agent. acceptLanguage also sets navigator.language(s). */
  userAgent: { userAgent?: string; acceptLanguage?: string };
  media: { type: string; features: { name: string; value: string }[] };
  javascript: boolean;
  transparentBackground: boolean;
  interception: boolean;
  /**
   * Chromium's HTTP cache for the page's requests: off, a request neither reads it nor takes what is there (it may
   * still write to it: asset-cache.ts drops what a confidential render left).
   */
  httpCache: boolean;
  /** '' = the host's time zone. */
  timezone: string;
  /** '' = the browser's locale (Intl). */
  locale: string;
  geolocation: { latitude: number; longitude: number; accuracy: number } | null;
}

export const defaultEmulation: Emulation = {
  viewport: { ...defaultWindow, deviceScaleFactor: 1, isMobile: false, hasTouch: false },
  userAgent: {},
  media: { type: '', features: [] },
  javascript: true,
  transparentBackground: false,
  interception: false,
  httpCache: true,
  timezone: '',
  locale: '',
  geolocation: null,
};

interface Target {
  page: Page;
  cdp: CDPSession;
  browserContextId: string | undefined;
  /** The browser's own user agent, asked once per page. */
  browserUserAgent(): Promise<string>;
}

type Appliers = { [K in keyof Emulation]: (target: Target, value: Emulation[K]) => Promise<unknown> };

/** How each setting is sent: on the page's own CDP session where puppeteer's page methods would not reach it. */
const apply: Appliers = {
  viewport: (t, v) =>
    Promise.all([
      t.page.setViewport(v),
      // Emulation is per CDP session and Page.captureScreenshot scales by its own session's metrics: without the
      // same override on the capture session, a deviceScaleFactor 2 page comes out at 1×.
      t.cdp.send('Emulation.setDeviceMetricsOverride', {
        width: v.width,
        height: v.height,
        deviceScaleFactor: v.deviceScaleFactor ?? 1,
        mobile: v.isMobile ?? false,
      }),
    ]),
  // One call carries both: two separate calls would undo each other.
  userAgent: async (t, v) =>
    t.cdp.send('Emulation.setUserAgentOverride', {
      userAgent: v.userAgent ?? (await t.browserUserAgent()),
      ...(v.acceptLanguage ? { acceptLanguage: v.acceptLanguage } : {}),
    }),
  // One call: each Emulation.setEmulatedMedia replaces both the media type and the features.
  media: (t, v) => t.cdp.send('Emulation.setEmulatedMedia', { media: v.type, features: v.features }),
  javascript: (t, v) => t.page.setJavaScriptEnabled(v),
  transparentBackground: (t, v) => t.cdp.send('Emulation.setDefaultBackgroundColorOverride', v ? { color: { r: 0, g: 0, b: 0, a: 0 } } : {}),
  interception: (t, v) => t.page.setRequestInterception(v),
  // puppeteer sends it to the page's frames in other processes too.
  httpCache: (t, v) => t.page.setCacheEnabled(v),
  timezone: (t, v) => t.cdp.send('Emulation.setTimezoneOverride', { timezoneId: v }),
  locale: (t, v) => t.cdp.send('Emulation.setLocaleOverride', v ? { locale: v } : {}),
  geolocation: (t, v) =>
    v
      ? Promise.all([
          t.cdp.send('Emulation.setGeolocationOverride', v),
          // Every origin of this render's context: the position is the client's own; an iframe still needs allow="geolocation".
          t.cdp.send('Browser.grantPermissions', { permissions: ['geolocation'], browserContextId: t.browserContextId }),
        ])
      : Promise.all([t.cdp.send('Emulation.clearGeolocationOverride'), t.cdp.send('Browser.resetPermissions', { browserContextId: t.browserContextId })]),
};

/**
 * A page's emulation as a state: a render says what it wants, and only settings that differ from the page's
 * current ones are sent. Nothing is undone when a render ends — the next render states every setting again,
 * before it navigates, so it never sees its predecessor's; a client who always asks the same settings pays for
 * them once per page instead of twice per render (`npm run bench:isolation -- --candidates`).
 */
export function createEmulationState(target: Target) {
  // A new window's viewport is its window size, not an emulated one: the first render sends its own (and sets the
  // capture session's metrics with it).
  const current: Emulation = { ...structuredClone(defaultEmulation), viewport: undefined as never };
  return {
    current: (): Readonly<Emulation> => current,
    async set(wanted: Partial<Emulation>): Promise<void> {
      const changes = (Object.keys(wanted) as (keyof Emulation)[]).filter((key) => !sameValue(current[key], wanted[key]));
      await Promise.all(
        changes.map(async (key) => {
          const value = wanted[key] as never;
          // Recorded before it is sent (the request handler reads `interception` while the call is on its way);
          // a call that fails leaves the setting unknown, so the next render sends it again.
          current[key] = value;
          try {
            await apply[key](target, value);
          } catch (err) {
            current[key] = undefined as never;
            throw err;
          }
        }),
      );
    },
  };
}

export type EmulationState = ReturnType<typeof createEmulationState>;

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  return JSON.stringify(normalise(a)) === JSON.stringify(normalise(b));
}

/** Objects compared by their defined fields, in a fixed order. */
function normalise(value: object): unknown {
  if (Array.isArray(value)) return value.map((v) => (typeof v === 'object' && v !== null ? normalise(v) : v));
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => [k, typeof v === 'object' && v !== null ? normalise(v) : v]),
  );
}
