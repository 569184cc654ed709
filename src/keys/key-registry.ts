import fs from 'node:fs';
import { createKeySet, defaultKeyName, type KeySet } from './key-set.js';
import { readKeysFile, type KeyEntry } from './keys-file.js';

export interface KeyRegistryOptions {
  /** SHOTFLEET_KEYS_FILE: reread by reload(). */
  file?: string;
  /** The keys the file held at start (validated with the configuration). */
  initial?: readonly KeyEntry[];
  /** SHOTFLEET_TOKEN: the key `default`. */
  defaultToken?: string;
}

export type ReloadVerdict = { ok: true; names: readonly string[] } | { ok: false; problem: string };

export interface KeyRegistry {
  /** True when any key is configured: then every non-open route needs one. */
  readonly required: boolean;
  current(): KeySet;
  /** Rereads the file; a bad one changes nothing and says why (naming no token). */
  reload(): ReloadVerdict;
}

/** The problem with a file's keys beside SHOTFLEET_TOKEN, or undefined. */
export function keysConflict(keys: readonly KeyEntry[], defaultToken: string | undefined): string | undefined {
  if (defaultToken !== undefined && keys.some((k) => k.name === defaultKeyName)) {
    return `the name "${defaultKeyName}" is SHOTFLEET_TOKEN's key; rename the file's key or drop SHOTFLEET_TOKEN`;
  }
  return undefined;
}

/**
 * The node's API keys: the file's and SHOTFLEET_TOKEN's, swapped whole on reload, so a request sees either the
 * old set or the new one. Renders already admitted are not touched: a removed key's in-flight work finishes.
 */
export function createKeyRegistry(opts: KeyRegistryOptions, read = (path: string) => fs.readFileSync(path, 'utf8')): KeyRegistry {
  let keys = createKeySet(opts.initial ?? [], opts.defaultToken);
  return {
    required: opts.file !== undefined || opts.defaultToken !== undefined,
    current: () => keys,
    reload() {
      if (opts.file === undefined) return { ok: false, problem: 'no SHOTFLEET_KEYS_FILE is set: nothing to reread' };
      const verdict = readKeysFile(opts.file, read);
      if (!verdict.ok) return verdict;
      const conflict = keysConflict(verdict.keys, opts.defaultToken);
      if (conflict) return { ok: false, problem: conflict };
      keys = createKeySet(verdict.keys, opts.defaultToken);
      return { ok: true, names: keys.names };
    },
  };
}
