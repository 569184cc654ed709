import { z } from 'zod';

/** One entry of SHOTFLEET_KEYS_FILE, as the README's Keys section describes it. */
const keyEntrySchema = z
  .object({
    name: z.string().regex(/^[a-z0-9_-]{1,32}$/, { error: 'a name is 1 to 32 of a-z, 0-9, "_" and "-"' }),
    token: z.string().trim().min(1, { error: 'must not be empty' }).optional(),
    tokenSha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, { error: "expected the 64 hex digits of the token's SHA-256" })
      .transform((hex) => hex.toLowerCase())
      .optional(),
    weight: z.number().positive({ error: 'must be above 0' }).max(1000, { error: 'must be at most 1000' }).default(1),
    maxConcurrent: z.number().int({ error: 'expected a whole number' }).min(1, { error: 'must be at least 1' }).optional(),
    ratePerMinute: z.number().positive({ error: 'must be above 0' }).optional(),
  })
  .strict()
  .refine((k) => (k.token === undefined) !== (k.tokenSha256 === undefined), { error: 'give exactly one of token and tokenSha256' });

const keysFileSchema = z
  .object({ keys: z.array(keyEntrySchema) })
  .strict()
  .superRefine(({ keys }, ctx) => {
    const seen = new Set<string>();
    keys.forEach((k, i) => {
      if (seen.has(k.name)) ctx.addIssue({ code: 'custom', path: ['keys', i, 'name'], message: `"${k.name}" is used by an earlier key` });
      seen.add(k.name);
    });
  });

export type KeyEntry = z.output<typeof keyEntrySchema>;

export type KeysFileVerdict = { ok: true; keys: KeyEntry[] } | { ok: false; problem: string };

/**
 * Parses the text of a keys file. A problem names the place (`keys[2].name: …`) but never a value: a token quoted
 * in a log line would be a leaked token.
 */
export function parseKeysFile(text: string): KeysFileVerdict {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, problem: 'not valid JSON; expected {"keys":[{"name":"…","token":"…"}]}' };
  }
  const parsed = keysFileSchema.safeParse(json);
  if (parsed.success) return { ok: true, keys: parsed.data.keys };
  const issue = parsed.error.issues[0];
  const where = issue.path
    .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
    .join('')
    .replace(/^\./, '');
  return { ok: false, problem: `${where || 'the file'}: ${issue.message}` };
}

/** Reads and parses the keys file at `path`; a file that cannot be read is a problem like a bad one. */
export function readKeysFile(path: string, read: (path: string) => string): KeysFileVerdict {
  let text: string;
  try {
    text = read(path);
  } catch (err) {
    return { ok: false, problem: `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})` };
  }
  return parseKeysFile(text);
}
