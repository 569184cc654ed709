import { Hono, type Context } from 'hono';
import { getCookie } from 'hono/cookie';
import type { ShotError } from '../errors/shot-error.js';
import type { ClientKey } from '../keys/key-set.js';
import { readJsonBody } from '../http/json-body.js';
import { createOptionsSchema, parseRenderOptions, type RenderLimits } from '../render/options.js';
import { queryParameters, queryToBody } from '../render/query-parameters.js';
import type { RenderService, ScreenshotResult, Timings } from '../render/render-service.js';
import type { AppEnv } from './app-env.js';

export interface ScreenshotRouteDeps {
  render: RenderService;
  limits: RenderLimits;
  sessionCookie: string;
  /**
   * The 503 every request would get now (shutting down, out of memory, queue full), or null: asked before the
   * body is read or validated, so that shedding stays the cheapest thing the node does. Given the request's key:
   * a full queue sheds from the key holding the most of it.
   */
  refusalForAnyRequest(client?: ClientKey): ShotError | null;
}

export function screenshotRoutes(deps: ScreenshotRouteDeps) {
  const schema = createOptionsSchema(deps.limits);
  const getParameters = queryParameters(schema);
  const app = new Hono<AppEnv>();

  app.post('/screenshot', async (c) => {
    const arrivedAt = Date.now();
    refuseIfSaturated(c);
    return shoot(c, await readJsonBody(c, 'the options'), arrivedAt);
  });

  app.get('/screenshot', (c) => {
    const arrivedAt = Date.now();
    refuseIfSaturated(c);
    return shoot(c, queryToBody(getParameters, c.req.query()), arrivedAt);
  });

  function refuseIfSaturated(c: Context<AppEnv>): void {
    const refusal = deps.refusalForAnyRequest(c.get('client'));
    if (refusal) throw refusal;
  }

  async function shoot(c: Context<AppEnv>, body: unknown, arrivedAt: number): Promise<Response> {
    const options = parseRenderOptions(schema, body);
    const sessionId = getCookie(c, deps.sessionCookie);
    const result = await deps.render.screenshot({ options, arrivedAt, signal: c.req.raw.signal, sessionId, client: c.get('client'), log: c.get('log') });
    setResultHeaders(c, result);
    if (result.kind === 'stored') return c.json(result.body);
    return c.body(new Uint8Array(result.image), 200, { 'Content-Type': result.contentType, 'Cache-Control': 'no-store' });
  }

  return app;
}

function setResultHeaders(c: Context, result: ScreenshotResult): void {
  c.header('Server-Timing', serverTiming(result.timings));
  if (result.truncated) c.header('X-Shotfleet-Truncated', 'true');
  if (result.session) c.header('X-Shotfleet-Session', result.session);
  if (result.targetStatus !== undefined) c.header('X-Shotfleet-Target-Status', String(result.targetStatus));
  if (result.bestEffort) c.header('X-Shotfleet-Best-Effort', 'true');
}

function serverTiming(t: Timings): string {
  const parts = [`queue;dur=${t.queueMs}`, `render;dur=${t.renderMs}`];
  if (t.uploadMs !== undefined) parts.push(`upload;dur=${t.uploadMs}`);
  return parts.join(', ');
}
