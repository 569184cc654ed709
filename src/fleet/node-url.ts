/** A node's base URL as the hub keeps it: scheme, host and port, nothing else. */
export interface NodeEndpoint {
  /** Normalised: "http://host:port", no trailing slash. */
  url: string;
  host: string;
  port: number;
}

/**
 * Accepts only a plain http(s) origin: no credentials, no path other than "/", no query or fragment, so a
 * registered URL can never point the hub's pings (or HAProxy) anywhere but a node's root.
 */
export function parseNodeUrl(input: unknown): NodeEndpoint {
  if (typeof input !== 'string' || input.length > 2048) throw new TypeError('url must be a string like "http://10.0.0.5:3000"');
  let parsed: URL;
  try {
    parsed = new URL(input);
  } catch {
    throw new TypeError(`url "${input}" is not a URL; send the node's base URL like "http://10.0.0.5:3000"`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new TypeError('url must use http or https');
  if (parsed.username || parsed.password) throw new TypeError('url must not carry credentials');
  if (parsed.pathname !== '/' || parsed.search || parsed.hash || /[?#]/.test(input)) {
    throw new TypeError("url must be the node's base URL, without a path, query or fragment");
  }
  if (!parsed.hostname) throw new TypeError('url needs a host');
  const port = Number(parsed.port || (parsed.protocol === 'https:' ? 443 : 80));
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  return { url: `${parsed.protocol}//${parsed.host}`, host, port };
}
