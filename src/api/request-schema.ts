import { z } from 'zod';
import { createOptionsSchema, type RenderLimits } from '../request/options.js';
import { queryParameters, type QueryParameter } from '../request/query-parameters.js';

/** A JSON Schema (2020-12) object, as OpenAPI 3.1 embeds it. */
export type JsonSchema = { [keyword: string]: unknown };

export interface RequestSurface {
  /** The body of POST /screenshot, with each option's description, examples, default and limits. */
  body: JsonSchema & { properties: Record<string, JsonSchema> };
  /** GET /screenshot's flat parameters, each with its own schema. */
  query: (QueryParameter & { schema: JsonSchema })[];
}

/**
 * The request surface as JSON Schema, generated from the zod schema that validates requests (with this
 * node's limits), so the API description cannot differ from what the node accepts. The cross-field rules
 * (url xor html, quality only for jpeg/webp…) are not expressible per field; each option's description says them.
 */
export function requestSurface(limits: RenderLimits): RequestSurface {
  const schema = createOptionsSchema(limits);
  const { $schema: _dialect, ...body } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema & {
    properties: Record<string, JsonSchema>;
  };
  const query = queryParameters(schema).map((param) => {
    let field: JsonSchema = body.properties[param.path[0]];
    for (const step of param.path.slice(1)) field = (field.properties as Record<string, JsonSchema>)[step];
    return { ...param, schema: field };
  });
  return { body, query };
}
