import { createHash, timingSafeEqual } from 'node:crypto';
import type { KeyEntry } from './keys-file.js';

/** A client as admission, the limits and the metrics see it: its name and its share of the node. */
export interface ClientKey {
  name: string;
  weight: number;
  maxConcurrent?: number;
  ratePerMinute?: number;
}

interface StoredKey extends ClientKey {
  digest: Buffer;
  /** The token in clear, when the file gave it so: the HMAC key of the key's signed links. */
  token?: string;
}

/**
 * The name requests without a key go by, in admission and in metric labels: outside the names a key may have, so no
 * key is ever counted with them.
 */
export const noKeyName = '(none)';

/** The key SHOTFLEET_TOKEN stands for. */
export const defaultKeyName = 'default';

export const sha256 = (text: string) => createHash('sha256').update(text).digest();

export interface KeySet {
  readonly size: number;
  readonly names: readonly string[];
  /** The key whose token this is, compared digest against digest in constant time; undefined for none. */
  identify(token: string | undefined): ClientKey | undefined;
  /** A key by name with its clear token (the HMAC key of its signed links), or undefined. */
  byName(name: string): { client: ClientKey; token?: string } | undefined;
}

/** The keys of the file plus SHOTFLEET_TOKEN's `default`, when set. */
export function createKeySet(entries: readonly KeyEntry[], defaultToken?: string): KeySet {
  const keys: StoredKey[] = entries.map((e) => ({
    name: e.name,
    weight: e.weight,
    maxConcurrent: e.maxConcurrent,
    ratePerMinute: e.ratePerMinute,
    token: e.token,
    digest: e.token !== undefined ? sha256(e.token) : Buffer.from(e.tokenSha256 ?? '', 'hex'),
  }));
  if (defaultToken !== undefined) keys.push({ name: defaultKeyName, weight: 1, token: defaultToken, digest: sha256(defaultToken) });
  const byName = new Map(keys.map((k) => [k.name, k]));
  const publicView = ({ name, weight, maxConcurrent, ratePerMinute }: StoredKey): ClientKey => ({ name, weight, maxConcurrent, ratePerMinute });
  return {
    size: keys.length,
    names: keys.map((k) => k.name),
    identify(token) {
      if (token === undefined) return undefined;
      const given = sha256(token);
      // Every key is compared, so the time taken says nothing about which one matched, or how far down it sits.
      let found: StoredKey | undefined;
      for (const key of keys) if (timingSafeEqual(given, key.digest) && !found) found = key;
      return found && publicView(found);
    },
    byName(name) {
      const key = byName.get(name);
      return key && { client: publicView(key), token: key.token };
    },
  };
}
