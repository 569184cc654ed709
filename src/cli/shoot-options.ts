import path from 'node:path';
import { parseArgs } from './args.js';
import type { RequestBody } from '../shoot/input.js';
import { UsageError, type ShootOptions } from '../shoot/shoot.js';
import { defaultViewport } from '../render/viewport.js';

export const usage = `usage: shotfleet shoot FILE --endpoint URL [options]

Screenshots every URL in FILE (or stdin with "-") through a shotfleet node or fleet.
FILE holds one URL per line, or JSON Lines of POST /screenshot bodies; "#" comments and blank lines
are skipped, bad lines are reported and skipped. Images are saved as DIR/<line>-<slug of the URL>.<ext>.
A manifest (JSON Lines: line, url, status ok|failed, file or key+url (the link), source, bytes, timings, error) is written
as items finish; running the same command again skips the lines it already has as ok.

batch:
  --endpoint URL            node or HAProxy address, e.g. http://127.0.0.1:3000 (required)
  --out DIR                 where images and the manifest go (default: .)
  --manifest PATH           manifest file (default: DIR/manifest.jsonl)
  --concurrency N           requests in progress at once (default: 4)
  --token T                 bearer token (default: $SHOTFLEET_TOKEN)
  --retries N               retries per item after 502, 504, connection errors, timeouts (default: 4)
  --shed-retries N          503s per item waited out (for their Retry-After) before it fails (default: 20)
  --retry-budget N          retries of either kind for the whole batch (default: 20 + 3 per item)
  --request-timeout MS      give up on one attempt after MS (default: 120000, or --timeout + 60000)
  --progress-interval MS    how often to print progress when stderr is not a terminal (default: 5000)
  --quiet                   no progress: only failed lines and the summary

request defaults (a JSON line's own fields win):
  --format png|jpeg|webp    image type (default: the node's, png)
  --quality N               1-100, jpeg and webp only
  --width N --height N      viewport in CSS px (the other one defaults to 1280 / 800)
  --scale N                 deviceScaleFactor
  --device NAME             a named device preset instead of a viewport
  --full-page               the whole scrollable page
  --wait-until EVENT        load | domcontentloaded | networkidle0 | networkidle2
  --wait-for-selector SEL   wait for an element before capturing
  --delay MS                extra wait before capturing
  --timeout MS              render deadline on the node
  --color-scheme light|dark
  --media-type screen|print
  --user-agent UA
  --optimize-for-speed      faster PNG encoding, bigger files
  --omit-background         transparent background (png, webp)
  --reduced-motion          prefers-reduced-motion, animations frozen
  --block-ads               ad and tracker requests blocked
  --block-cookie-banners    cookie-consent banners hidden
  --scroll-page             scroll through the page first so lazy content loads
  --best-effort             capture what is there when waits are not met in time, instead of 504
  --timezone ZONE           emulated IANA time zone, e.g. Asia/Tokyo
  --locale TAG              emulated locale (navigator, Intl, Accept-Language), e.g. fr-CH
  --fail-on-http-status S   fail lines whose page answers such a status: "true" (any >= 400) or a list, e.g. 404,500
  --store                   upload to the node's S3 bucket; the manifest records key and url (the link)

exit status: 0 when every line succeeded, 1 when any failed, was invalid or was left undone,
2 for a usage error, 130 when interrupted (Ctrl-C: finished items stay in the manifest).
`;

const booleanFlags = [
  'store',
  'full-page',
  'optimize-for-speed',
  'omit-background',
  'reduced-motion',
  'block-ads',
  'block-cookie-banners',
  'scroll-page',
  'best-effort',
  'quiet',
];
const stringFlags = [
  'endpoint',
  'out',
  'manifest',
  'concurrency',
  'token',
  'retries',
  'shed-retries',
  'retry-budget',
  'request-timeout',
  'progress-interval',
  'format',
  'quality',
  'width',
  'height',
  'scale',
  'device',
  'wait-until',
  'wait-for-selector',
  'delay',
  'timeout',
  'color-scheme',
  'media-type',
  'user-agent',
  'timezone',
  'locale',
  'fail-on-http-status',
];
const enums: Record<string, readonly string[]> = {
  format: ['png', 'jpeg', 'webp'],
  'wait-until': ['load', 'domcontentloaded', 'networkidle0', 'networkidle2'],
  'color-scheme': ['light', 'dark'],
  'media-type': ['screen', 'print'],
};

