import type { AuthEnv } from '../http/auth.js';
import type { Logger } from '../log/logger.js';

/**
 * What the node's middleware puts on every request for the routes: its id and a logger that carries it (the first
 * middleware), and the key it came with (auth).
 */
export type AppEnv = { Variables: { log: Logger; requestId: string } & AuthEnv['Variables'] };
