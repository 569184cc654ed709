/** How much of a URL a log line keeps: enough to recognise it, while a 2 MB data-laden URL can't flood the logs. */
export const loggedUrlChars = 200;

/** Log fields for a URL from an untrusted page or client: `url` cut to loggedUrlChars, and its full length. */
export function urlForLog(url: string): { url: string; urlLength: number } {
  return { url: url.length > loggedUrlChars ? `${url.slice(0, loggedUrlChars)}…` : url, urlLength: url.length };
}
