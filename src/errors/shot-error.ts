/** The codes of the contract's error table, with their HTTP status. */
export const errorStatus = {
  invalid_request: 400,
  unauthorized: 401,
  url_forbidden: 403,
  not_found: 404,
  payload_too_large: 413,
  unsupported_media_type: 415,
  selector_not_found: 422,
  script_failed: 422,
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

export type ShedReason = 'queue_full' | 'queue_timeout' | 'deadline' | 'upload_backlog' | 'memory' | 'draining';

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
    message ?? (reason === 'draining' ? 'this node is shutting down; retry on another node' : `this node is saturated (${reason}); retry in ${seconds}s or on another node`),
    { reason, retryAfterSeconds: seconds },
    { 'Retry-After': String(seconds) },
  );
}

export function errorBody(err: ShotError) {
  return { error: { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) } };
}
