/** The codes of the README's error table, with their HTTP status. */
export const errorStatus = {
  invalid_request: 400,
  unauthorized: 401,
  url_forbidden: 403,
  not_found: 404,
  payload_too_large: 413,
  unsupported_media_type: 415,
  selector_not_found: 422,
  script_failed: 422,
  rate_limited: 429,
  storage_not_configured: 501,
  navigation_failed: 502,
  upload_failed: 502,
  target_http_error: 502,
  saturated: 503,
  draining: 503,
  timeout: 504,
  render_failed: 500,
} as const;

export type ErrorCode = keyof typeof errorStatus;

export const shedReasons = ['queue_full', 'queue_timeout', 'deadline', 'upload_backlog', 'memory', 'draining'] as const;
export type ShedReason = (typeof shedReasons)[number];

/** An error meant for the client: its message is safe to show and says what to do next. */
export class ShotError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
    /** Extra response headers, e.g. Retry-After on a 503. */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.status = errorStatus[code];
  }
}

/** A 503 that sheds load: always with Retry-After (whole seconds ≥ 1) and details.reason. */
export function shed(reason: ShedReason, retryAfterSeconds: number, message?: string): ShotError {
  const seconds = Math.max(1, Math.ceil(retryAfterSeconds));
  return new ShotError(
    reason === 'draining' ? 'draining' : 'saturated',
    message ??
      (reason === 'draining'
        ? 'this node is shutting down; retry on another node'
        : `this node is saturated (${reason}); retry in ${seconds}s or on another node`),
    { reason, retryAfterSeconds: seconds },
    { 'Retry-After': String(seconds) },
  );
}

/** A 429: this key is over one of its own limits (the node may have room for others); with Retry-After. */
export function rateLimited(limit: 'maxConcurrent' | 'ratePerMinute', key: string, retryAfterSeconds: number): ShotError {
  const seconds = Math.max(1, Math.ceil(retryAfterSeconds));
  const what = limit === 'maxConcurrent' ? 'requests in flight on this node' : 'requests per minute';
  return new ShotError(
    'rate_limited',
    `key "${key}" is at its ${limit} (${what}); retry in ${seconds}s`,
    { limit, key, retryAfterSeconds: seconds },
    { 'Retry-After': String(seconds) },
  );
}

export function errorBody(err: ShotError) {
  return { error: { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) } };
}

/** When each code is answered: the API description (GET /openapi.json, /docs) is generated from this. */
export const errorMeanings: Record<ErrorCode, string> = {
  invalid_request:
    'Bad JSON, an unknown, contradictory or out-of-range field, a value above a configured maximum (never clamped), a URL that is not http(s), or an image known in advance to be too large; details.fields names each field.',
  unauthorized: 'A token is configured and the request lacks it: send "Authorization: Bearer <token>" or a "token" header.',
  url_forbidden: 'The URL policy refused the page or a redirect (private, loopback, link-local… addresses, or a denied host).',
  not_found: 'No such route.',
  payload_too_large: 'The body is over SHOTFLEET_MAX_BODY_BYTES.',
  unsupported_media_type: 'A POST whose Content-Type is not application/json.',
  selector_not_found: 'selector matched no element, or one of zero size.',
  script_failed: 'The scripts option threw, rejected or did not parse; details.message has its message.',
  rate_limited:
    "The request's key is over its own maxConcurrent or ratePerMinute on this node (details.limit): retry after Retry-After seconds. A 503 is about the node; a 429 is about the key.",
  target_http_error: "failOnHttpStatus matched the status of the page's own document (after redirects); details.status has it. Nothing was stored.",
  storage_not_configured: 'store: true on a node without SHOTFLEET_S3_BUCKET.',
  navigation_failed: 'The target page could not be reached.',
  upload_failed: 'S3 did not confirm the upload after retries; nothing was stored.',
  saturated: 'Shed before any work (queue_full, queue_timeout, deadline, upload_backlog, memory): retry after Retry-After seconds or on another node.',
  draining: 'The node is shutting down: retry on another node.',
  timeout: 'The request deadline (timeout) passed; the page work was torn down.',
  render_failed: 'Anything else; the node logged the cause under the request id. Never a stack trace.',
};
