import { KnownDevices } from 'puppeteer-core';
import type { Emulation } from '../render-pool/slot-emulation.js';
import type { RenderOptions } from '../request/options.js';
import { effectiveViewport } from '../request/viewport.js';

/**
 * Every page setting a render wants, stated in full — defaults included — so that what an earlier render on the
 * same page set never carries over (the slot sends only what differs). Headers and credentials are request
 * rules, not emulation (request-rules.ts).
 */
export function wantedEmulation(options: RenderOptions, interception: boolean, httpCache: boolean): Emulation {
  const device = options.device ? KnownDevices[options.device as keyof typeof KnownDevices] : undefined;
  const geolocation = options.geolocation;
  return {
    // Kept between renders like the rest: resizing back to 1280×800 and again cost ~350 ms of CPU a render for
    // clients that always ask one size (`npm run bench:isolation -- --candidates`).
    viewport: effectiveViewport(options),
    // The locale's Accept-Language rides on the user agent override (it also sets navigator.language(s)).
    userAgent: { userAgent: options.userAgent ?? device?.userAgent, acceptLanguage: options.locale },
    media: {
      type: options.mediaType ?? '',
      features: [
        ...(options.colorScheme ? [{ name: 'prefers-color-scheme', value: options.colorScheme }] : []),
        ...(options.reducedMotion ? [{ name: 'prefers-reduced-motion', value: 'reduce' }] : []),
      ],
    },
    javascript: options.javascript,
    transparentBackground: options.omitBackground,
    interception,
    httpCache,
    timezone: options.timezone ?? '',
    locale: options.locale ?? '',
    geolocation: geolocation ? { latitude: geolocation.latitude, longitude: geolocation.longitude, accuracy: geolocation.accuracy ?? 10 } : null,
  };
}
