import type { Logger } from '../log/logger.js';

/** What the node's first middleware puts on every request for the routes: its id and a logger that carries it. */
export type AppEnv = { Variables: { log: Logger; requestId: string } };
