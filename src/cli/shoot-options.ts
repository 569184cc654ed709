import path from 'node:path';
import { requestSurface, type JsonSchema } from '../api/request-schema.js';
import { typeText } from '../api/option-docs.js';
import { ShotError } from '../errors/shot-error.js';
import { createOptionsSchema, parseRenderOptions, widestLimits } from '../request/options.js';
import { type QueryParameter, queryToBody } from '../request/query-parameters.js';
import { defaultViewport } from '../request/viewport.js';
import type { RequestBody } from '../shoot/input.js';
import { UsageError, type ShootOptions } from '../shoot/shoot.js';
import { type FlagKind, readCommandLine, UsageError as CommandLineError } from './command-line.js';

/** The batch's own flags: how to reach the fleet and how hard to try. Everything else is a request option. */
const batchFlags = {
  endpoint: { value: 'URL', meaning: 'node or HAProxy address, e.g. http://127.0.0.1:3000 (required)' },
  out: { value: 'DIR', meaning: 'where images and the manifest go (default: .)' },
  manifest: { value: 'PATH', meaning: 'manifest file (default: DIR/manifest.jsonl)' },
  concurrency: { value: 'N', meaning: 'requests in progress at once (default: 4)' },
  token: { value: 'T', meaning: 'bearer token (default: $SHOTFLEET_TOKEN, which keeps it out of ps)' },
  retries: { value: 'N', meaning: 'retries per item after 502, 504, connection errors, timeouts (default: 4)' },
  'shed-retries': { value: 'N', meaning: '503s and 429s per item waited out (for their Retry-After) before it fails (default: 20)' },
  'retry-budget': { value: 'N', meaning: 'retries of either kind for the whole batch (default: 20 + 3 per item)' },
  'request-timeout': { value: 'MS', meaning: 'give up on one attempt after MS (default: 120000, or --timeout + 60000)' },
  'progress-interval': { value: 'MS', meaning: 'how often to print progress when stderr is not a terminal (default: 5000)' },
  quiet: { value: '', meaning: 'no progress: only failed lines and the summary' },
} as const;

/** Request options a batch line brings itself, not a default for every line. */
const perLine = new Set(['url', 'html']);
/** Old flag names kept working. */
const aliases = { scale: 'device-scale-factor' };

const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

type RequestFlag = QueryParameter & { flag: string; schema: JsonSchema & { description?: string; enum?: string[] } };

/**
 * The request flags, read from the request schema as GET /screenshot's parameters are: every scalar option
 * (the viewport's fields by their own names) and `store`. A new option needs no edit here.
 */
function requestFlags(): RequestFlag[] {
  const surface = requestSurface(widestLimits);
  const store = { name: 'store', path: ['store'], kind: 'boolean' as const, schema: surface.body.properties.store };
  return [...surface.query.filter((p) => !perLine.has(p.name)), store].map((p) => ({ ...p, flag: kebab(p.name) }) as RequestFlag);
}

function flagLine(flag: string, value: string, meaning: string): string {
  const head = `  --${flag}${value ? ` ${value}` : ''}`;
  return head.length < 28 ? `${head.padEnd(28)}${meaning}` : `${head}\n${' '.repeat(28)}${meaning}`;
}

function valueHint(p: RequestFlag): string {
  if (p.kind === 'boolean') return '';
  if (p.schema.enum) return p.schema.enum.join('|');
  if (p.kind === 'booleanOrNumbers') return 'true|LIST';
  return typeText(p.schema).startsWith('integer') || typeText(p.schema).startsWith('number') ? 'N' : 'TEXT';
}

export function shootUsage(): string {
  const batch = Object.entries(batchFlags).map(([flag, f]) => flagLine(flag, f.value, f.meaning));
  const request = requestFlags().map((p) => flagLine(p.flag, valueHint(p), p.schema.description ?? ''));
  return `usage: shotfleet shoot FILE --endpoint URL [options]

Screenshots every URL in FILE (or stdin with "-") through a shotfleet node or fleet.
FILE holds one URL per line, or JSON Lines of POST /screenshot bodies; "#" comments and blank lines
are skipped, bad lines are reported and skipped. Images are saved as DIR/<line>-<slug of the URL>.<ext>.
A manifest (JSON Lines: line, url, status ok|failed, file or key+url (the link), source, bytes, timings, error) is written
as items finish; running the same command again skips the lines it already has as ok.

batch:
${batch.join('\n')}
  --version                 print the release

request defaults, the options of POST /screenshot (a JSON line's own fields win; --scale is --device-scale-factor):
${request.join('\n')}

exit status: 0 when every line succeeded, 1 when any failed, was invalid or was left undone,
2 for a usage error, 130 when interrupted (Ctrl-C: finished items stay in the manifest).
`;
}

