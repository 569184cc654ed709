import { Hono } from 'hono';
import { docsPage } from '../api/docs-page.js';
import { openApiDocument } from '../api/openapi.js';
import { requestSurface } from '../api/request-schema.js';
import { nodeStates } from '../api/node-states.js';
import { packageVersion } from '../metrics/package-version.js';
import type { RenderLimits } from '../request/options.js';
import type { AppEnv } from './app-env.js';

/** Paths anyone may read, token or not: the API description and the page to try it. */
export const apiDescriptionPaths = ['/openapi.json', '/docs'];

/**
 * GET /openapi.json and GET /docs, generated from the request schema with this node's limits on first use and
 * kept (building both takes a few hundred ms of CPU on a loaded machine: not something to add to every start).
 */
export function apiRoutes(deps: { limits: RenderLimits; sessionCookie: string }) {
  let built: { document: ReturnType<typeof openApiDocument>; page: ReturnType<typeof docsPage> } | undefined;
  const api = () => {
    if (!built) {
      const version = packageVersion();
      built = {
        document: openApiDocument({ limits: deps.limits, version, sessionCookie: deps.sessionCookie, nodeStates }),
        page: docsPage(requestSurface(deps.limits), version),
      };
    }
    return built;
  };
  const app = new Hono<AppEnv>();
  app.get('/openapi.json', (c) => c.json(api().document));
  app.get('/docs', (c) => {
    const { page } = api();
    return c.html(page.html, 200, {
      'Content-Security-Policy': page.csp,
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'Cache-Control': 'no-cache',
    });
  });
  return app;
}
