import { answeredHelpOrVersion, readCommandLine, UsageError } from './command-line.js';
import { signLink } from '../signing/signature.js';

const help = `usage: shotfleet sign URL [--expires-in SECONDS] [--kid NAME] [--signing-key KEY]

Prints URL (a node's GET /screenshot link, e.g. "http://node:3000/screenshot?url=https%3A%2F%2Fexample.com&width=800")
with "expires" and "signature" query parameters added, alone on stdout. The node serves such a link without its
token until it expires; changing any parameter makes it a 401.

  --expires-in SECONDS   how long the link works (default: 3600)
  --kid NAME             sign as the API key NAME of the node's SHOTFLEET_KEYS_FILE: the link carries kid=NAME, the
                         signing key is that key's token, and removing the key from the file revokes the link
  --signing-key KEY      the HMAC key (default: $SHOTFLEET_SIGNING_KEY, which keeps it out of ps): the node's SHOTFLEET_SIGNING_KEY, or with
                         --kid the key's token
  --version              print the release
`;

export async function run(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const fail = (message: string) => {
    console.error(`shotfleet sign: ${message}`);
    return 2;
  };
  let args: ReturnType<typeof readCommandLine>;
  try {
    args = readCommandLine(argv, { 'expires-in': 'string', 'signing-key': 'string', kid: 'string' });
  } catch (err) {
    if (err instanceof UsageError) return fail(err.message);
    throw err;
  }
  if (answeredHelpOrVersion(args, help)) return 0;
  const { positionals, flags } = args;
  if (positionals.length !== 1) return fail('give one URL to sign, e.g. "http://127.0.0.1:3000/screenshot?url=https%3A%2F%2Fexample.com"');
  if (flags['signing-key'] !== undefined) {
    console.error('shotfleet sign: warning: --signing-key shows the key to every user of this machine (ps); set SHOTFLEET_SIGNING_KEY instead');
  }
  const key = (flags['signing-key'] as string | undefined) ?? env.SHOTFLEET_SIGNING_KEY;
  if (!key) return fail('no signing key: set SHOTFLEET_SIGNING_KEY to the key the node has');
  const expiresIn = Number(flags['expires-in'] ?? 3600);
  if (!Number.isInteger(expiresIn) || expiresIn < 1) return fail(`--expires-in must be a whole number of seconds of at least 1, got "${flags['expires-in']}"`);
  const link = URL.canParse(positionals[0]) ? new URL(positionals[0]) : null;
  if (!link || !/^https?:$/.test(link.protocol)) return fail(`"${positionals[0]}" is not an http(s) URL`);
  const kid = flags.kid as string | undefined;
  if (kid !== undefined) {
    if (!/^[a-z0-9_-]{1,32}$/.test(kid)) return fail(`--kid "${kid}" is not a key name (1 to 32 of a-z, 0-9, "_" and "-")`);
    link.searchParams.set('kid', kid);
  }
  console.log(signLink(link, key, Math.floor(Date.now() / 1000) + expiresIn).href);
  return 0;
}
