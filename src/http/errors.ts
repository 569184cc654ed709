import type { Context, ErrorHandler } from 'hono';
import { errorBody, ShotError } from '../errors/shot-error.js';
import type { Logger } from '../log/logger.js';

export interface ErrorAnswers {
  /** The message of a 500: anything not already a client-facing error, whose cause only the log may show. */
  unexpected: string;
  /** Where a 500's cause is logged (the node logs under the request's id). */
  log(c: Context): Logger | undefined;
  /** Headers on every error answer, e.g. the node's X-Shotfleet-Node. */
  headers?: Record<string, string>;
}

/**
 * The one place errors become HTTP answers, for the node and the hub alike: a ShotError answers with its code's
 * status, its JSON body and its headers (Retry-After on a 503); anything else is a 500 that names no internals.
 */
export function answerErrors(opts: ErrorAnswers): ErrorHandler {
  return (err, c) => {
    const shotError = err instanceof ShotError ? err : new ShotError('render_failed', opts.unexpected);
    if (shotError.code === 'render_failed') opts.log(c)?.error({ err }, 'request failed');
    for (const [name, value] of Object.entries({ ...shotError.headers, ...opts.headers })) c.header(name, value);
    return c.json(errorBody(shotError), shotError.status as 400);
  };
}

/** A route nobody serves: a 404 in the same JSON shape, saying where the routes are described. */
export function notFound(where: string): (c: Context) => never {
  return (c) => {
    throw new ShotError('not_found', `no route ${c.req.method} ${c.req.path}; ${where}`);
  };
}
