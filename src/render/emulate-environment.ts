import type { PageSlot } from '../render-pool/page-slot.js';
import type { RenderOptions } from './options.js';

/**
 * Time zone, locale and position, each sent on the slot's own CDP session and each registering its undo, so the
 * next session-less render starts from the browser's defaults again.
 */
export async function emulateEnvironment(slot: PageSlot, options: RenderOptions): Promise<void> {
  const { cdp } = slot;
  const tasks: Promise<unknown>[] = [];
  if (options.timezone) {
    slot.undo.push(() => cdp.send('Emulation.setTimezoneOverride', { timezoneId: '' }));
    tasks.push(cdp.send('Emulation.setTimezoneOverride', { timezoneId: options.timezone }));
  }
  if (options.locale) {
    // The Intl default; navigator.language(s) and Accept-Language come with the user agent override (userAgentOverride).
    slot.undo.push(() => cdp.send('Emulation.setLocaleOverride', {}));
    tasks.push(cdp.send('Emulation.setLocaleOverride', { locale: options.locale }));
  }
  if (options.geolocation) {
    const { latitude, longitude, accuracy } = options.geolocation;
    const browserContextId = slot.context.id;
    slot.undo.push(() =>
      Promise.all([cdp.send('Emulation.clearGeolocationOverride'), cdp.send('Browser.resetPermissions', { browserContextId })]),
    );
    tasks.push(
      cdp.send('Emulation.setGeolocationOverride', { latitude, longitude, accuracy: accuracy ?? 10 }),
      // Every origin of this render's context: the position is the client's own, and an iframe still needs the page's allow="geolocation".
      cdp.send('Browser.grantPermissions', { permissions: ['geolocation'], browserContextId }),
    );
  }
  await Promise.all(tasks);
}

/**
 * One Emulation.setUserAgentOverride carries both the user agent and the locale's Accept-Language (which also
 * sets navigator.language and navigator.languages): two separate calls would undo each other.
 */
export async function userAgentOverride(slot: PageSlot, userAgent: string | undefined, locale: string | undefined): Promise<void> {
  await slot.cdp.send('Emulation.setUserAgentOverride', {
    userAgent: userAgent ?? (await slot.page.browser().userAgent()),
    ...(locale ? { acceptLanguage: locale } : {}),
  });
}