/** Returns undefined for --help. Throws UsageError with a message that says what to fix. */
export function parseShootOptions(argv: string[], env: NodeJS.ProcessEnv): ShootOptions | undefined {
  const { positionals, flags, help } = parseArgs(argv, new Set(booleanFlags));
  if (help) return undefined;
  for (const name of Object.keys(flags)) {
    if (!booleanFlags.includes(name) && !stringFlags.includes(name)) throw new UsageError(`unknown option --${name}`);
    if (stringFlags.includes(name) && flags[name] === true) throw new UsageError(`--${name} needs a value`);
  }
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
  const bool = (name: string) => {
    const value = flags[name];
    if (typeof value !== 'string') return value;
    if (/^(true|1|yes)$/i.test(value)) return true;
    if (/^(false|0|no)$/i.test(value)) return false;
    throw new UsageError(`--${name} is true or false, got "${value}"`);
  };
  for (const [name, allowed] of Object.entries(enums)) {
    const value = text(name);
    if (value !== undefined && !allowed.includes(value)) throw new UsageError(`--${name} must be one of ${allowed.join(', ')}, got "${value}"`);
  }

  const outDir = text('out') ?? '.';
  const timeout = int('timeout', 1, 3_600_000);
  const width = int('width', 1, 100_000);
  const height = int('height', 1, 100_000);
  const scale = text('scale') === undefined ? undefined : Number(text('scale'));
  if (scale !== undefined && !(scale > 0)) throw new UsageError(`--scale must be a number above 0, got "${text('scale')}"`);

  const defaults: RequestBody = compact({
    format: text('format'),
    quality: int('quality', 1, 100),
    viewport:
      (width ?? height ?? scale)
        ? compact({ width: width ?? defaultViewport.width, height: height ?? defaultViewport.height, deviceScaleFactor: scale })
        : undefined,
    device: text('device'),
    fullPage: bool('full-page'),
    waitUntil: text('wait-until'),
    waitForSelector: text('wait-for-selector'),
    delay: int('delay', 0, 3_600_000),
    timeout,
    colorScheme: text('color-scheme'),
    mediaType: text('media-type'),
    userAgent: text('user-agent'),
    optimizeForSpeed: bool('optimize-for-speed'),
    omitBackground: bool('omit-background'),
    reducedMotion: bool('reduced-motion'),
    blockAds: bool('block-ads'),
    blockCookieBanners: bool('block-cookie-banners'),
    scrollPage: bool('scroll-page'),
    bestEffort: bool('best-effort'),
    timezone: text('timezone'),
    locale: text('locale'),
    failOnHttpStatus: statusList(text('fail-on-http-status')),
    store: bool('store'),
  });

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
    quiet: bool('quiet') === true,
    defaults,
  };
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

/** --fail-on-http-status: true/false, or a comma list of HTTP statuses. */
function statusList(value: string | undefined): boolean | number[] | undefined {
  if (value === undefined) return undefined;
  if (/^(true|false)$/i.test(value)) return value.toLowerCase() === 'true';
  const statuses = value.split(',').map((part) => Number(part.trim()));
  if (statuses.some((n) => !Number.isInteger(n) || n < 100 || n > 599)) {
    throw new UsageError(`--fail-on-http-status is "true" or a list of HTTP statuses such as 404,500, got "${value}"`);
  }
  return statuses;
}

function compact<T extends Record<string, unknown>>(object: T): Partial<T> {
  return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined)) as Partial<T>;
}
