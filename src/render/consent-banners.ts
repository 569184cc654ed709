import { createRequire } from 'node:module';

/**
 * Consent managers whose rules @duckduckgo/autoconsent keeps in code (lib/cmps/*.ts) rather than in its
 * rules.json: their `prehideSelectors`, copied from that package.
 */
const builtInCmpSelectors = [
  '#onetrust-banner-sdk,#onetrust-consent-sdk,.onetrust-pc-dark-filter,.js-consent-banner',
  '#CybotCookiebotDialog,#CybotCookiebotDialogBodyUnderlay,#dtcookie-container,#cookiebanner,#cb-cookieoverlay,.modal--cookie-banner,#cookiebanner_outer,#CookieBanner',
  '#cmpbox,#cmpbox2',
  '.klaro',
  '.trustarc-banner-container,.truste_popframe,.truste_overlay,.truste_box_overlay',
  "div[id^='sp_message_container_'],.message-overlay,#sp_privacy_manager_container",
];

interface AutoconsentRule {
  prehideSelectors?: string[];
  runContext?: { urlPattern?: string };
}

let cached: string | undefined;

/**
 * A stylesheet hiding the banners and overlays of the consent managers autoconsent knows (OneTrust, Cookiebot,
 * Didomi, Quantcast and hundreds more), built once from the rules shipped in the package: nothing is fetched.
 * Rules bound to one site (runContext.urlPattern) are left out so their selectors cannot hide another site's content.
 */
export function consentBannerCss(): string {
  if (cached !== undefined) return cached;
  const require = createRequire(import.meta.url);
  const { autoconsent } = require('@duckduckgo/autoconsent/rules/rules.json') as { autoconsent: AutoconsentRule[] };
  const selectors = new Set(builtInCmpSelectors);
  for (const rule of autoconsent) {
    if (rule.runContext?.urlPattern) continue;
    for (const selector of rule.prehideSelectors ?? []) selectors.add(selector);
  }
  // One rule per selector list: an invalid selector drops only its own rule, not the whole sheet.
  cached = [...selectors].map((list) => `${list}{display:none!important}`).join('\n');
  return cached;
}
