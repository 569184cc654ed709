/**
 * Chrome keys a frame's storage (local/session storage, IndexedDB, Cache Storage, service workers) by
 * its origin *and* the top-level site: an iframe from B on a page from A stores under
 * "B/^0<site of A>", which Storage.clearDataForOrigin(B) does not touch. These are the keys to clear
 * with Storage.clearDataForStorageKey, built from what the slot saw load: the main frame's origins
 * and the origins of documents loaded in subframes.
 *
 * The top-level site is scheme + registrable domain; rather than ship a public-suffix list, every
 * suffix of the host with two or more labels is tried (clearing a key that holds nothing is harmless
 * and takes a millisecond). Pages without cross-site frames add no keys beyond one per frame origin.
 */
export function partitionedStorageKeys(topOrigins: Iterable<string>, frameOrigins: Iterable<string>): string[] {
  const tops = [...topOrigins];
  const keys = new Set<string>();
  for (const frame of frameOrigins) {
    const frameHost = hostOf(frame);
    if (frameHost === null) continue;
    // The frame's own origin under a cross-site ancestor (A in B in A).
    keys.add(`${frame}/^31`);
    for (const top of tops) {
      for (const site of siteCandidates(top)) {
        const siteHost = hostOf(site)!;
        if (frameHost === siteHost || frameHost.endsWith(`.${siteHost}`)) continue; // same site: first-party key
        keys.add(`${frame}/^0${site}`);
      }
    }
  }
  return [...keys];
}

/** scheme://host for each possible registrable domain of the origin's host (an IP or one-label host is its own site). */
function siteCandidates(origin: string): string[] {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return [];
  }
  const host = url.hostname;
  const labels = host.split('.');
  if (host.startsWith('[') || /^\d+(\.\d+){3}$/.test(host) || labels.length < 2) return [`${url.protocol}//${host}`];
  const sites: string[] = [];
  for (let i = 0; i <= labels.length - 2; i++) sites.push(`${url.protocol}//${labels.slice(i).join('.')}`);
  return sites;
}

function hostOf(origin: string): string | null {
  try {
    return new URL(origin).hostname;
  } catch {
    return null;
  }
}
