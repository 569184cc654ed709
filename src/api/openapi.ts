import { errorMeanings, errorStatus, shedReasons, type ErrorCode } from '../errors/shot-error.js';
import type { RenderLimits } from '../request/options.js';
import { requestSurface, type JsonSchema } from './request-schema.js';

export interface ApiDescriptionInput {
  limits: RenderLimits;
  version: string;
  sessionCookie: string;
  /** The hub's node states (GET /nodes). */
  nodeStates: readonly string[];
}

const json = (schema: JsonSchema) => ({ 'application/json': { schema } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** One response per status, listing the codes answered with it, each with an example body. */
function errorResponses(codes: readonly ErrorCode[]) {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) byStatus.set(errorStatus[code], [...(byStatus.get(errorStatus[code]) ?? []), code]);
  return Object.fromEntries(
    [...byStatus].map(([status, list]) => [
      String(status),
      {
        description: list.map((code) => `\`${code}\`: ${errorMeanings[code]}`).join(' '),
        ...(status === 503
          ? { headers: { 'Retry-After': { description: 'Whole seconds (≥ 1) to wait before retrying.', schema: { type: 'integer', minimum: 1 } } } }
          : {}),
        content: {
          'application/json': {
            schema: ref('Error'),
            examples: Object.fromEntries(list.map((code) => [code, { summary: code, value: exampleError(code) }])),
          },
        },
      },
    ]),
  );
}

function exampleError(code: ErrorCode) {
  const details =
    code === 'invalid_request'
      ? { fields: [{ field: 'quality', message: 'quality applies to jpeg and webp only' }] }
      : code === 'saturated'
        ? { reason: 'queue_full', retryAfterSeconds: 2 }
        : code === 'draining'
          ? { reason: 'draining', retryAfterSeconds: 1 }
          : undefined;
  return { error: { code, message: errorMeanings[code], ...(details ? { details } : {}) } };
}

const allCodes = Object.keys(errorStatus) as ErrorCode[];
const screenshotCodes = allCodes.filter((c) => c !== 'not_found');
const getScreenshotCodes = screenshotCodes.filter((c) => c !== 'payload_too_large' && c !== 'unsupported_media_type');

const screenshotHeaders = {
  'X-Shotfleet-Node': { description: 'The node that answered (on every response).', schema: { type: 'string' } },
  'X-Request-Id': { description: 'The request id the node logged this request under.', schema: { type: 'string' } },
  'Server-Timing': { description: 'queue;dur=…, render;dur=…[, upload;dur=…] in ms.', schema: { type: 'string' } },
  'X-Shotfleet-Truncated': { description: '"true" when the image was cut to the page height or pixel budget.', schema: { type: 'string', enum: ['true'] } },
  'X-Shotfleet-Session': { description: 'new or reused, on requests carrying the session cookie.', schema: { type: 'string', enum: ['new', 'reused'] } },
  'X-Shotfleet-Cache': {
    description:
      'With a cacheTtl above 0 (no session): hit (a kept result, no render), miss (rendered and kept), coalesced (the result of an identical request rendering at the time).',
    schema: { type: 'string', enum: ['hit', 'miss', 'coalesced'] },
  },
  Age: { description: 'With a cacheTtl above 0: whole seconds since the result was rendered.', schema: { type: 'integer', minimum: 0 } },
  ETag: { description: 'On every image: a strong ETag, the SHA-256 of the image. Send it back as If-None-Match for a 304.', schema: { type: 'string' } },
  'Cache-Control': {
    description:
      'no-store when cacheTtl is 0 (or with a session); otherwise public, max-age=cacheTtl − Age (never past a signed link’s expires) for a signed link or a node without a token, private, max-age=… for a request that carried a token.',
    schema: { type: 'string' },
  },
};

/** If-None-Match named the ETag of the answer (a cached result is answered so with no render). */
const notModified = {
  description: 'If-None-Match named the ETag of the image: no body. A result the cache holds is answered so without a render.',
  headers: {
    ETag: screenshotHeaders.ETag,
    'X-Shotfleet-Cache': screenshotHeaders['X-Shotfleet-Cache'],
    Age: screenshotHeaders.Age,
    'Cache-Control': screenshotHeaders['Cache-Control'],
  },
};

function screenshotOk() {
  const image = { type: 'string', contentEncoding: 'binary' };
  return {
    description: 'The image (store false), or where it was stored (store true; sent only after S3 confirmed the object).',
    headers: screenshotHeaders,
    content: {
      'image/png': { schema: image },
      'image/jpeg': { schema: image },
      'image/webp': { schema: image },
      ...json(ref('StoredImage')),
    },
  };
}

const hubServer = [{ url: 'http://127.0.0.1:4000', description: 'a hub (shotfleet hub): the routes below are the hub’s, not a node’s' }];

/**
 * GET /openapi.json: every route of a node and of the hub, every option (from the zod schema, with this node's
 * limits) and every error code with its status (from the error catalog).
 */
export function openApiDocument(input: ApiDescriptionInput) {
  const surface = requestSurface(input.limits);
  const open: { [scheme: string]: string[] }[] = [];
  return {
    openapi: '3.1.0',
    info: {
      title: 'shotfleet',
      version: input.version,
      summary: 'A self-throttling screenshot service: POST a URL or HTML, get the image or an S3 link.',
      description:
        'A node renders screenshots from a bounded pool of warm Chromium pages and sheds load with 503 + Retry-After. ' +
        'Try it at /docs. With SHOTFLEET_TOKEN set, every route but /status, /livez, /openapi.json and /docs needs the token.',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    servers: [{ url: '/', description: 'this node' }],
    security: [{ bearer: [] }, { tokenHeader: [] }],
    tags: [
      { name: 'render', description: 'Screenshots' },
      { name: 'health', description: 'Readiness, liveness and metrics' },
      { name: 'api', description: 'This description and the page to try it' },
      { name: 'hub', description: 'The hub (shotfleet hub, port 4000): node registration and HAProxy config' },
    ],
    paths: {
      '/screenshot': {
        post: {
          tags: ['render'],
          operationId: 'screenshot',
          summary: 'Render a URL or HTML',
          description: `Exactly one of url or html. A session cookie (${input.sessionCookie}) renders in a kept browser context.`,
          requestBody: { required: true, content: json(ref('RenderOptions')) },
          responses: { '200': screenshotOk(), '304': notModified, ...errorResponses(screenshotCodes) },
        },
        get: {
          tags: ['render'],
          operationId: 'screenshotGet',
          summary: 'Render with flat query parameters (for <img src> links)',
          description: "The scalar options as query parameters, the viewport's as width, height, deviceScaleFactor, isMobile. Writing to S3 takes a POST.",
          parameters: surface.query.map((p) => ({
            name: p.name,
            in: 'query',
            required: false,
            description: typeof p.schema.description === 'string' ? p.schema.description : undefined,
            schema: p.schema,
          })),
          responses: { '200': screenshotOk(), '304': notModified, ...errorResponses(getScreenshotCodes) },
        },
      },
      '/status': {
        get: {
          tags: ['health'],
          operationId: 'status',
          summary: 'Readiness (HAProxy httpchk, the hub)',
          security: open,
          responses: {
            '200': { description: 'The node can serve (busy or saturated included).', content: json(ref('NodeStatus')) },
            '503': { description: 'Starting, draining, or no browser up.', content: json(ref('NodeStatus')) },
          },
        },
      },
      '/livez': {
        get: {
          tags: ['health'],
          operationId: 'livez',
          summary: 'Liveness: the process answers',
          security: open,
          responses: { '200': { description: 'Alive.', content: json({ type: 'object', properties: { status: { const: 'alive' } }, required: ['status'] }) } },
        },
      },
      '/metrics': {
        get: {
          tags: ['health'],
          operationId: 'metrics',
          summary: 'Prometheus metrics (open unless SHOTFLEET_METRICS_TOKEN is set)',
          security: [{}, { bearer: [] }, { tokenHeader: [] }],
          responses: {
            '200': { description: 'Prometheus text format.', content: { 'text/plain': { schema: { type: 'string' } } } },
            ...errorResponses(['unauthorized']),
          },
        },
      },
      '/openapi.json': {
        get: {
          tags: ['api'],
          operationId: 'openapi',
          summary: 'This document',
          security: open,
          responses: { '200': { description: 'OpenAPI 3.1.', content: json({ type: 'object' }) } },
        },
      },
      '/docs': {
        get: {
          tags: ['api'],
          operationId: 'docs',
          summary: 'Every option, and a form to try a render (self-contained: works offline)',
          security: open,
          responses: { '200': { description: 'An HTML page.', content: { 'text/html': { schema: { type: 'string' } } } } },
        },
      },
      '/nodes': {
        servers: hubServer,
        post: {
          tags: ['hub'],
          operationId: 'registerNode',
          summary: 'Register a node, or heartbeat (re-post)',
          requestBody: { required: true, content: json(ref('Registration')) },
          responses: {
            '200': { description: 'Registered; re-post every heartbeatIntervalMs.', content: json(ref('RegistrationAnswer')) },
            ...errorResponses(['invalid_request', 'unauthorized', 'payload_too_large', 'unsupported_media_type']),
          },
        },
        get: {
          tags: ['hub'],
          operationId: 'listNodes',
          summary: 'The nodes the hub tracks',
          responses: {
            '200': { description: 'Every registered node.', content: json({ type: 'array', items: ref('HubNode') }) },
            ...errorResponses(['unauthorized']),
          },
        },
      },
      '/nodes/{id}': {
        servers: hubServer,
        delete: {
          tags: ['hub'],
          operationId: 'deregisterNode',
          summary: 'Deregister a node (it does so when it drains)',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            '200': {
              description: 'Removed.',
              content: json({ type: 'object', properties: { id: { type: 'string' }, removed: { const: true } }, required: ['id', 'removed'] }),
            },
            ...errorResponses(['unauthorized', 'not_found']),
          },
        },
      },
      '/haproxy.cfg': {
        servers: hubServer,
        get: {
          tags: ['hub'],
          operationId: 'haproxyConfig',
          summary: 'An HAProxy config for the current fleet (every live node in its slot)',
          parameters: [
            { name: 'bind', in: 'query', required: false, description: 'Client listener, default :8080.', schema: { type: 'string' } },
            { name: 'stats', in: 'query', required: false, description: 'Stats page listener, default 127.0.0.1:8404.', schema: { type: 'string' } },
          ],
          responses: {
            '200': { description: 'haproxy.cfg text; passes haproxy -c.', content: { 'text/plain': { schema: { type: 'string' } } } },
            ...errorResponses(['invalid_request', 'unauthorized']),
          },
        },
      },
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'SHOTFLEET_TOKEN' },
        tokenHeader: { type: 'apiKey', in: 'header', name: 'token', description: 'SHOTFLEET_TOKEN, as a "token" header' },
      },
      schemas: {
        RenderOptions: surface.body,
        StoredImage: {
          type: 'object',
          description: 'The answer to store: true, sent only after S3 confirmed the object.',
          required: ['bucket', 'key', 'url', 'etag', 'bytes', 'format', 'width', 'height', 'timings'],
          properties: {
            bucket: { type: 'string' },
            key: { type: 'string', examples: ['2026/11/23/01JD6Q3W7Z.png'] },
            url: { type: 'string', description: 'A presigned GET (SHOTFLEET_S3_PRESIGN_TTL_S) or SHOTFLEET_S3_PUBLIC_URL + key.' },
            etag: { type: 'string' },
            bytes: { type: 'integer' },
            format: { type: 'string', enum: ['png', 'jpeg', 'webp'] },
            width: { type: 'integer' },
            height: { type: 'integer' },
            timings: {
              type: 'object',
              required: ['queueMs', 'renderMs', 'uploadMs'],
              properties: { queueMs: { type: 'number' }, renderMs: { type: 'number' }, uploadMs: { type: 'number' } },
            },
          },
        },
        Error: {
          type: 'object',
          required: ['error'],
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message'],
              properties: {
                code: { type: 'string', enum: allCodes },
                message: { type: 'string', description: 'Safe to show; says what to do next.' },
                details: {
                  type: 'object',
                  description: 'invalid_request: fields [{field, message}]; 503: reason and retryAfterSeconds.',
                  properties: {
                    fields: { type: 'array', items: { type: 'object', properties: { field: { type: 'string' }, message: { type: 'string' } } } },
                    reason: { type: 'string', enum: [...shedReasons] },
                    retryAfterSeconds: { type: 'integer', minimum: 1 },
                  },
                },
              },
            },
          },
        },
        NodeStatus: {
          type: 'object',
          required: ['status'],
          properties: {
            status: { type: 'string', enum: ['ready', 'starting', 'draining', 'no_browser'] },
            node: { type: 'string' },
            saturation: { type: 'number', minimum: 0, maximum: 1 },
            pages: { type: 'object', properties: { max: { type: 'integer' }, inUse: { type: 'integer' }, limit: { type: 'integer' } } },
            queue: { type: 'object', properties: { length: { type: 'integer' }, max: { type: 'integer' } } },
            uploads: {
              type: 'object',
              properties: { inFlight: { type: 'integer' }, max: { type: 'integer' }, queued: { type: 'integer' }, backlogBytes: { type: 'integer' } },
            },
            sessions: { type: 'integer' },
            shedPerSecond: { type: 'number' },
            renderSecondsAvg: { type: 'number' },
          },
        },
        Registration: {
          type: 'object',
          required: ['url'],
          properties: {
            url: { type: 'string', description: 'The node’s base URL, a plain http(s) origin.', examples: ['http://10.0.0.5:3000'] },
            id: { type: 'string', pattern: '^[A-Za-z0-9._:@-]{1,200}$', description: 'Default host:port.' },
            capacity: { type: 'integer', minimum: 1, maximum: 100000, description: 'Pages (HAProxy maxconn for the node).' },
          },
        },
        RegistrationAnswer: {
          type: 'object',
          required: ['id', 'pingIntervalMs', 'heartbeatIntervalMs'],
          properties: { id: { type: 'string' }, pingIntervalMs: { type: 'integer' }, heartbeatIntervalMs: { type: 'integer' } },
        },
        HubNode: {
          type: 'object',
          required: ['id', 'url', 'state', 'saturation', 'lastSeen', 'failures'],
          properties: {
            id: { type: 'string' },
            url: { type: 'string' },
            state: { type: 'string', enum: [...input.nodeStates] },
            saturation: { type: 'number', minimum: 0, maximum: 1 },
            lastSeen: { type: 'string', format: 'date-time' },
            failures: { type: 'integer', minimum: 0 },
          },
        },
      },
    },
  };
}
