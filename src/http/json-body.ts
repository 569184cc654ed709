import type { Context } from 'hono';
import { ShotError } from '../errors/shot-error.js';

/** A request body that must be JSON: 415 for another Content-Type, 400 for text that does not parse. */
export async function readJsonBody(c: Context, what: string): Promise<unknown> {
  if (!/^application\/json\s*(;|$)/i.test(c.req.header('content-type') ?? '')) {
    throw new ShotError('unsupported_media_type', `send ${what} as JSON with "Content-Type: application/json"`);
  }
  try {
    return await c.req.json();
  } catch {
    throw new ShotError('invalid_request', 'the body is not valid JSON');
  }
}
