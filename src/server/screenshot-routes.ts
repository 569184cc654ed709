import { Hono, type Context } from 'hono';
import { getCookie } from 'hono/cookie';
import { ShotError } from '../errors/shot-error.js';
import { createOptionsSchema, parseRenderOptions, queryToBody, type RenderLimits } from '../render/options.js';
import type { RenderService, ScreenshotResult, Timings } from '../render/render-service.js';
import type { AppEnv } from './app.js';

export interface ScreenshotRouteDeps {
  render: RenderService;
  limits: RenderLimits;
  sessionCookie: string;
  /**
   * The 503 every request would get now (shutting down, out of memory, queue full), or null: asked before the
   * body is read or validated, so that shedding stays the cheapest thing the node does.
   */
  refusalForAnyRequest(): ShotError | null;
}

export function screenshotRoutes(deps: ScreenshotRouteDeps) {
  const schema = createOptionsSchema(deps.limits);
  const app = new Hono<AppEnv>();

  app.post('/screenshot', async (c) => {
    const arrivedAt = Date.now();
    refuseIfSaturated();
    const type = c.req.header('content-type') ?? '';
      if (!/^application\/json\s*(;|$)/i.test(type)) {
        throw new ShotError('unsupported_media_type', 'send the options as JSON with "Content-Type: application/json"');
      }
      let body: unknown;
      try {
        body = await c.req.json();
      } catch {
        throw new ShotError('invalid_request', 'the body is not valid JSON');
      }
    return shoot(c, body, arrivedAt);
  });

  app.get('/screenshot', (c) => {
    const arrivedAt = Date.now();
    refuseIfSaturated();
    return shoot(c, queryToBody(c.req.query()), arrivedAt);
  });

  function refuseIfSaturated(): void {
    const refusal = deps.refusalForAnyRequest();
    if (refusal) throw refusal;
  }

  async function shoot(c: Context<AppEnv>, body: unknown, arrivedAt: number): Promise<Response> {
    const options = parseRenderOptions(schema, body);
    const sessionId = getCookie(c, deps.sessionCookie);
    const result = await deps.render.screenshot({ options, arrivedAt, signal: c.req.raw.signal, sessionId, log: c.get('log') });
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