/** Returns undefined for --help, the version line for --version. Throws UsageError with a message that says what to fix. */
export function parseShootOptions(argv: string[], env: NodeJS.ProcessEnv): ShootOptions | undefined | 'version' {
  const params = requestFlags();
  const kinds: Record<string, FlagKind> = {
    ...Object.fromEntries(Object.entries(batchFlags).map(([f, { value }]) => [f, value ? 'string' : 'boolean'] as const)),
    ...Object.fromEntries(params.map((p) => [p.flag, p.kind === 'boolean' ? 'boolean' : 'string'] as const)),
  };
  let args: ReturnType<typeof readCommandLine>;
  try {
    args = readCommandLine(argv, kinds, aliases);
  } catch (err) {
    throw err instanceof CommandLineError ? new UsageError(err.message) : err;
  }
  if (args.help) return undefined;
  if (args.version) return 'version';
  const { positionals, flags } = args;
  if (positionals.length !== 1) {
    throw new UsageError(
      positionals.length === 0 ? 'name the input FILE (or "-" for stdin)' : `expected one input FILE, got ${positionals.length}: ${positionals.join(' ')}`,
    );
  }
  const text = (name: string) => flags[name] as string | undefined;
  const int = (name: string, min: number, max: number) => {
    const value = text(name);
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got "${value}"`);
    return n;
  };
  const defaults = requestDefaults(params, flags);
  const timeout = defaults.timeout as number | undefined;
  const outDir = text('out') ?? '.';
  return {
    input: positionals[0],
    endpoint: screenshotEndpoint(text('endpoint')),
    outDir,
    manifestFile: text('manifest') ?? path.join(outDir, 'manifest.jsonl'),
    concurrency: int('concurrency', 1, 1024) ?? 4,
    token: text('token') ?? (env.SHOTFLEET_TOKEN || undefined),
    maxRetriesPerItem: int('retries', 0, 1000) ?? 4,
    maxShedRetriesPerItem: int('shed-retries', 0, 1000) ?? 20,
    batchRetryBudget: int('retry-budget', 0, 10_000_000),
    requestTimeoutMs: int('request-timeout', 100, 3_600_000) ?? Math.max(120_000, (timeout ?? 0) + 60_000),
    progressIntervalMs: int('progress-interval', 100, 3_600_000) ?? 5000,
    quiet: flags.quiet === true,
    defaults,
  };
}

const requestSchema = createOptionsSchema(widestLimits);

/**
 * The request flags as body fields, converted as GET /screenshot converts its parameters and judged by the
 * request schema at once, so a bad default is a usage error naming its flag rather than every line failing.
 */
function requestDefaults(params: RequestFlag[], flags: Record<string, string | boolean>): RequestBody {
  const flagOf = new Map(params.map((p) => [p.name, p.flag]));
  const given = params.filter((p) => flags[p.flag] !== undefined);
  for (const p of given) {
    const value = String(flags[p.flag]);
    if (p.schema.enum && !p.schema.enum.includes(value)) throw new UsageError(`--${p.flag} must be one of ${p.schema.enum.join(', ')}, got "${value}"`);
  }
  const asFlag = (message: string) => message.replace(/^([\w.]+?)(\.\d+)?:/, (_, field: string) => `--${flagOf.get(field.split('.').pop()!) ?? kebab(field)}:`);
  let body: RequestBody;
  try {
    body = queryToBody(given, Object.fromEntries(given.map((p) => [p.name, String(flags[p.flag])])));
  } catch (err) {
    if (!(err instanceof ShotError)) throw err;
    const field = (err.details?.fields as { field: string }[] | undefined)?.[0]?.field ?? '';
    throw new UsageError(`--${flagOf.get(field) ?? field}: ${err.message}`);
  }
  // A viewport default is sent whole: the size a line gets does not depend on the node's own defaults.
  if (body.viewport) body.viewport = { width: defaultViewport.width, height: defaultViewport.height, ...(body.viewport as object) };
  try {
    parseRenderOptions(requestSchema, { url: 'https://example.com/', ...body });
  } catch (err) {
    if (!(err instanceof ShotError)) throw err;
    throw new UsageError(asFlag(err.message));
  }
  return body;
}

/** `http://host:3000` → `http://host:3000/screenshot`; an address that already ends in /screenshot is kept. */
function screenshotEndpoint(value: string | undefined): URL {
  if (value === undefined) throw new UsageError('--endpoint is required: the node or HAProxy address, e.g. --endpoint http://127.0.0.1:3000');
  if (!URL.canParse(value) || !/^https?:$/.test(new URL(value).protocol)) {
    throw new UsageError(`--endpoint must be an http(s) URL such as http://127.0.0.1:3000, got "${value}"`);
  }
  const url = new URL(value);
  if (!url.pathname.endsWith('/screenshot')) url.pathname = `${url.pathname.replace(/\/+$/, '')}/screenshot`;
  return url;
}
