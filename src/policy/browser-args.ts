/**
 * Chromium flags the URL policy needs at launch (they apply to the whole browser, not one context).
 * WebRTC sends STUN/TURN over UDP straight to any address, around the HTTP proxy: a page could reach
 * `stun:10.0.0.1` unchecked. With this policy WebRTC only uses what the proxy carries (TCP through CONNECT).
 */
export const policyBrowserArgs = ['--webrtc-ip-handling-policy=disable_non_proxied_udp'];

/** Without its sandbox a renderer runs with the browser's full rights; the flag is given only when it must be off. */
export function sandboxArgs(sandbox: boolean): string[] {
  return sandbox ? [] : ['--no-sandbox'];
}

/** Variables Chromium needs to find its tools, fonts, locale and time zone; nothing else of the node's reaches it. */
const allowedNames = new Set(['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LANGUAGE', 'TZ', 'TMPDIR', 'DISPLAY']);
const allowedPrefixes = ['LC_', 'FONTCONFIG_', 'XDG_'];

/**
 * The environment Chromium is started with. Its browser process is readable (/proc/PID/environ) by any code
 * running as the same user, a renderer exploit included, so the node's tokens, signing key and AWS credentials
 * must not be in it: an allow-list, so a credential of a kind not foreseen here stays out too.
 */
export function chromeEnvironment(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    if (allowedNames.has(name) || allowedPrefixes.some((p) => name.startsWith(p))) out[name] = value;
  }
  return out;
}
