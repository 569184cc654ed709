import type { MiddlewareHandler } from 'hono';
import { rateLimited } from '../errors/shot-error.js';
import type { KeyLimits } from '../keys/key-limits.js';
import type { AppEnv } from './app-env.js';

/**
 * A request's key over its maxConcurrent or ratePerMinute is answered 429 before its body is read; otherwise it holds
 * one of its key's turns until it is answered. Requests without a key have no limits of their own.
 */
export function enforceKeyLimits(limits: KeyLimits): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const client = c.get('client');
    if (!client) return next();
    const turn = limits.take(client);
    if (!turn.ok) throw rateLimited(turn.limit, client.name, turn.retryAfterSeconds);
    try {
      await next();
    } finally {
      turn.release();
    }
  };
}
